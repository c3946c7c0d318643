"""What staff write: a post file's front matter, a moment, a time of day, a key date."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import current_app

from bot import accounts, campaigns
from bot.models import DEFAULT_ACCOUNT_ID
from bot.posts.states import TZ, PostError


def parse_markdown(text: str) -> dict[str, Any]:
    """A post file: TOML front matter between +++ lines, then the body in Markdown."""
    m = re.match(r"^\+\+\+\s*\n(.*?)\n\+\+\+\s*\n(.*)$", text, re.S)
    if not m:
        raise PostError("文件开头需要用 +++ 包起来的设置（title、audiences、send_at 或 on）")
    try:
        meta = tomllib.loads(m.group(1))
    except tomllib.TOMLDecodeError as exc:
        raise PostError(f"设置部分格式有误：{exc}") from None
    return {**meta, "body": m.group(2).strip()}


def _when(
    send_at: Any, on: str | None, at: str, now: datetime, account_id: int = DEFAULT_ACCOUNT_ID
) -> tuple[datetime | None, str | None]:
    if send_at and on:
        raise PostError("send_at 和 on 只能选一个")
    if on:
        return calendar_time(on, at, now, account_id=account_id), on
    if not send_at:
        raise PostError(
            "请写明发送时间 send_at（如 2026-12-04 09:00）或关键日期 on（如 constitution-day）"
        )
    return parse_time(send_at), None


def parse_time(value: str | datetime) -> datetime:
    """Staff write Beijing time; the database keeps UTC (SQLite drops the zone)."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace(" ", "T"))
        except ValueError:
            raise PostError(f"时间格式不对：{value}（应为 2026-12-04 09:00）") from None
    try:
        return (moment.replace(tzinfo=TZ) if moment.tzinfo is None else moment).astimezone(UTC)
    except OverflowError:  # "0001-01-01 00:00" has no UTC moment
        raise PostError(f"时间不对：{value}（应为 2026-12-04 09:00）") from None


_CLOCK = re.compile(r"^\s*(\d{1,2})\s*(?:[:：]\s*(\d{2})|点\s*(?:(半)|(\d{1,2})\s*分?)?)\s*$")


def parse_clock(value: str) -> tuple[int, int]:
    """A time of day as staff write it: "09:00", "9:30", "9点", "9点半", "9点15分"."""
    m = _CLOCK.match(str(value))
    if m:
        hour = int(m.group(1))
        minute = 30 if m.group(3) else int(m.group(2) or m.group(4) or 0)
        if hour < 24 and minute < 60:
            return hour, minute
    raise PostError(f"时刻格式不对：{value}（应为 09:00 这样的 24 小时制，或“9点”“9点半”）")


def key_dates(account_id: int = DEFAULT_ACCOUNT_ID) -> dict[str, campaigns.Entry]:
    """The key dates an account's posts may be scheduled on: the national calendar and the
    account's own additions."""
    additions = accounts.by_id(account_id).calendar_file
    return campaigns.with_additions(current_app.config["CALENDAR_FILE"], additions)


def calendar_time(
    entry_id: str, at: str, now: datetime, *, account_id: int = DEFAULT_ACCOUNT_ID
) -> datetime:
    """The next first day of a key date, at `at` o'clock Beijing time."""
    entries = key_dates(account_id)
    if entry_id not in entries:
        raise PostError(f"日历里没有关键日期 {entry_id}；可选：{', '.join(entries)}")
    hour, minute = parse_clock(at)
    today = now.astimezone(TZ).date()
    day = campaigns.next_start(entries[entry_id].rule, today)
    if day is None:
        raise PostError(f"{entry_id} 在两年内没有日期")
    moment = datetime.combine(day, time(hour, minute), tzinfo=TZ)
    if moment <= now:  # today's occurrence already began: take the next one
        day = campaigns.next_start(entries[entry_id].rule, today + timedelta(days=1))
        moment = datetime.combine(day, time(hour, minute), tzinfo=TZ)
    return moment.astimezone(UTC)
