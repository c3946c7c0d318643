"""The optional Redis connection that workers share; absent on a laptop.

Redis is an accelerator, never a single point of failure: every caller falls back to the
database (and the database to the process) when it is unset or unreachable.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, current_app

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    client = None
    if url:
        client = redis.Redis.from_url(
            str(url), socket_timeout=0.5, socket_connect_timeout=0.5, decode_responses=True
        )
    app.extensions["pufa.redis"] = client


def redis_client() -> redis.Redis | None:
    return current_app.extensions.get("pufa.redis")


RedisError = redis.RedisError
