"""The legal-education calendar as pure functions of a date.

Key dates live in `content/calendar.toml` so staff can edit them without code; this module
parses their rules (solar days, spans that cross the new year, whole months, lunar dates and
spans through the maintained `lunardate` library, market-day cycles) and answers "which days
does this entry cover between two dates" and "when does it next begin".
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from lunardate import LunarDate

from bot.errors import ContentError

_MD = r"(\d{2})-(\d{2})"
_RULES = {
    "solar": re.compile(rf"^solar {_MD}$"),
    "range": re.compile(rf"^range {_MD}\.\.{_MD}$"),
    "month": re.compile(r"^month (\d{1,2})$"),
    "lunar": re.compile(rf"^lunar {_MD}$"),
    "lunar-range": re.compile(rf"^lunar {_MD}\.\.{_MD}$"),
    "market": re.compile(r"^market (\d(?:,\d)*)$"),
    "lunar-market": re.compile(r"^lunar-market (\d(?:,\d)*)$"),
    "every": re.compile(r"^every (\d{1,3}) days from (\d{4}-\d{2}-\d{2})$"),
}


@dataclass(frozen=True)
class Entry:
    id: str
    name: str
    rule: str
    topics: tuple[str, ...] = ()
    laws: tuple[str, ...] = ()


def parse(rule: str) -> tuple[str, tuple[str, ...]]:
    """The rule's kind and its parts; ValueError naming what is wrong."""
    for kind, pattern in _RULES.items():
        m = pattern.match(rule.strip())
        if m:
            parts = m.groups()
            _validate(kind, parts, rule)
            return kind, parts
    raise ValueError(
        f"rule '{rule}' is not one of: solar MM-DD, range MM-DD..MM-DD, month M, "
        "lunar MM-DD[..MM-DD], market D,D, lunar-market D,D, every N days from DATE"
    )


def _validate(kind: str, parts: tuple[str, ...], rule: str) -> None:
    if kind in ("solar", "range"):
        for m, d in zip(parts[::2], parts[1::2], strict=True):
            date(2024, int(m), int(d))  # a leap year, so 02-29 is allowed
    elif kind == "month" and not 1 <= int(parts[0]) <= 12:
        raise ValueError(f"rule '{rule}': month must be 1-12")
    elif kind in ("lunar", "lunar-range"):
        for m, d in zip(parts[::2], parts[1::2], strict=True):
            if not (1 <= int(m) <= 12 and 1 <= int(d) <= 30):
                raise ValueError(f"rule '{rule}': lunar month 1-12, day 1-30")
    elif kind == "every" and int(parts[0]) < 1:
        raise ValueError(f"rule '{rule}': the cycle must be at least one day")


def covers(rule: str, day: date) -> bool:
    """Is `day` one of the days this rule marks?"""
    kind, p = parse(rule)
    if kind == "solar":
        return (day.month, day.day) == (int(p[0]), int(p[1]))
    if kind == "range":
        start, end, here = (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), (day.month, day.day)
        return start <= here <= end if start <= end else here >= start or here <= end
    if kind == "month":
        return day.month == int(p[0])
    if kind in ("lunar", "lunar-range"):
        lunar = LunarDate.from_solar_date(day.year, day.month, day.day)
        here = (lunar.month, lunar.day)
        if lunar.is_leap_month:
            return False  # festivals are kept in the ordinary month, not its leap repeat
        start = (int(p[0]), int(p[1]))
        end = (int(p[2]), int(p[3])) if kind == "lunar-range" else start
        return start <= here <= end if start <= end else here >= start or here <= end
    if kind == "market":
        return day.day % 10 in {int(x) for x in p[0].split(",")}
    if kind == "lunar-market":
        lunar = LunarDate.from_solar_date(day.year, day.month, day.day)
        return lunar.day % 10 in {int(x) for x in p[0].split(",")}
    every, anchor = int(p[0]), date.fromisoformat(p[1])
    return (day - anchor).days % every == 0


def days(rule: str, start: date, end: date) -> Iterator[date]:
    """Every day in [start, end] that the rule marks."""
    parse(rule)  # fail early, once
    day = start
    while day <= end:
        if covers(rule, day):
            yield day
        day += timedelta(days=1)


def starts(rule: str, start: date, end: date) -> list[date]:
    """First days of each occurrence in [start, end]: a span counts once, where it begins.

    A span already running on `start` (the fire season on 1 January) does not begin there.
    """
    return [d for d in days(rule, start, end) if not covers(rule, d - timedelta(days=1))]


def next_start(rule: str, after: date, *, horizon_days: int = 800) -> date | None:
    """The first day on or after `after` on which an occurrence of the rule begins."""
    found = starts(rule, after, after + timedelta(days=horizon_days))
    return found[0] if found else None


def with_additions(path: str | Path, additions: str | Path | None) -> dict[str, Entry]:
    """The national calendar and a township's own dates (its market days, its village's
    festival) from the account's file; an addition with a national id replaces it."""
    entries = load(path)
    if additions:
        extra = Path(additions)
        if not extra.is_absolute():
            extra = Path(path).parent / extra
        entries = {**entries, **load(extra)}
    return entries


def load(path: str | Path) -> dict[str, Entry]:
    """Read content/calendar.toml; ContentError naming the entry and field on any problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ContentError([f"{path}: cannot read: {exc}"]) from None
    problems, entries = [], {}
    for i, raw in enumerate(data.get("date", []), start=1):
        where = f"{path.name}: date '{raw.get('id', f'#{i}')}'"
        for key in ("id", "name", "rule"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                problems.append(f"{where}: field '{key}': missing")
        if any(p.startswith(where) for p in problems):
            continue
        try:
            parse(raw["rule"])
        except ValueError as exc:
            problems.append(f"{where}: field 'rule': {exc}")
            continue
        if raw["id"] in entries:
            problems.append(f"{where}: duplicate id")
        entries[raw["id"]] = Entry(
            raw["id"],
            raw["name"],
            raw["rule"],
            tuple(raw.get("topics", ())),
            tuple(raw.get("laws", ())),
        )
    if problems:
        raise ContentError(problems)
    return entries
