"""python -m scheduler: the one scheduler process (APScheduler 3.x, Asia/Shanghai).

Its job store is the application database, so the tick job survives restarts; but the truth
about posts is the `posts` and `deliveries` tables, not the job store (APScheduler's FAQ: a
job store cannot be shared between processes, and it drops jobs it cannot unpickle). Even a
second scheduler started by mistake sends nothing twice: bot/posts.py claims each delivery
with a conditional UPDATE.
"""

from __future__ import annotations

import logging

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler

from bot import create_app
from scheduler import jobs

log = logging.getLogger("scheduler")


def build(app) -> BlockingScheduler:
    store = SQLAlchemyJobStore(
        url=app.config["SQLALCHEMY_DATABASE_URI"], tablename="apscheduler_jobs"
    )
    scheduler = BlockingScheduler(jobstores={"default": store}, timezone="Asia/Shanghai")
    scheduler.add_job(
        jobs.tick,
        "interval",
        seconds=int(app.config["SCHEDULER_TICK_SECONDS"]),
        id="pufa-tick",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
    )
    scheduler.add_job(
        jobs.retain,
        "cron",
        hour=3,
        minute=30,
        id="pufa-retention",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
    )
    return scheduler


def main() -> None:
    app = create_app()
    jobs.bind(app)
    scheduler = build(app)
    log.info("scheduler started: tick every %ss", app.config["SCHEDULER_TICK_SECONDS"])
    jobs.tick()  # catch up at once: posts whose time passed while we were down
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")


if __name__ == "__main__":
    main()
