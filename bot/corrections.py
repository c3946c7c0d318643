"""Advisers' corrections: "this question is answered by that snippet", for residents at once.

A correction is keyed by the normalised question (`normalise`) within one account. The newest
correction of a key is the one in effect; one whose snippet is None withdraws the key (the bot
answers by itself again). Nothing is ever overwritten: a revert is a new correction back to
what was there, so the history says who changed what, when.

Every worker keeps the corrections in effect in memory (`app.extensions`) and asks the
database at most every `CORRECTIONS_CHECK_SECONDS` (2 s) whether anything changed (the
highest id and the number of rows); only then does it read them again. The check runs under
the storage budget (`bot.stores`): with the database slow or down the worker keeps the last
set it knew and the resident's reply does not wait.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from bot import answering, lawbase, search, users
from bot.errors import PufaError
from bot.extensions import db
from bot.models import Correction
from bot.privacy import mask
from bot.stores import StorageUnavailable, in_database

log = logging.getLogger(__name__)

CHECK_SECONDS = 2.0  # default for CORRECTIONS_CHECK_SECONDS
KEY_MAX = 200  # Correction.question_key
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)  # spaces, punctuation, symbols, masking stars


class CorrectionError(PufaError):
    """A correction that cannot be made as asked; the message is for people."""


@dataclass(frozen=True)
class Fix:
    """The correction in effect for one question: answer with this snippet."""

    snippet_id: str
    correction_id: int


def normalise(question: str) -> str:
    """The key a question is corrected under: masked, folded, without spaces or punctuation.

    "老板拖欠工资，咋个整？" and "老板 拖欠工資咋个整" share a key; so do the stored (masked)
    question and the resident's raw text, since numbers are masked first.
    """
    folded = _NOISE.sub("", search.normalise(mask(question)))
    if len(folded) <= KEY_MAX:
        return folded
    digest = hashlib.sha256(folded.encode()).hexdigest()[:16]
    return f"{folded[: KEY_MAX - 17]}#{digest}"


# -- recording ------------------------------------------------------------------------------


def record(
    *,
    account_id: int,
    question: str,
    snippet_id: str,
    author: str,
    exchange_id: int | None = None,
    before: list[dict[str, Any]] | None = None,
) -> Correction:
    """From now on `question` (in this account) is answered by snippet `snippet_id`.

    `before` is what the question got until now; by default the correction in effect, or
    else what the bot answers by itself.
    """
    base = lawbase.current()
    snippet_id = snippet_id.strip()
    if snippet_id not in base.by_id:
        raise CorrectionError(f"没有编号为“{snippet_id}”的法条条目")
    question = mask(question).strip()
    key = normalise(question)
    if not key:
        raise CorrectionError("这条消息没有可以更正的问题")
    current = _latest(account_id, key)
    if current is not None and current.snippet_id == snippet_id:
        raise CorrectionError("这个问题已经更正为这一条了")
    if before is None and current is not None and current.snippet_id is not None:
        before = _in_effect(current)
    elif before is None:
        before = uncorrected(question)
    row = _add(
        account_id=account_id,
        exchange_id=exchange_id,
        question=question,
        key=key,
        snippet_id=snippet_id,
        before=before,
        author=author,
    )
    users.audit(
        author,
        "correction.record",
        account_id=account_id,
        target=f"correction:{row.id}",
        detail=f"{snippet_id} ← {_labels(before)}",
    )
    db.session.commit()
    _changed()
    return row


def revert(*, correction: Correction, author: str) -> Correction:
    """Undo the correction in effect for its question: back to what was there before it (an
    earlier correction, or the bot's own answer), recorded as a new correction."""
    current = _latest(correction.account_id, correction.question_key)
    if current is None or current.id != correction.id or correction.snippet_id is None:
        raise CorrectionError("只能撤销目前生效的更正")
    earlier = db.session.scalar(
        select(Correction)
        .where(
            Correction.account_id == correction.account_id,
            Correction.question_key == correction.question_key,
            Correction.id < correction.id,
        )
        .order_by(Correction.id.desc())
        .limit(1)
    )
    restored = earlier.snippet_id if earlier is not None else None
    if restored is not None and restored not in lawbase.current().by_id:
        restored = None  # that snippet left the base: the bot answers by itself
    row = _add(
        account_id=correction.account_id,
        exchange_id=correction.exchange_id,
        question=correction.question,
        key=correction.question_key,
        snippet_id=restored,
        before=_in_effect(correction),
        author=author,
    )
    users.audit(
        author,
        "correction.revert",
        account_id=correction.account_id,
        target=f"correction:{row.id}",
        detail=f"撤销 #{correction.id}，恢复为 {restored or '机器人自己的回答'}",
    )
    db.session.commit()
    _changed()
    return row


def _add(
    *,
    account_id: int,
    exchange_id: int | None,
    question: str,
    key: str,
    snippet_id: str | None,
    before: list[dict[str, Any]],
    author: str,
) -> Correction:
    row = Correction(
        account_id=account_id,
        exchange_id=exchange_id,
        question=question,
        question_key=key,
        snippet_id=snippet_id,
        before=before,
        author=author,
    )
    db.session.add(row)
    db.session.flush()
    return row


def _latest(account_id: int, key: str) -> Correction | None:
    return db.session.scalar(
        select(Correction)
        .where(Correction.account_id == account_id, Correction.question_key == key)
        .order_by(Correction.id.desc())
        .limit(1)
    )


def _in_effect(row: Correction) -> list[dict[str, Any]]:
    """What a correction in effect makes residents get, as `before` of the next one."""
    return [{"id": row.snippet_id, "citation": cited(row.snippet_id), "correction": row.id}]


def uncorrected(question: str) -> list[dict[str, Any]]:
    """What the bot answers to `question` by itself: the snippet, or its choices, or nothing."""
    ans = answering.answer(question, answering.context())
    if ans.outcome == "answered" and ans.snippet is not None:
        shown = [ans.snippet]
    elif ans.outcome == "choices":
        shown = ans.options
    else:
        return [{"outcome": ans.outcome}]
    return [{"id": s.id, "citation": s.citation, "outcome": ans.outcome} for s in shown]


def cited(snippet_id: str | None) -> str:
    """A snippet's citation, or its id when it has left the base."""
    if snippet_id is None:
        return ""
    snippet = lawbase.current().by_id.get(snippet_id)
    return snippet.citation if snippet is not None else snippet_id


def _labels(items: list[dict[str, Any]]) -> str:
    return "、".join(c["citation"] for c in items if c.get("citation")) or "无"


def history(account_id: int, *, key: str, exchange_id: int | None = None) -> list[Correction]:
    """Every correction of a question (or made from an exchange), newest first."""
    where = Correction.question_key == key
    if exchange_id is not None:
        where = where | (Correction.exchange_id == exchange_id)
    return list(
        db.session.scalars(
            select(Correction)
            .where(Correction.account_id == account_id, where)
            .order_by(Correction.id.desc())
        )
    )


def in_effect_id(account_id: int, key: str) -> int | None:
    """The id of the correction residents get for this key now (None: none in effect)."""
    row = _latest(account_id, key)
    return row.id if row is not None and row.snippet_id is not None else None


# -- what every worker holds ----------------------------------------------------------------


@dataclass
class _Held:
    """One worker's corrections in effect, swapped whole when the database has news."""

    fixes: dict[tuple[int, str], Fix] = field(default_factory=dict)
    version: tuple[int, int] | None = None  # (max id, rows) when they were read
    checked_at: float = float("-inf")
    failing: bool = False  # the last check could not reach the database
    lock: threading.Lock = field(default_factory=threading.Lock)


def _held() -> _Held:
    return current_app.extensions.setdefault("pufa.corrections", _Held())


def _changed() -> None:
    """This worker just wrote a correction: look again at the next question."""
    _held().checked_at = float("-inf")


def lookup(text: str, account_id: int) -> Fix | None:
    """The correction in effect for this question in this account, or None. Never raises."""
    try:
        held = _held()
        _refresh(held)
        if not held.fixes:
            return None
        return held.fixes.get((account_id, normalise(text)))
    except Exception:  # corrections must never cost a resident the reply
        log.exception("corrections lookup failed; answering without corrections")
        return None


def _refresh(held: _Held) -> None:
    every = float(current_app.config.get("CORRECTIONS_CHECK_SECONDS", CHECK_SECONDS))
    if time.monotonic() - held.checked_at < every:
        return
    if not held.lock.acquire(blocking=False):
        return  # another thread is reading them now: the last known set will do
    try:
        held.checked_at = time.monotonic()
        try:
            version, fixes = in_database(_read_if_changed, held.version)
        except (SQLAlchemyError, StorageUnavailable) as exc:
            if not held.failing:  # one line per outage, not one every few seconds
                log.warning(
                    "corrections not checked, the last known %d stay: %s", len(held.fixes), exc
                )
            held.failing = True
            return
        if held.failing:
            log.info("corrections checked again after an outage")
        held.failing = False
        if fixes is not None:
            held.fixes = fixes
            log.info("corrections loaded: %d in effect", len(fixes))
        held.version = version
    finally:
        held.lock.release()


def _read_if_changed(
    known: tuple[int, int] | None,
) -> tuple[tuple[int, int], dict[tuple[int, str], Fix] | None]:
    """(version, corrections in effect), or (version, None) when nothing changed since `known`.

    The row count catches a correction committed after one with a higher id."""
    top, rows = db.session.execute(select(func.max(Correction.id), func.count(Correction.id))).one()
    version = (int(top or 0), int(rows or 0))
    if version == known:
        return version, None
    latest: dict[tuple[int, str], Correction] = {}
    for row in db.session.scalars(select(Correction).order_by(Correction.id)):
        latest[(row.account_id, row.question_key)] = row
    fixes = {
        key: Fix(row.snippet_id, row.id)
        for key, row in latest.items()
        if row.snippet_id is not None
    }
    return version, fixes


# -- into the content files ----------------------------------------------------------------


@dataclass(frozen=True)
class Phrasings:
    """Questions advisers corrected to one snippet, for its `questions` in content/laws/."""

    snippet_id: str
    citation: str
    file: str  # its file in content/laws/
    questions: list[str]


@dataclass
class Export:
    add: list[Phrasings]
    remove: list[tuple[str, str]]  # (snippet id, question) exported before, since withdrawn
    rows: list[Correction]  # what was exported now


def pending_export(*, everything: bool = False) -> Export:
    """Corrections in effect not yet exported (all of them with `everything`), per snippet.

    Questions a snippet lists already are left out. A question exported to a snippet and since
    corrected elsewhere or withdrawn is named for removal."""
    base = lawbase.current()
    rows = list(db.session.scalars(select(Correction).order_by(Correction.id)))
    by_key: dict[tuple[int, str], list[Correction]] = defaultdict(list)
    for row in rows:
        by_key[(row.account_id, row.question_key)].append(row)
    grouped: dict[str, list[str]] = defaultdict(list)
    remove: list[tuple[str, str]] = []
    marked: list[Correction] = []
    for versions in by_key.values():
        last = versions[-1]
        fresh = everything or any(v.exported_at is None for v in versions)
        if not fresh:
            continue
        marked += [v for v in versions if v.exported_at is None]
        for v in versions[:-1]:
            if v.exported_at is not None and v.snippet_id and v.snippet_id != last.snippet_id:
                remove.append((v.snippet_id, v.question))
        if last.snippet_id is None or last.snippet_id not in base.by_id:
            continue
        known = {normalise(q) for q in base.by_id[last.snippet_id].questions}
        if last.question_key not in known and last.question not in grouped[last.snippet_id]:
            grouped[last.snippet_id].append(last.question)
    add = [
        Phrasings(sid, base.by_id[sid].citation, Path(base.by_id[sid].law.file).name, qs)
        for sid, qs in sorted(grouped.items())
        if qs
    ]
    return Export(add, sorted(set(remove)), marked)


def mark_exported(rows: list[Correction], *, now: datetime | None = None) -> None:
    moment = now or datetime.now(UTC)
    for row in rows:
        row.exported_at = moment
    db.session.commit()


def as_toml(export: Export) -> str:
    """What an adviser pastes into content/laws/: each snippet's new phrasings as TOML."""
    out: list[str] = []
    for item in export.add:
        out.append(f"# {item.citation}（content/laws/{item.file}）")
        out.append(f'# 把下面几行加到 id = "{item.snippet_id}" 这一条的 questions = [ … ] 里：')
        out += [f"  {_toml_string(q)}," for q in item.questions]
        out.append("")
    if export.remove:
        out.append(
            "# 下面这些问法以前导出过，后来更正到了别的条目或已撤销，请从原条目的 questions 里删掉："
        )
        out += [f"#   {sid}: {_toml_string(q)}" for sid, q in export.remove]
        out.append("")
    return "\n".join(out)


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are all valid TOML escapes)."""
    return json.dumps(" ".join(text.split()), ensure_ascii=False)
