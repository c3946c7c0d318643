"""Post states (a StrEnum, stored as its text), their Chinese names, and the staff transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.errors import PufaError


class State(StrEnum):
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    MISSED = "missed"


TZ = ZoneInfo("Asia/Shanghai")
EVERYONE = "全体"
CLAIM_TIMEOUT = timedelta(minutes=2)  # a claim older than this was left by a crashed process
CONFIRM_WINDOW = timedelta(minutes=30)  # mass-send protection (W11)
STATES = {
    State.DRAFT: "草稿",
    State.AWAITING_APPROVAL: "待审核",
    State.SCHEDULED: "已排期",
    State.PUBLISHING: "发送中",
    State.AWAITING_CONFIRMATION: "待管理员确认",
    State.PUBLISHED: "已发布",
    State.FAILED: "发送失败",
    State.CANCELLED: "已取消",
    State.MISSED: "已错过",
}
_ALLOWED = {
    "submit": ({State.DRAFT}, State.AWAITING_APPROVAL),
    "approve": ({State.AWAITING_APPROVAL}, State.SCHEDULED),
    "cancel": ({State.DRAFT, State.AWAITING_APPROVAL, State.SCHEDULED}, State.CANCELLED),
    "reopen": ({State.FAILED, State.MISSED, State.CANCELLED}, State.DRAFT),
}


class PostError(PufaError):
    """A post cannot do what was asked; the message (Chinese) tells staff why."""


def local(moment: datetime | None) -> str:
    if moment is None:
        return "未定"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M")
