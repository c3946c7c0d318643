"""The one access_token that every worker and the scheduler share (shared/WECHAT.md W17, W18).

Each fetch of a plain /token invalidates the previous one, so processes refreshing on their
own knock each other out (40001). Pufa asks for a `stable_token`, which does not rotate on
repeated calls, keeps it in Redis (or the `api_tokens` row), and refreshes under a lock: the
first process refreshes, the others wait and then read what it stored. A forced refresh (at
most 20 a day) is asked for only when the token we hold was itself refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.extensions import db
from bot.models import ApiToken
from bot.stores import RedisError, redis_client

log = logging.getLogger(__name__)

EARLY = timedelta(minutes=5)  # refresh this long before WeChat's expiry
Fetch = Callable[[bool], tuple[str, int]]  # force_refresh → (token, expires_in seconds)


def current(appid: str, *, now: datetime | None = None) -> str | None:
    """The shared token if one is stored and not about to expire."""
    now = now or datetime.now(UTC)
    r = redis_client()
    if r is not None:
        try:
            return r.get(_key(appid))
        except RedisError as exc:
            log.warning("redis unavailable for the access token, using the database: %s", exc)
    with Session(db.engine) as session:
        row = session.get(ApiToken, appid)
        if row and row.token and row.expires_at and row.expires_at - EARLY > now:
            return row.token
    return None


def refresh(
    appid: str, fetch: Fetch, *, refused: str | None = None, now: datetime | None = None
) -> str:
    """Return a fresh token, fetching one only if no other process has done so meanwhile.

    `refused` is the token WeChat just rejected (40001/42001): only then is a forced refresh
    asked for, and only if nobody has replaced that token already.
    """
    r = redis_client()
    if r is not None:
        try:
            return _refresh_redis(r, appid, fetch, refused)
        except RedisError as exc:
            log.warning("redis unavailable for the token lock, using the database: %s", exc)
    return _refresh_db(appid, fetch, refused, now or datetime.now(UTC))


def _refresh_redis(r, appid: str, fetch: Fetch, refused: str | None) -> str:
    with r.lock(f"pufa:token-lock:{appid}", timeout=60, blocking_timeout=30):
        stored = r.get(_key(appid))
        if stored and stored != refused:
            return stored  # another process refreshed while we waited
        token, expires_in = fetch(stored is not None and stored == refused)
        r.set(_key(appid), token, ex=max(60, int(expires_in - EARLY.total_seconds())))
        log.info("access token refreshed (shared in redis, %ss)", expires_in)
        return token


def _refresh_db(appid: str, fetch: Fetch, refused: str | None, now: datetime) -> str:
    """The UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite) until commit."""
    _ensure_row(appid)
    with Session(db.engine) as session, session.begin():
        session.execute(update(ApiToken).where(ApiToken.appid == appid).values(locked_at=now))
        row = session.scalar(select(ApiToken).where(ApiToken.appid == appid))
        fresh = row.token and row.expires_at and row.expires_at - EARLY > now
        if fresh and row.token != refused:
            return row.token
        token, expires_in = fetch(bool(row.token) and row.token == refused)
        row.token, row.expires_at = token, now + timedelta(seconds=expires_in)
        log.info("access token refreshed (shared in the database, %ss)", expires_in)
        return token


def _ensure_row(appid: str) -> None:
    with Session(db.engine) as session:
        if session.get(ApiToken, appid) is None:
            session.add(ApiToken(appid=appid))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()  # another process created it first


def _key(appid: str) -> str:
    return f"pufa:token:{appid}"
