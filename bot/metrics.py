"""Prometheus metrics: replies by outcome and latency, spool depth, quarantined entries, posts.

Counters live in prometheus_client's registry. Under gunicorn set PROMETHEUS_MULTIPROC_DIR
(deploy/ does) so that /metrics adds up every worker; without it each process reports its
own. Spool, quarantine and post figures are read at scrape time from the disk and the
database, so they are the same whichever worker answers the scrape.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from flask import Flask
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from bot import journal
from bot.extensions import db
from bot.models import Post
from bot.stores import in_database

REPLIES = Counter("pufa_replies", "Replies to residents, by outcome", ["outcome"])
LATENCY = Histogram(
    "pufa_reply_seconds",
    "Time from a message's arrival to its reply being ready",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)


def observe(outcome: str, seconds: float) -> None:
    REPLIES.labels(outcome=outcome).inc()
    LATENCY.observe(seconds)


class Stores:
    """Figures read at scrape time: the spool, the quarantine, posts by state."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterator[Metric]:
        with self.app.app_context():
            spool = GaugeMetricFamily("pufa_spool_entries", "Q&A entries waiting in the spool")
            spool.add_metric([], journal.depth())
            yield spool
            held = GaugeMetricFamily("pufa_quarantined_entries", "Entries the database refused")
            held.add_metric([], len(journal.quarantined()))
            yield held
            yield self._posts()

    def _posts(self) -> Metric:
        posts = GaugeMetricFamily("pufa_posts", "Posts by state", labels=["state"])
        try:
            for state, count in in_database(_posts_by_state):
                posts.add_metric([state], count)
        except Exception:  # the database is down: the figure is absent, the scrape works
            pass
        return posts


def _posts_by_state() -> list[tuple[str, int]]:
    rows = db.session.execute(select(Post.state, func.count()).group_by(Post.state))
    return [(state, count) for state, count in rows]


def exposition(app: Flask) -> bytes:
    """The text a Prometheus scrape gets."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    stores = CollectorRegistry()
    stores.register(Stores(app))
    return text + generate_latest(stores)
