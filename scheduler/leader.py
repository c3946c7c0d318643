"""Exactly one active scheduler, a standby that takes over within a minute.

Every scheduler process waits for leadership before it ticks: on PostgreSQL a session-level
advisory lock held on a dedicated connection (the server releases it the moment the holder's
connection dies, so a killed or frozen-then-dropped leader frees it); on SQLite, which lives
on one host, an exclusive `flock` on a file beside the database. A standby polls every
`SCHEDULER_STANDBY_POLL_SECONDS` (10). The leader checks its lock connection on every tick
and exits if it was lost, so two schedulers never publish at once; and even then each
delivery is claimed in the database, so nothing could be sent twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("scheduler")

LOCK_KEY = 0x50554641  # "PUFA": one advisory lock per database


class Leadership:
    """Held for the life of the active scheduler; `alive()` says whether it still holds."""

    def __init__(self, release: Callable[[], None], alive: Callable[[], bool]):
        self.release, self.alive = release, alive


def acquire(engine: Engine, poll: float, stop: Callable[[], bool] = lambda: False) -> Leadership:
    """Block until this process leads (or `stop()` says to give up: raises TimeoutError)."""
    take = _postgres if engine.dialect.name == "postgresql" else _sqlite_file
    announced = False
    while True:
        held = take(engine)
        if held is not None:
            log.info("scheduler active: this process publishes (pid %s)", os.getpid())
            return held
        if not announced:
            log.info("scheduler standby: another process is active; checking every %ss", poll)
            announced = True
        if stop():
            raise TimeoutError("gave up waiting for leadership")
        time.sleep(poll)


def _postgres(engine: Engine) -> Leadership | None:
    conn: Connection = engine.connect()
    try:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
        conn.commit()
    except Exception:
        conn.close()
        raise
    if not got:
        conn.close()
        return None
    return Leadership(release=conn.close, alive=lambda: _still_connected(conn))


def _still_connected(conn: Connection) -> bool:
    try:
        conn.execute(text("SELECT 1")).scalar()
        conn.commit()
        return True
    except Exception as exc:
        log.error("scheduler lost its lock connection: %s", str(exc).splitlines()[0])
        return False


def _sqlite_file(engine: Engine) -> Leadership | None:
    database = engine.url.database or "pufa"
    path = Path(os.path.abspath(database)).with_suffix(".scheduler.lock")
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return Leadership(release=lambda: os.close(fd), alive=lambda: True)
