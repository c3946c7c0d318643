"""The scheduler's jobs: every tick, publish what is due (bot/posts/ does the work); once a
day, unlink old exchanges from residents (bot/journal.py, PUFA_RETENTION_MONTHS)."""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime

from flask import Flask

from bot import health, journal, posts
from scheduler.leader import Leadership

log = logging.getLogger(__name__)
_app: Flask | None = None  # set by python -m scheduler before the scheduler starts
_leadership: Leadership | None = None  # held by the active scheduler (scheduler/leader.py)


def bind(app: Flask) -> None:
    global _app
    _app = app


def lead(leadership: Leadership) -> None:
    """The jobs run only while this process holds the scheduler lock."""
    global _leadership
    _leadership = leadership


def _still_leading() -> None:
    """Losing the lock ends the process (systemd restarts it as a standby): never two
    schedulers publishing at once."""
    if _leadership is not None and not _leadership.alive():
        log.critical("scheduler no longer holds the lock: exiting so a standby can lead")
        os._exit(3)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def tick(now: datetime | None = None) -> posts.TickReport:
    """Publish due posts; a failure is logged and the next tick tries again."""
    if _app is None:
        raise RuntimeError("scheduler.jobs.bind(app) was not called")
    _still_leading()
    with _app.app_context():
        report = posts.publish_due(now=now or datetime.now(UTC), worker=worker_name())
        health.beat(health.SCHEDULER, worker_name())
        if report.started or report.submitted or report.failed or report.missed:
            log.info(
                "tick: started %s, submitted %s, refused as duplicates %s, retried %s, "
                "failed %s, missed %s",
                report.started,
                report.submitted,
                report.duplicates_refused,
                report.retried,
                report.failed,
                report.missed,
            )
        return report


def retain(now: datetime | None = None) -> int:
    """Apply the retention setting; a failure is logged and tomorrow's run tries again."""
    if _app is None:
        raise RuntimeError("scheduler.jobs.bind(app) was not called")
    _still_leading()
    with _app.app_context():
        months = int(_app.config["RETENTION_MONTHS"])
        cutoff = journal.retention_cutoff(now or datetime.now(UTC), months)
        count = journal.anonymise_before(cutoff) if cutoff else 0
        if count:
            log.info("retention: %s exchanges older than %s months unlinked", count, months)
        return count
