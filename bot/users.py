"""Console users: argon2id passwords, roles per account. Services; no Flask-Login here."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.errors import PufaError
from bot.extensions import db
from bot.models import AuditEvent, Membership, User

ROLES = {
    "admin": "管理员",
    "staff": "普法办工作人员",
    "adviser": "法律顾问",
    "viewer": "领导（只读）",
}
# What each role may do in its accounts. A view asks for a permission, never a role name.
PERMISSIONS: dict[str, set[str]] = {
    "view": {"admin", "staff", "adviser", "viewer"},
    "posts.edit": {"admin", "staff"},
    "posts.approve": {"admin", "staff"},
    "reviews.judge": {"admin", "adviser"},
    "reviews.correct": {"admin", "adviser"},
    "log.export": {"admin", "adviser", "viewer"},
    "requests.handle": {"admin", "staff", "adviser"},
    "requests.phone": {"admin", "staff", "adviser"},  # they call the resident back
    "users.manage": {"admin"},
}
USERNAME = re.compile(r"[a-z][a-z0-9_.-]{1,39}")
MIN_PASSWORD = 10
_hasher = PasswordHasher()  # argon2id with the library's recommended parameters


class UserError(PufaError):
    """A user that cannot be created or signed in as asked; the message is for people."""


def create(
    *, username: str, display_name: str, password: str, role: str, account_id: int, actor: str
) -> User:
    """A new user with one role in one account (more with `grant`)."""
    if not USERNAME.fullmatch(username):
        raise UserError("用户名只能用小写字母、数字和 . _ -，以字母开头，2 到 40 个字符")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"密码至少 {MIN_PASSWORD} 个字符")
    if role not in ROLES:
        raise UserError(f"角色只能是：{'、'.join(ROLES)}")
    user = User(
        username=username,
        display_name=display_name.strip() or username,
        password_hash=_hasher.hash(password),
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise UserError(f"用户名“{username}”已被使用") from None
    db.session.add(Membership(user_id=user.id, account_id=account_id, role=role))
    audit(actor, "user.create", account_id=account_id, target=username, detail=role)
    db.session.commit()
    return user


def grant(user: User, *, account_id: int, role: str, actor: str, commit: bool = True) -> None:
    """Give (or change) the user's role in an account (`commit=False`: with the caller's
    change, which the caller commits)."""
    if role not in ROLES:
        raise UserError(f"角色只能是：{'、'.join(ROLES)}")
    held = db.session.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.account_id == account_id)
    )
    if held is None:
        db.session.add(Membership(user_id=user.id, account_id=account_id, role=role))
    else:
        held.role = role
    audit(actor, "user.grant", account_id=account_id, target=user.username, detail=role)
    if commit:
        db.session.commit()


def authenticate(username: str, password: str, *, now: datetime | None = None) -> User | None:
    """The active user with this name and password, or None (the same for both mistakes)."""
    user = db.session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or not user.active:
        _hasher.hash(password)  # the same work either way: no timing hint that the name exists
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now or datetime.now(UTC)
    db.session.commit()
    return user


def change_password(user: User, *, current: str, new: str) -> None:
    """The user's own new password; every other session of theirs ends (auth's session id
    carries a piece of the hash)."""
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise UserError("当前密码不对") from None
    if len(new) < MIN_PASSWORD:
        raise UserError(f"新密码至少 {MIN_PASSWORD} 个字符")
    if new == current:
        raise UserError("新密码不能和当前密码一样")
    user.password_hash = _hasher.hash(new)
    user.must_change_password = False
    audit(user.username, "user.password", account_id=None, target=user.username)
    db.session.commit()


# readable aloud over the phone: no 0/O, 1/l/I
_TEMPORARY = "abcdefghjkmnpqrstuvwxyz23456789"


def reset_password(user: User, *, actor: str, account_id: int | None) -> str:
    """A temporary password for a user who forgot theirs, told to them by the administrator;
    it only lets them set a new one. Their sessions end at once."""
    temporary = "".join(secrets.choice(_TEMPORARY) for _ in range(12))
    user.password_hash = _hasher.hash(temporary)
    user.must_change_password = True
    audit(actor, "user.reset", account_id=account_id, target=user.username)
    db.session.commit()
    return temporary


def administers(actor_roles: dict[int, str], user_id: int) -> bool:
    """May someone with `actor_roles` stop, restore or reset this user: an administrator of
    every account the user belongs to (a township's admin cannot take over a county admin
    who also belongs to the township)."""
    theirs = roles_of(user_id)
    return bool(theirs) and all(actor_roles.get(a) == "admin" for a in theirs)


def set_active(user: User, active: bool, *, actor: str, account_id: int) -> None:
    """Stop (or allow again) a user's sign-in; a stopped user's sessions end at once."""
    user.active = active
    audit(actor, "user.enable" if active else "user.disable", account_id=account_id,
          target=user.username)  # fmt: skip
    db.session.commit()


def roles_of(user_id: int) -> dict[int, str]:
    """account id → role, for every account the user belongs to."""
    rows = db.session.execute(
        select(Membership.account_id, Membership.role).where(Membership.user_id == user_id)
    )
    return {account_id: role for account_id, role in rows}


def may(role: str | None, permission: str) -> bool:
    return role is not None and role in PERMISSIONS[permission]


def audit(
    actor: str,
    action: str,
    *,
    account_id: int | None,
    target: str | None = None,
    detail: str | None = None,
) -> None:
    """Record who did or saw what; committed with the caller's change."""
    db.session.add(
        AuditEvent(account_id=account_id, actor=actor, action=action, target=target, detail=detail)
    )
