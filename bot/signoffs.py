"""Advisers sign off snippets written by machine; content/laws/ stays the source of truth.

A snippet whose review says `quote-verified` had its quote checked against the law by
lawref.py, but no lawyer has read its explanation: the console shows it as awaiting review.
An adviser's sign-off is recorded at once (the console shows it), and `flask content
signoffs` writes it into the snippet's TOML as `review = { status = "adviser-reviewed", … }`,
a change the office reviews and commits like any content edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.errors import PufaError
from bot.extensions import db
from bot.lawbase import Snippet
from bot.models import SnippetSignoff
from bot.posts.states import TZ

REVIEWED = "adviser-reviewed"


class SignoffError(PufaError):
    """A sign-off that cannot be made as asked; the message is for people."""


@dataclass(frozen=True)
class Status:
    reviewed: bool
    by: str
    on: str


def status(snippet: Snippet, signed: dict[str, SnippetSignoff]) -> Status:
    """Reviewed by an adviser (in the file, or signed in the console), or awaiting review."""
    if snippet.review.get("status") == REVIEWED:
        return Status(True, snippet.review.get("by", ""), snippet.review.get("on", ""))
    if snippet.id in signed:
        row = signed[snippet.id]
        return Status(True, row.adviser, f"{row.at.astimezone(TZ):%Y-%m-%d}")
    return Status(False, snippet.review.get("by", ""), snippet.review.get("on", ""))


def signed() -> dict[str, SnippetSignoff]:
    return {row.snippet_id: row for row in db.session.scalars(select(SnippetSignoff))}


def sign(snippet: Snippet, *, adviser: str, note: str | None = None) -> SnippetSignoff:
    if snippet.review.get("status") == REVIEWED:
        raise SignoffError("这一条已经由律师审核过了")
    row = SnippetSignoff(snippet_id=snippet.id, adviser=adviser, note=note or None)
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise SignoffError("这一条刚被另一位律师签核了") from None
    return row


_REVIEW_LINE = re.compile(r"^review = \{.*\}$", re.MULTILINE)


def export(content_dir: str | Path, *, now: datetime | None = None) -> list[str]:
    """Write unexported sign-offs into content/laws/*.toml; returns the snippet ids written."""
    pending = db.session.scalars(
        select(SnippetSignoff).where(SnippetSignoff.exported_at.is_(None))
    ).all()
    written = []
    for path in sorted(Path(content_dir, "laws").glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        changed = text
        for row in pending:
            changed = _mark(changed, row)
        if changed != text:
            path.write_text(changed, encoding="utf-8")
            written += [r.snippet_id for r in pending if f'id = "{r.snippet_id}"' in text]
    moment = now or datetime.now(UTC)
    for row in pending:
        if row.snippet_id in written:
            row.exported_at = moment
    db.session.commit()
    return written


def _mark(text: str, row: SnippetSignoff) -> str:
    """Replace the review line of one snippet (the first after its id, before the next)."""
    start = text.find(f'id = "{row.snippet_id}"')
    if start < 0:
        return text
    end = text.find("[[snippet]]", start)
    end = len(text) if end < 0 else end
    block = text[start:end]
    by = row.adviser.replace('"', "'")
    line = f'review = {{ status = "{REVIEWED}", by = "{by}", on = "{row.at.astimezone(TZ):%Y-%m-%d}" }}'
    new_block, count = _REVIEW_LINE.subn(line, block, count=1)
    return text[:start] + new_block + text[end:] if count else text
