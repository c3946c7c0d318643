"""Every table Pufa keeps, in typed SQLAlchemy 2.0. Workflows live in the service modules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A moment, always aware and in UTC when read, whatever the database keeps.

    PostgreSQL keeps the zone (timestamptz); SQLite drops it, so values are stored as UTC and
    read back with the zone put back. A naive value is refused: its zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime cannot be stored: {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


DEFAULT_ACCOUNT_ID = 1  # the account configured by PUFA_WECHAT_* and served at /wechat


class Account(db.Model):
    """One official account a deployment serves: a township's, or one of a county's several.

    Secrets are kept by reference: `*_env` names the environment variable that holds them, so
    the database never holds a token, key or AppSecret. The default account (id 1, slug
    "default") is the one configured by PUFA_WECHAT_* and JUSTICE_OFFICE_*; its empty
    columns mean "as configured". Every other account is served at /wechat/<slug>.
    """

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(24), unique=True)
    name: Mapped[str] = mapped_column(String(80), default="")  # e.g. 某某镇普法
    app_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    original_id: Mapped[str | None] = mapped_column(String(40))  # gh_…: ToUserName of messages
    account_type: Mapped[str | None] = mapped_column(String(20))  # subscription | service
    encryption: Mapped[str | None] = mapped_column(String(20))  # plain | compatible | safe
    token_env: Mapped[str | None] = mapped_column(String(80))
    aes_key_env: Mapped[str | None] = mapped_column(String(80))
    aes_key_previous_env: Mapped[str | None] = mapped_column(String(80))
    app_secret_env: Mapped[str | None] = mapped_column(String(80))
    office_name: Mapped[str | None] = mapped_column(String(80))
    office_phone: Mapped[str | None] = mapped_column(String(40))
    office_address: Mapped[str | None] = mapped_column(String(200))
    office_hours: Mapped[str | None] = mapped_column(String(80))
    # further help channels shown with the office: [{"name": "人民调解委员会", "phone": "…"}]
    help_channels: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    calendar_file: Mapped[str | None] = mapped_column(String(200))  # the township's own dates
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


# The default account exists from the first migration on (and in create_all for tests); on
# PostgreSQL the id sequence is moved past it, so the next account gets id 2.
event.listen(
    Account.__table__,
    "after_create",
    DDL("INSERT INTO accounts (id, slug, name, help_channels) VALUES (1, 'default', '', '[]')"),
)
event.listen(
    Account.__table__,
    "after_create",
    DDL("SELECT setval(pg_get_serial_sequence('accounts', 'id'), 1)").execute_if(
        dialect="postgresql"
    ),
)


def account_column() -> Mapped[int]:
    return mapped_column(
        ForeignKey("accounts.id"), default=DEFAULT_ACCOUNT_ID, server_default="1", index=True
    )


class Exchange(db.Model):
    """One resident message and Pufa's reply: the Q&A log advisers review.

    `msg_key` is unique: WeChat re-sends a slow message (same MsgId; for events the sender and
    CreateTime), and the constraint makes sure each is logged once whichever worker gets it.
    The text is masked (phone, ID-card and bank-card numbers) before it is stored, and the
    resident is known only by a keyed hash of the openid, which unsubscribing erases.
    """

    __tablename__ = "exchanges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = account_column()
    msg_key: Mapped[str] = mapped_column(String(80), unique=True)
    openid_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # text, voice, click, subscribe, …
    question: Mapped[str] = mapped_column(Text, default="")
    reply: Mapped[str | None] = mapped_column(Text)
    # answered | choices | no_answer | emergency | more | greeting | non_text | failed | pending
    outcome: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    emergency: Mapped[str | None] = mapped_column(String(40))
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "有用" / "没用" said after this reply (useful | not_useful), for the advisers' queue
    feedback: Mapped[str | None] = mapped_column(String(20), index=True)
    # a follow through a parametric QR code: its scene (e.g. a village's code)
    scene: Mapped[str | None] = mapped_column(String(64))


class Conversation(db.Model):
    """What a resident was last offered: numbered choices or the rest of a long answer.

    Kept in the database (or Redis when configured) so that "2" or "更多" works whichever
    gunicorn worker receives it.
    """

    __tablename__ = "conversations"

    openid_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Post(db.Model):
    """A legal-education post that staff queue for a date and an audience.

    States: draft → awaiting_approval → scheduled → publishing → published, or failed,
    cancelled, missed (its time passed while nothing could send it), awaiting_confirmation
    (an administrator must confirm a send-to-all on the phone within 30 minutes).
    """

    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = account_column()
    title: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(10), default="text")  # text | article
    body: Mapped[str] = mapped_column(Text)
    digest: Mapped[str | None] = mapped_column(String(200))
    author: Mapped[str | None] = mapped_column(String(40))
    cover_media_id: Mapped[str | None] = mapped_column(String(200))
    audiences: Mapped[list[str]] = mapped_column(JSON, default=list)  # tag names; 全体 = all
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    calendar_id: Mapped[str | None] = mapped_column(String(60))  # scheduled "on" a key date
    state: Mapped[str] = mapped_column(String(30), default="draft", index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PostEvent(db.Model):
    """Every change to a post: who, when, what (the history staff and auditors read)."""

    __tablename__ = "post_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(30))
    to_state: Mapped[str | None] = mapped_column(String(30))
    detail: Mapped[str | None] = mapped_column(Text)


class Delivery(db.Model):
    """One post to one audience: the unit that is sent exactly once.

    The unique (post_id, audience) row is created once; a conditional UPDATE claims it, so of
    several scheduler processes exactly one sends. `clientmsgid` is derived from the pair, so
    WeChat itself refuses a resend after a crash (45065) and returns the first msg_id.
    """

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("post_id", "audience", name="uq_delivery_post_audience"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    audience: Mapped[str] = mapped_column(String(40))
    clientmsgid: Mapped[str] = mapped_column(String(64), unique=True)
    # pending | sending | submitted | confirming | finished | failed | missed | cancelled
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    media_id: Mapped[str | None] = mapped_column(String(200))  # the draft, for articles
    msg_id: Mapped[str | None] = mapped_column(String(40), index=True)
    msg_data_id: Mapped[str | None] = mapped_column(String(40))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # MASSSENDJOBFINISH


class ApiToken(db.Model):
    """The one access_token every process shares when Redis is not configured (W17)."""

    __tablename__ = "api_tokens"

    appid: Mapped[str] = mapped_column(String(40), primary_key=True)
    token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Heartbeat(db.Model):
    """The last time a background process did its work: the scheduler's tick, for /readyz."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    worker: Mapped[str | None] = mapped_column(String(120))
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(db.Model):
    """A person who signs in to the console: staff, advisers, administrators, leaders."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # set by an administrator's reset: the temporary password works once, to set a new one
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Membership(db.Model):
    """A user's role in one account: admin | staff | adviser | viewer."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "account_id", name="uq_membership"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))


class Review(db.Model):
    """An adviser's verdict on one exchange: correct | partly | wrong, with a note."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = account_column()
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(120))
    verdict: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Correction(db.Model):
    """An adviser's correction: this question is answered by that snippet from now on.

    Versioned: a newer correction of the same question replaces the older one (kept, with who
    and when); a revert is a correction back to what was there. Workers pick corrections up
    within seconds; `flask content corrections` writes them into content/laws/ as phrasings.
    """

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = account_column()
    exchange_id: Mapped[int | None] = mapped_column(ForeignKey("exchanges.id"), index=True)
    question: Mapped[str] = mapped_column(Text)  # masked, as residents asked it
    question_key: Mapped[str] = mapped_column(String(200), index=True)  # normalised
    snippet_id: Mapped[str | None] = mapped_column(String(80))  # None: withdrawn
    before: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # what it answered
    author: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HelpRequest(db.Model):
    """A resident asked for a person (人工, 调解, 法律援助): followed up by the township.

    The phone number is kept for the staff who call back; it leaves the database masked
    except for roles that need it, and every full view is audited.
    """

    __tablename__ = "help_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = account_column()
    openid_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    # The resident's openid, kept only while the request is open: the customer-service
    # message that tells them of progress needs it. Erased when they are told it is closed
    # or when they unsubscribe.
    openid: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # person | mediation | legal_aid
    about: Mapped[str] = mapped_column(Text, default="")
    village: Mapped[str | None] = mapped_column(String(80))
    phone: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    notified_status: Mapped[str | None] = mapped_column(String(20))  # last told the resident
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AuditEvent(db.Model):
    """Who saw or changed what in the console (full phone numbers, corrections, users)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(80))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SnippetSignoff(db.Model):
    """An adviser signed off a snippet written by machine (its quote was verified by lawref,
    its explanation was not read by a lawyer). `flask content signoffs` writes sign-offs into
    content/laws/ as `review = { status = "adviser-reviewed", … }`, the source of truth."""

    __tablename__ = "snippet_signoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    snippet_id: Mapped[str] = mapped_column(String(80), unique=True)
    adviser: Mapped[str] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
