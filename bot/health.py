"""Liveness and readiness: what an operator's monitor asks every minute.

Readiness reports each dependency apart, so a monitor says which one failed: the database
(under the storage budget), Redis (when configured), the law base, and the scheduler's
heartbeat (its last tick, written by `python -m scheduler`). Residents are still answered
while the database is down (the spool): readiness is for operators, not for WeChat.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import text

from bot import lawbase
from bot.extensions import db
from bot.models import Heartbeat
from bot.stores import RedisError, in_database, storage

SCHEDULER = "scheduler"


def beat(name: str, worker: str, now: datetime | None = None) -> None:
    """Record that `name` (the scheduler) has just done its work (caller's transaction)."""
    row = db.session.get(Heartbeat, name) or Heartbeat(name=name)
    row.worker, row.beat_at = worker, now or datetime.now(UTC)
    db.session.add(row)
    db.session.commit()


def readiness(now: datetime | None = None) -> dict[str, dict[str, Any]]:
    now = now or datetime.now(UTC)
    return {
        "database": _check(_database),
        "redis": _check(_redis),
        "content": _check(_content),
        "scheduler": _check(lambda: _scheduler(now)),
    }


def _check(probe) -> dict[str, Any]:
    try:
        return {"ok": True, "detail": probe()}
    except Exception as exc:
        return {"ok": False, "detail": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}


def _database() -> str:
    in_database(lambda: db.session.execute(text("select 1")).scalar_one())
    return "answers"


def _redis() -> str:
    client = storage().redis
    if client is None:
        return "not configured (in-process stores)"
    try:
        client.ping()
    except RedisError as exc:
        raise ConnectionError(str(exc)) from None
    return "answers"


def _content() -> str:
    base = lawbase.current()
    if not base.snippets:
        raise ValueError("the law base is empty")
    return f"{len(base.snippets)} snippets"


def _scheduler(now: datetime) -> str:
    row = in_database(lambda: db.session.get(Heartbeat, SCHEDULER))
    if row is None:
        raise LookupError("no tick recorded yet: is python -m scheduler running?")
    age = (now - row.beat_at).total_seconds()  # models.UTCDateTime: aware, in UTC
    limit = 3 * int(current_app.config["SCHEDULER_TICK_SECONDS"])
    if age > limit:
        raise TimeoutError(f"last tick {age:.0f} s ago on {row.worker} (limit {limit} s)")
    return f"last tick {age:.0f} s ago on {row.worker}"
