"""python -m scheduler: the one scheduler process (APScheduler 3.x, Asia/Shanghai).

Start it on two hosts (or twice on one): one leads, the other stands by and takes over
within `SCHEDULER_STANDBY_POLL_SECONDS` when the leader dies (scheduler/leader.py).

Its job store is the application database, so the tick job survives restarts; but the truth
about posts is the `posts` and `deliveries` tables, not the job store (APScheduler's FAQ: a
job store cannot be shared between processes, and it drops jobs it cannot unpickle). Even a
second scheduler started by mistake sends nothing twice: bot/posts/publishing.py claims each delivery
with a conditional UPDATE.
"""

from __future__ import annotations

import logging

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler

from bot import create_app
from bot.extensions import db
from scheduler import jobs, leader

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
    with app.app_context():
        engine = db.engine
    poll = float(app.config["SCHEDULER_STANDBY_POLL_SECONDS"])
    try:
        leadership = leader.acquire(engine, poll)
    except KeyboardInterrupt:
        log.info("scheduler stopped while standing by")
        return
    jobs.lead(leadership)
    scheduler = build(app)
    log.info("scheduler started: tick every %ss", app.config["SCHEDULER_TICK_SECONDS"])
    jobs.tick()  # catch up at once: posts whose time passed while we were down
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
    finally:
        leadership.release()


if __name__ == "__main__":
    main()
