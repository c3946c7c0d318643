"""The official accounts one deployment serves, resolved into what the services need.

The default account is the one configured by PUFA_WECHAT_* and JUSTICE_OFFICE_*: it is built
from the configuration alone, so /wechat answers residents even while the database is down.
Further accounts (a county running several townships) are rows of `accounts`, served at
/wechat/<slug>; their secrets are named by reference (an environment variable) and read when
the account is resolved. Resolved accounts are kept per process for a minute, and the last
good one is used while the database cannot be reached.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.config import AES_KEY
from bot.errors import PufaError
from bot.extensions import db
from bot.models import DEFAULT_ACCOUNT_ID, Account

log = logging.getLogger(__name__)

DEFAULT_SLUG = "default"
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,23}")
CACHE_SECONDS = 60.0
ACCOUNT_TYPES = ("subscription", "service")
ENCRYPTIONS = ("plain", "compatible", "safe")


class AccountError(PufaError):
    """An account that cannot be served or created as asked; the message says why."""


class Unavailable(AccountError):
    """The account is not known to this process and the database cannot say."""


@dataclass(frozen=True)
class HelpChannel:
    name: str
    phone: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class Office:
    """The township's own justice office (司法所), shown in every answer."""

    name: str
    phone: str | None = None
    address: str | None = None
    hours: str | None = None


@dataclass(frozen=True)
class Settings:
    """One account as the webhook, the answers and publishing use it (secrets resolved)."""

    id: int
    slug: str
    name: str
    app_id: str
    original_id: str | None
    token: str
    aes_key: str | None
    aes_key_previous: str | None
    encryption: str
    app_secret: str | None
    account_type: str
    office: Office
    help_channels: tuple[HelpChannel, ...] = field(default_factory=tuple)
    calendar_file: str | None = None

    @property
    def is_default(self) -> bool:
        return self.id == DEFAULT_ACCOUNT_ID

    def scoped(self, key: str) -> str:
        """A key unique across the deployment: message keys, Redis keys, clientmsgids.

        The default account's keys are unchanged, so a single-account deployment keeps the
        keys it had before accounts existed.
        """
        return key if self.is_default else f"{self.slug}:{key}"

    def protocol(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The WECHAT_* settings the signing and encryption code reads, for this account."""
        return {
            "WECHAT_TOKEN": self.token,
            "WECHAT_APP_ID": self.app_id,
            "WECHAT_AES_KEY": self.aes_key,
            "WECHAT_AES_KEY_PREVIOUS": self.aes_key_previous,
            "WECHAT_ENCRYPTION": self.encryption,
            "WECHAT_MAX_CLOCK_SKEW": config["WECHAT_MAX_CLOCK_SKEW"],
        }


def init_app(app: Flask) -> None:
    app.extensions["pufa.accounts"] = _Cache(default=configured(app.config))


def configured(config: Mapping[str, Any]) -> Settings:
    """The default account, from the configuration alone."""
    return Settings(
        id=DEFAULT_ACCOUNT_ID,
        slug=DEFAULT_SLUG,
        name=str(config.get("ACCOUNT_NAME") or ""),
        app_id=str(config["WECHAT_APP_ID"]),
        original_id=config.get("WECHAT_ORIGINAL_ID") or None,
        token=str(config["WECHAT_TOKEN"]),
        aes_key=config.get("WECHAT_AES_KEY") or None,
        aes_key_previous=config.get("WECHAT_AES_KEY_PREVIOUS") or None,
        encryption=str(config["WECHAT_ENCRYPTION"]),
        app_secret=_str(config.get("WECHAT_APP_SECRET")),
        account_type=str(config["WECHAT_ACCOUNT_TYPE"]),
        office=Office(
            name=str(config["JUSTICE_OFFICE_NAME"]),
            phone=_str(config.get("JUSTICE_OFFICE_PHONE")),
            address=_str(config.get("JUSTICE_OFFICE_ADDRESS")),
            hours=_str(config.get("JUSTICE_OFFICE_HOURS")),
        ),
        help_channels=(),
        calendar_file=None,
    )


def default() -> Settings:
    return _cache().default


def by_id(account_id: int | None) -> Settings:
    """The account with this id (the default for None or 1)."""
    if account_id is None or account_id == DEFAULT_ACCOUNT_ID:
        return default()
    return _cache().get(("id", account_id), lambda: _load(Account.id == account_id))


def by_slug(slug: str) -> Settings | None:
    """The account served at /wechat/<slug>, None if there is none."""
    if slug == DEFAULT_SLUG:
        return default()
    if not SLUG.fullmatch(slug):
        return None
    try:
        return _cache().get(("slug", slug), lambda: _load(Account.slug == slug))
    except LookupError:
        return None


def all_accounts() -> list[Settings]:
    """Every account, the default first (for the scheduler and the console)."""
    rows = db.session.scalars(select(Account).order_by(Account.id)).all()
    return [default() if row.id == DEFAULT_ACCOUNT_ID else _settings(row) for row in rows]


def create(
    *,
    slug: str,
    name: str,
    app_id: str,
    token_env: str,
    original_id: str | None = None,
    account_type: str = "subscription",
    encryption: str | None = None,
    aes_key_env: str | None = None,
    app_secret_env: str | None = None,
    office_name: str | None = None,
    office_phone: str | None = None,
    office_address: str | None = None,
    office_hours: str | None = None,
    help_channels: list[dict[str, Any]] | None = None,
    calendar_file: str | None = None,
    commit: bool = True,
) -> Account:
    """Add an account; its secrets are named, not given (`token_env="PUFA_XL_TOKEN"`).
    With `commit=False` the row is only flushed (it has its id): the caller commits it with
    what belongs to the same change, or rolls it all back."""
    if not SLUG.fullmatch(slug) or slug == DEFAULT_SLUG:
        raise AccountError(f"账号标识“{slug}”无效：只能用小写字母、数字和连字符，最长 24 个字符")
    row = Account(slug=slug, help_channels=[])
    _assign(
        row,
        name=name,
        app_id=app_id,
        original_id=original_id,
        account_type=account_type,
        encryption=encryption or ("compatible" if aes_key_env else "plain"),
        token_env=token_env,
        aes_key_env=aes_key_env,
        app_secret_env=app_secret_env,
        office_name=office_name,
        office_phone=office_phone,
        office_address=office_address,
        office_hours=office_hours,
        help_channels=list(help_channels or []),
        calendar_file=calendar_file,
    )
    db.session.add(row)
    _commit(row, flush_only=not commit)
    return row


EDITABLE = (
    "name",
    "app_id",
    "original_id",
    "account_type",
    "encryption",
    "token_env",
    "aes_key_env",
    "app_secret_env",
    "office_name",
    "office_phone",
    "office_address",
    "office_hours",
    "help_channels",
    "calendar_file",
)
# What a township's own admin may change of their account (the rest is the operator's: the
# WeChat side and the secrets' names)
TOWNSHIP_FIELDS = ("name", "office_name", "office_phone", "office_address", "office_hours",
                   "help_channels")  # fmt: skip


def update(row: Account, **changes: Any) -> Account:
    """Change an account (never the default one: it is the configuration's); checked as
    `create` checks, and every process resolves it afresh within a minute."""
    if row.id == DEFAULT_ACCOUNT_ID:
        raise AccountError("默认账号由部署配置（PUFA_*）决定，请在配置里修改")
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise AccountError(f"不能修改：{'、'.join(sorted(unknown))}")
    _assign(row, **{key: getattr(row, key) for key in EDITABLE} | changes)
    _commit(row)
    forget_cached()
    return row


def _assign(row: Account, **fields: Any) -> None:
    """Check an account's fields together, then set them."""
    if not str(fields["name"] or "").strip():
        raise AccountError("请填写账号名称，如：某某镇普法")
    if not re.fullmatch(r"wx[0-9a-zA-Z]{16}", fields["app_id"] or ""):
        raise AccountError(f"AppID“{fields['app_id']}”无效：应为 wx 开头的 18 个字符")
    if fields["original_id"] and not re.fullmatch(r"gh_[0-9a-zA-Z]{6,30}", fields["original_id"]):
        raise AccountError(f"原始ID“{fields['original_id']}”无效：应为 gh_ 开头")
    if fields["account_type"] not in ACCOUNT_TYPES:
        raise AccountError("账号类型只能是 subscription（订阅号）或 service（服务号）")
    if fields["encryption"] not in ENCRYPTIONS:
        raise AccountError("加密方式只能是 plain、compatible 或 safe")
    if fields["encryption"] != "plain" and not fields["aes_key_env"]:
        raise AccountError("加密模式需要 EncodingAESKey（aes_key_env）")
    if not fields["token_env"]:
        raise AccountError("请填写存放 Token 的环境变量名")
    for ref in (fields["token_env"], fields["aes_key_env"], fields["app_secret_env"]):
        if ref and not re.fullmatch(r"[A-Z][A-Z0-9_]{2,79}", ref):
            raise AccountError(f"“{ref}”不是环境变量名：密钥只按名称引用，不存进数据库")
    channels = fields["help_channels"] or []
    if not all(isinstance(c, dict) and str(c.get("name") or "").strip() for c in channels):
        raise AccountError("每个求助渠道都要有名称")
    for key, value in fields.items():
        if isinstance(value, str):
            value = value.strip() or None
        setattr(row, key, value if key != "name" else value or "")
    row.help_channels = [
        {k: (str(v).strip() or None) if v is not None else None for k, v in c.items()}
        for c in channels
    ]


def _commit(row: Account, *, flush_only: bool = False) -> None:
    try:
        if flush_only:
            db.session.flush()
        else:
            db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AccountError(f"账号标识“{row.slug}”或 AppID“{row.app_id}”已被使用") from None


def _load(condition: Any) -> Settings:
    row = db.session.scalar(select(Account).where(condition))
    if row is None:
        raise LookupError("no such account")
    return _settings(row)


def _settings(row: Account) -> Settings:
    """A row with its secrets read from the environment variables it names."""
    base = default()
    token = _secret(row, "token_env")
    if token is None:
        raise AccountError(f"account {row.slug}: its token variable {row.token_env} is not set")
    aes_key = _secret(row, "aes_key_env")
    if aes_key is not None and not AES_KEY.fullmatch(aes_key):
        raise AccountError(f"account {row.slug}: {row.aes_key_env} is not a 43-character key")
    encryption = row.encryption or ("compatible" if aes_key else "plain")
    if encryption != "plain" and not aes_key:
        raise AccountError(f"account {row.slug}: {row.aes_key_env} is not set")
    return Settings(
        id=row.id,
        slug=row.slug,
        name=row.name,
        app_id=row.app_id or "",
        original_id=row.original_id,
        token=token,
        aes_key=aes_key,
        aes_key_previous=_secret(row, "aes_key_previous_env"),
        encryption=encryption,
        app_secret=_secret(row, "app_secret_env"),
        account_type=row.account_type or "subscription",
        office=Office(
            name=row.office_name or base.office.name,
            phone=row.office_phone,
            address=row.office_address,
            hours=row.office_hours or base.office.hours,
        ),
        help_channels=tuple(
            HelpChannel(
                name=str(c.get("name", "")),
                phone=_str(c.get("phone")),
                address=_str(c.get("address")),
            )
            for c in row.help_channels or []
            if c.get("name")
        ),
        calendar_file=row.calendar_file,
    )


def missing_secrets(row: Account) -> list[str]:
    """The environment variables this account names that this process cannot read."""
    return [
        getattr(row, column)
        for column in ("token_env", "aes_key_env", "aes_key_previous_env", "app_secret_env")
        if getattr(row, column) and _secret(row, column) is None
    ]


def _secret(row: Account, column: str) -> str | None:
    name = getattr(row, column)
    if not name:
        return None
    return os.environ.get(name) or current_app.config.get(name.removeprefix("PUFA_")) or None


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


class _Cache:
    """Resolved accounts of this process: fresh for a minute, the last good one after that
    while the database is down."""

    def __init__(self, default: Settings):
        self.default = default
        self._held: dict[tuple[str, Any], tuple[float, Settings]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, Any], load: Any) -> Settings:
        now = time.monotonic()
        with self._lock:
            held = self._held.get(key)
        if held is not None and now - held[0] < CACHE_SECONDS:
            return held[1]
        try:
            settings = load()
        except SQLAlchemyError as exc:
            db.session.rollback()
            if held is not None:
                log.warning("accounts: database unavailable, using the last known %s", key)
                return held[1]
            raise Unavailable(f"account {key[1]} unknown and the database is unavailable") from exc
        with self._lock:
            self._held[key] = (now, settings)
        return settings

    def forget(self) -> None:
        with self._lock:
            self._held.clear()


def _cache() -> _Cache:
    return current_app.extensions["pufa.accounts"]


def forget_cached() -> None:
    """After an account is changed, this process resolves it afresh."""
    _cache().forget()
