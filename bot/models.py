"""Every table Pufa keeps, in typed SQLAlchemy 2.0. Workflows live in the service modules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


class Exchange(db.Model):
    """One resident message and Pufa's reply: the Q&A log advisers review.

    `msg_key` is unique: WeChat re-sends a slow message (same MsgId; for events the sender and
    CreateTime), and the constraint makes sure each is logged once whichever worker gets it.
    The text is masked (phone, ID-card and bank-card numbers) before it is stored, and the
    resident is known only by a keyed hash of the openid, which unsubscribing erases.
    """

    __tablename__ = "exchanges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
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
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Conversation(db.Model):
    """What a resident was last offered: numbered choices or the rest of a long answer.

    Kept in the database (or Redis when configured) so that "2" or "更多" works whichever
    gunicorn worker receives it.
    """

    __tablename__ = "conversations"

    openid_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
