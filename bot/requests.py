"""Residents' requests for a person (人工, 调解, 法律援助), from the chat to closed.

In the chat a request is three short questions, one per message: what it is about, which
village, and a phone number to call back (or "不留"). The steps live in the resident's
conversation state and lapse after 30 minutes; "取消" ends them and nothing is stored. The
request text is stored masked; the phone number is stored in full because staff call it, and
it leaves the database masked except through `reveal_phone`, which is audited.

Staff move a request new → contacted → mediated/referred → closed (any → closed), each step
with a note. The resident is told of a change at their next message, once (`news_for`,
`mark_told`); once told it is closed, the request is unlinked from the resident.

Wording for residents is in bot/wechat/render.py; this module returns data.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from bot import answering, emergency, search, users, wechat_client
from bot.accounts import Settings
from bot.errors import PufaError
from bot.extensions import db
from bot.models import Exchange, HelpRequest
from bot.privacy import mask
from bot.stores import StorageUnavailable, in_database

log = logging.getLogger(__name__)

CUSTOMER_SERVICE_WINDOW = timedelta(hours=48)  # W9: messages to a follower after their last
EXPIRE_SECONDS = 30 * 60  # a request left half-way this long is forgotten
ABOUT_MAX = 500  # characters of "what it is about" kept
VILLAGE_MAX = 80  # the column's size
PHONE_TRIES = 2  # numbers not understood before the request is saved without one
LIST_LIMIT = 200  # rows on one console page


class Kind(StrEnum):
    PERSON = "person"
    MEDIATION = "mediation"
    LEGAL_AID = "legal_aid"


class Status(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    MEDIATED = "mediated"
    REFERRED = "referred"
    CLOSED = "closed"


# Console labels (residents' wording is in render.py).
KINDS: dict[str, str] = {Kind.PERSON: "找人", Kind.MEDIATION: "调解", Kind.LEGAL_AID: "法律援助"}
STATUSES: dict[str, str] = {
    Status.NEW: "待处理",
    Status.CONTACTED: "已联系",
    Status.MEDIATED: "已调解",
    Status.REFERRED: "已转交",
    Status.CLOSED: "已办结",
}
NEXT = {
    Status.NEW: (Status.CONTACTED, Status.CLOSED),
    Status.CONTACTED: (Status.MEDIATED, Status.REFERRED, Status.CLOSED),
    Status.MEDIATED: (Status.CLOSED,),
    Status.REFERRED: (Status.CLOSED,),
    Status.CLOSED: (),
}
STEPS = ("about", "village", "phone")

_END = r"[\s。.,，!！~～?？啊呀哈哦噢嘛吧呢的了]*$"
_WANT = r"^\s*(?:我|我们)?(?:要|想|想要|需要|请|请求|麻烦)?(?:帮我)?(?:申请|办|找)?"
# What starts a request, per kind: the whole message, give or take "我要/申请" and a "吧".
TRIGGERS: dict[Kind, re.Pattern[str]] = {
    Kind.PERSON: re.compile(
        r"^\s*(?:转人工|人工|人工服务|人工客服|找人|找个人|找真人|真人|我要找人|我要找人工|"
        r"找律师|有没有人工|能不能找个人|找工作人员|联系工作人员)" + _END
    ),
    Kind.MEDIATION: re.compile(_WANT + r"(?:人民)?调解" + _END),
    Kind.LEGAL_AID: re.compile(_WANT + r"法律援助" + _END),
}
CANCEL = re.compile(r"^\s*(?:取消|不要了|不用了|不办了|算了|退出|不弄了)" + _END)
NO_PHONE = re.compile(
    r"^\s*(?:不留|不想留|不方便留|不留了|不留电话|没有电话|没电话|没有|不给)" + _END
)

_NUMERALS = str.maketrans("〇○零一幺二三四五六七八九", "0001123456789")
_NUMBER_RUN = re.compile(r"\+?\d[\d\s\-().]{5,22}\d")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LOCAL = re.compile(r"[2-9]\d{6,7}")


class RequestError(PufaError):
    """A change staff asked for that cannot be made; the message is for them."""


# -- the chat ----------------------------------------------------------------------------------


def started(text: str) -> Kind | None:
    """The kind of request this message asks for, if it is one ("我要调解", "人工")."""
    for kind, pattern in TRIGGERS.items():
        if pattern.match(text):
            return kind
    return None


def begin(kind: Kind, *, now: float | None = None) -> dict[str, Any]:
    """A new request's conversation state: the first question is next."""
    return {"kind": str(kind), "step": STEPS[0], "at": now or time.time(), "tries": 0}


def pending(state: dict[str, Any], *, now: float | None = None) -> dict[str, Any] | None:
    """The request this resident is in the middle of, unless it lapsed."""
    req = state.get("request")
    if not req or req.get("step") not in STEPS:
        return None
    if (now or time.time()) - float(req.get("at", 0)) > EXPIRE_SECONDS:
        return None
    return req


_PERSONAL = re.compile(r"(?:\d+[-\s])?[\d*]*\*{3,}[\d*]*")  # what privacy.mask left of one


def alarm(text: str) -> emergency.Emergency | None:
    """Is someone in danger? Asked of every message before it is taken as a step, so an
    emergency in the middle of a request is answered as one (see `answering.answer`)."""
    ctx = answering.context()
    # a phone or ID number says nothing about danger (and its digits look like 110 or a
    # scammer's number to the model): what is left is judged; a number alone is no alarm
    plain = search.normalise(_PERSONAL.sub(" ", mask(text))).strip()
    if ctx.detector is None or not plain:
        return None
    qvec = ctx.embedder.query(plain) if ctx.embedder is not None else None
    return ctx.detector.detect(plain, qvec)


@dataclass(frozen=True)
class Step:
    """What one message did to a request. `request` is the state to keep (None: over)."""

    outcome: str  # asked | again | saved | cancelled | failed
    kind: Kind
    request: dict[str, Any] | None = None
    phone: str | None = None  # the number saved, in full: the caller masks it for replies

    @property
    def ask(self) -> str | None:
        """The question to ask next: about | village | phone."""
        return self.request["step"] if self.request else None


def advance(
    req: dict[str, Any],
    text: str,
    *,
    who: str,
    account_id: int,
    openid: str | None = None,
    now: float | None = None,
) -> Step:
    """Take one message as the answer to the request's current question."""
    kind, now = Kind(req["kind"]), now or time.time()
    if CANCEL.match(text):
        return Step("cancelled", kind)
    step = req["step"]
    if step == "about":
        about = mask(text.strip())[:ABOUT_MAX]
        return Step("asked", kind, {**req, "about": about, "step": "village", "at": now})
    if step == "village":
        village = mask(text.strip())[:VILLAGE_MAX]
        return Step("asked", kind, {**req, "village": village, "step": "phone", "at": now})
    declined = bool(NO_PHONE.match(text))
    phone = None if declined else phone_number(text)
    tries = int(req.get("tries", 0)) + 1
    if phone is None and not declined and tries < PHONE_TRIES:  # saved without one after that
        return Step("again", kind, {**req, "tries": tries, "at": now})
    try:
        in_database(_save, account_id, who, openid, req, phone)
    except (SQLAlchemyError, StorageUnavailable):
        return Step("failed", kind)
    return Step("saved", kind, phone=phone)


def _save(
    account_id: int, who: str, openid: str | None, req: dict[str, Any], phone: str | None
) -> None:
    db.session.add(
        HelpRequest(
            account_id=account_id,
            openid_hash=who,
            openid=openid,
            kind=req["kind"],
            about=req.get("about", ""),
            village=req.get("village") or None,
            phone=phone,
            status=Status.NEW,
            notes=[],
        )
    )
    db.session.commit()


def phone_number(text: str) -> str | None:
    """A mainland mobile or landline number in `text`, tidied; None if there is none.

    Loose on purpose: full-width digits, spaces and dashes, +86, Chinese numerals from voice
    recognition, and words around the number are all fine. A landline keeps its area code
    apart ("0871-62345678"); a local number without one is kept as typed.
    """
    plain = unicodedata.normalize("NFKC", text).translate(_NUMERALS)
    for run in _NUMBER_RUN.finditer(plain):
        digits = re.sub(r"\D", "", run.group())
        for prefix in ("0086", "86", "0"):
            if len(digits) == 11 + len(prefix) and digits.startswith(prefix):
                if _MOBILE.fullmatch(digits[len(prefix) :]):
                    digits = digits[len(prefix) :]
        if _MOBILE.fullmatch(digits) or _LOCAL.fullmatch(digits):
            return digits
        if landline := _landline(digits):
            return landline
    return None


def _landline(digits: str) -> str | None:
    """0 + area code + 7-8 digits; Beijing (010) and 02x have two-digit codes, others three."""
    if len(digits) < 10 or digits[0] != "0" or digits[1] == "0":
        return None
    area = 3 if digits[1] in "12" else 4
    local = digits[area:]
    if not _LOCAL.fullmatch(local):
        return None
    return f"{digits[:area]}-{local}"


def masked_phone(phone: str | None) -> str:
    """How a stored number is shown everywhere but the audited reveal."""
    if not phone:
        return ""
    shown = mask(phone)
    return shown if shown != phone else "*" * max(len(phone) - 4, 0) + phone[-4:]


# -- telling the resident ----------------------------------------------------------------------


@dataclass(frozen=True)
class News:
    """A status the resident has not been told yet."""

    id: int
    kind: Kind
    status: Status


NEWS_CHECK_SECONDS = 2.0  # default for REQUEST_NEWS_CHECK_SECONDS


@dataclass
class _Waiting:
    """Who in this worker's eyes has news waiting: (account id, resident's hash). Read again
    at most every REQUEST_NEWS_CHECK_SECONDS, so a message from anyone else (nearly every
    message) asks the database nothing about requests."""

    who: frozenset[tuple[int, str]] = frozenset()
    checked_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)


def _waiting() -> _Waiting:
    return current_app.extensions.setdefault("pufa.request_news", _Waiting())


def news_for(who: str, account_id: int) -> list[News]:
    """The resident's requests whose status changed since they were last told."""
    waiting = _waiting()
    every = float(current_app.config.get("REQUEST_NEWS_CHECK_SECONDS", NEWS_CHECK_SECONDS))
    if time.monotonic() - waiting.checked_at >= every and waiting.lock.acquire(blocking=False):
        try:
            waiting.checked_at = time.monotonic()
            waiting.who = in_database(_who_waits)
        except (SQLAlchemyError, StorageUnavailable):
            pass  # the last known set: told at a later message
        finally:
            waiting.lock.release()
    if (account_id, who) not in waiting.who:
        return []
    try:
        return in_database(_news, who, account_id)
    except (SQLAlchemyError, StorageUnavailable):
        return []  # told at a later message


def _who_waits() -> frozenset[tuple[int, str]]:
    rows = db.session.execute(
        select(HelpRequest.account_id, HelpRequest.openid_hash).where(
            HelpRequest.openid_hash.is_not(None), *_UNTOLD
        )
    )
    return frozenset((a, h) for a, h in rows)


# a request whose status moved on since the resident was last told
_UNTOLD = (
    HelpRequest.status != Status.NEW,
    HelpRequest.notified_status.is_(None) | (HelpRequest.notified_status != HelpRequest.status),
)


def _news(who: str, account_id: int) -> list[News]:
    rows = db.session.execute(
        select(HelpRequest.id, HelpRequest.kind, HelpRequest.status)
        .where(HelpRequest.openid_hash == who, HelpRequest.account_id == account_id, *_UNTOLD)
        .order_by(HelpRequest.id)
    ).all()
    return [News(i, Kind(k), Status(s)) for i, k, s in rows]


def mark_told(news: list[News]) -> None:
    """Record what the resident was told; a closed request is unlinked from them now."""
    if news:
        try:
            in_database(_mark, news)
        except (SQLAlchemyError, StorageUnavailable):
            pass  # said again at a later message: better twice than never


def _mark(news: list[News]) -> None:
    for item in news:
        values: dict[str, Any] = {"notified_status": item.status}
        if item.status == Status.CLOSED:
            values["openid_hash"] = values["openid"] = None
        db.session.execute(
            update(HelpRequest)
            .where(HelpRequest.id == item.id, HelpRequest.status == item.status)
            .values(**values)
        )
    db.session.commit()


# -- the console -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A request as the console shows it: the phone number masked."""

    id: int
    created_at: datetime
    updated_at: datetime
    kind: str
    about: str
    village: str
    phone: str
    status: str
    told: bool  # the resident has heard of the current status

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def status_label(self) -> str:
        return STATUSES.get(self.status, self.status)


def shown(req: HelpRequest) -> Shown:
    return Shown(
        id=req.id,
        created_at=req.created_at,
        updated_at=req.updated_at,
        kind=req.kind,
        about=req.about,
        village=req.village or "",
        phone=masked_phone(req.phone),
        status=req.status,
        told=req.status == Status.NEW or req.notified_status == req.status,
    )


def listing(account_id: int, status: str | None = None) -> list[Shown]:
    """The account's requests, newest first, optionally of one status."""
    query = select(HelpRequest).where(HelpRequest.account_id == account_id)
    if status:
        query = query.where(HelpRequest.status == status)
    rows = db.session.scalars(query.order_by(HelpRequest.id.desc()).limit(LIST_LIMIT))
    return [shown(r) for r in rows]


def counts(account_id: int) -> dict[str, int]:
    """How many requests of the account are in each status."""
    rows = db.session.execute(
        select(HelpRequest.status, func.count(HelpRequest.id))
        .where(HelpRequest.account_id == account_id)
        .group_by(HelpRequest.status)
    ).all()
    return {status: int(n) for status, n in rows}


def history(req: HelpRequest) -> list[dict[str, Any]]:
    """The notes, oldest first, each with its moment as a datetime and its status's label."""
    notes = []
    for note in req.notes or []:
        at = datetime.fromisoformat(note["at"]) if note.get("at") else None
        status = note.get("status", "")
        notes.append({**note, "at": at, "status_label": STATUSES.get(status, status)})
    return notes


def choices(req: HelpRequest) -> list[str]:
    """The statuses staff may set next; the current one too, to add a note only."""
    current = Status(req.status)
    return [current, *NEXT[current]] if current != Status.CLOSED else [current]


def change_status(
    req: HelpRequest, *, status: str, note: str, actor: str, now: datetime | None = None
) -> None:
    """Move a request on (or add a note to it) and commit; the note is stored masked."""
    note = mask(note.strip())
    if status not in choices(req):
        raise RequestError(f"不能从“{STATUSES[Status(req.status)]}”改为这个状态")
    if status == req.status and not note:
        raise RequestError("请写一句跟进记录，或者选择新的状态")
    moment = (now or datetime.now(UTC)).isoformat()
    entry = {"at": moment, "by": actor, "status": status, "note": note}
    req.notes = [*(req.notes or []), entry]  # a new list: JSON columns miss in-place changes
    req.status = status
    db.session.commit()
    _waiting().checked_at = float("-inf")  # this worker looks again at the next message


def tell_now(
    req: HelpRequest, account: Settings, *, text: str, now: datetime | None = None
) -> bool:
    """Tell the resident of the request's new status by a customer-service message, when
    WeChat allows one (within 48 hours of their last message, W9). False: they hear it at
    their next message instead (`news_for`)."""
    if not req.openid or not req.openid_hash or req.notified_status == req.status:
        return False
    last = db.session.scalar(
        select(func.max(Exchange.received_at)).where(
            Exchange.openid_hash == req.openid_hash, Exchange.account_id == req.account_id
        )
    )
    if last is None or (now or datetime.now(UTC)) - last >= CUSTOMER_SERVICE_WINDOW:
        return False
    try:
        wechat_client.send_text(wechat_client.client(account), openid=req.openid, text=text)
    except wechat_client.ApiError as exc:
        log.warning("request %s: progress not sent now (%s); told at the next message", req.id, exc)
        return False
    req.notified_status = req.status
    if req.status == Status.CLOSED:  # nothing more to tell: the link to the resident goes
        req.openid = req.openid_hash = None
    db.session.commit()
    return True


def reveal_phone(req: HelpRequest, *, actor: str) -> str | None:
    """The full number, for staff who call back; every reveal is audited."""
    users.audit(actor, "request.phone", account_id=req.account_id, target=f"help_request:{req.id}")
    db.session.commit()
    return req.phone
