"""A year of the campaign calendar in compressed time, with faults, two schedulers and crashes.

Queues a post for every key date of content/calendar.toml in one year (and every market day),
then moves a simulated clock through the year in 15-minute ticks, with two scheduler
processes' worth of work racing each other, while injecting WeChat faults (system busy,
HTTP 502, time-outs, a few permanent errors), crashes between "WeChat accepted" and "marked
sent", and scheduler outages of several hours. Prints posts due, sent, duplicates and missed.

    python bench/soak.py [--year 2027] [--seed 1] [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bot import campaigns, create_app, posts  # noqa: E402
from bot.extensions import db  # noqa: E402
from bot.models import Delivery, Post  # noqa: E402
from bot.wechat.fakeapi import FakeWeChat, create_fake_api  # noqa: E402

AUDIENCES = ["全体", "学生家长", "企业", "农户", "外出务工人员", "村组干部"]


class Crash(Exception):
    """A scheduler dying right after WeChat accepted a send."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2027)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--days", type=int, default=365, help="simulate only this many days")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    fake = FakeWeChat("wxsoak0000000000", "soak-secret")
    server = make_server("127.0.0.1", 0, create_fake_api(fake), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = {
        "DATABASE_URL": args.database_url or f"sqlite:///{tempfile.mkdtemp()}/soak.sqlite3",
        "WECHAT_APP_ID": "wxsoak0000000000",
        "WECHAT_APP_SECRET": "soak-secret",
        "WECHAT_API_BASE": f"http://127.0.0.1:{server.server_port}/cgi-bin/",
        "WECHAT_API_TIMEOUT": 0.5,
        "WECHAT_ACCOUNT_TYPE": "service",
        "FULLTEXT": False,
    }
    schedulers = [create_app(config), create_app(config)]
    with schedulers[0].app_context():
        db.drop_all()
        db.create_all()
        queue_year(args.year, rng)
        outages = plan_outages(rng)
    real_record = posts.record_sent
    crashes = Counter()

    def flaky_record(*a, **kw):
        if rng.random() < 0.10:
            crashes["crash after send"] += 1
            raise Crash
        return real_record(*a, **kw)

    posts.record_sent = flaky_record
    clock = datetime(args.year, 1, 1, tzinfo=UTC) - timedelta(hours=8)
    end = min(datetime(args.year + 1, 1, 1, tzinfo=UTC), clock + timedelta(days=args.days))
    ticks = 0
    while clock < end:
        if not any(a <= clock < b for a, b in outages):
            inject_faults(fake, rng)
            threads = [
                threading.Thread(target=run_tick, args=(app, clock, f"s{i}", crashes))
                for i, app in enumerate(schedulers)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ticks += 1
        clock += timedelta(minutes=15)
    posts.record_sent = real_record
    for _ in range(3):  # after the year, a last few healthy ticks settle what is in flight
        clock += timedelta(hours=1)
        fake.faults.clear()
        run_tick(schedulers[0], clock, "s0", crashes)
    report(schedulers[0], fake, clock, ticks, outages, crashes)
    server.shutdown()


def queue_year(year: int, rng: random.Random) -> int:
    entries = campaigns.load(ROOT / "content" / "calendar.toml")
    count = 0
    for entry in entries.values():
        for day in campaigns.starts(entry.rule, date(year, 1, 1), date(year, 12, 31)):
            audiences = rng.sample(AUDIENCES, rng.choice((1, 1, 2)))
            moment = datetime.combine(day, time(9, rng.choice((0, 30))), tzinfo=posts.TZ)
            post = posts.create(
                actor="普法办",
                title=f"{entry.name} {day}",
                body=f"{entry.name}普法",
                audiences=audiences,
                send_at=moment,
                now=moment - timedelta(days=30),
            )
            posts.act(post.id, "submit", actor="普法办")
            posts.act(post.id, "approve", actor="司法所", now=moment - timedelta(days=30))
            count += 1
    return count


def plan_outages(rng: random.Random) -> list[tuple[datetime, datetime]]:
    """Four scheduler outages, each beginning an hour before some post is due: the 2 h and
    4 h ones end within the 6 h grace (the post goes out late), the 9 h and 30 h ones do not
    (the post is flagged missed)."""
    times = sorted({p.send_at for p in db.session.scalars(select(Post))})
    outages = []
    for hours, due in zip((2, 4, 9, 30), rng.sample(times, 4), strict=True):
        start = due.replace(tzinfo=UTC) - timedelta(hours=1)
        outages.append((start, start + timedelta(hours=hours)))
    return outages


def inject_faults(fake: FakeWeChat, rng: random.Random) -> None:
    """Now and then the next send fails (at most one fault waits at a time)."""
    if any(f.get("times", 1) > 0 for f in fake.faults):
        return
    roll = rng.random()
    if roll < 0.05:
        fake.faults.append({"endpoint": "message/mass/sendall", "errcode": -1, "times": 1})
    elif roll < 0.08:
        fake.faults.append({"endpoint": "message/mass/sendall", "status": 502, "times": 1})
    elif roll < 0.10:
        fake.faults.append({"endpoint": "message/mass/sendall", "delay": 0.8, "times": 1})
    elif roll < 0.105:
        fake.faults.append({"endpoint": "message/mass/sendall", "errcode": 45009, "times": 1})


def run_tick(app, clock: datetime, name: str, crashes: Counter) -> None:
    with app.app_context():
        try:
            posts.publish_due(now=clock, worker=name)
        except Crash:
            db.session.rollback()
        except Exception as exc:  # a failing tick is logged and the next one goes on
            crashes[f"tick error {type(exc).__name__}"] += 1
            db.session.rollback()


def report(app, fake: FakeWeChat, end: datetime, ticks: int, outages, crashes: Counter) -> None:
    with app.app_context():
        due_posts = select(Post).where(Post.send_at <= end - timedelta(hours=3))
        states = Counter(p.state for p in db.session.scalars(due_posts))
        due = sum(states.values())
        deliveries = list(
            db.session.scalars(
                select(Delivery).join(Post).where(Post.send_at <= end - timedelta(hours=3))
            )
        )
        reasons = Counter(
            (p.last_error or "")[:60]
            for p in db.session.scalars(select(Post).where(Post.state.in_(("failed", "missed"))))
        )
    accepted = fake.accepted
    refused = sum(
        1
        for c in fake.calls
        if c["endpoint"] == "message/mass/sendall" and c.get("errcode") == 45065
    )
    duplicates = sum(n - 1 for n in accepted.values() if n > 1)
    flagged = states["missed"] + states["failed"]
    silent = due - states["published"] - flagged - states["awaiting_confirmation"]
    print(
        f"simulated year: {ticks} ticks of 15 min, 2 schedulers, outages of "
        f"{', '.join(f'{(b - a).total_seconds() / 3600:.0f}h' for a, b in outages)}"
    )
    faults = ", ".join(f"{n} × {kind}" for kind, n in sorted(fake.injected.items()))
    print(
        f"faults injected: {faults}; {crashes['crash after send']} crashes between send and commit"
    )
    print(f"posts due:        {due}  (deliveries {len(deliveries)})")
    print(
        f"sent:             {states['published']} posts, {len(accepted)} deliveries accepted by WeChat"
    )
    print(
        f"duplicates:       {duplicates}  (resends refused by clientmsgid after crashes or "
        f"time-outs: {refused})"
    )
    print(
        f"missed:           {states['missed']} flagged missed, {states['failed']} flagged failed, "
        f"{silent} silently lost"
    )
    for reason, n in reasons.most_common(5):
        print(f"  {n} × {reason}")
    if duplicates or silent:
        sys.exit(1)


if __name__ == "__main__":
    main()
