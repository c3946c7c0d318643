"""What each resident was last offered (numbered choices, the rest of a long answer).

A resident's "2" or "更多" may reach any gunicorn worker, so the state lives in Redis when
configured, else in the database (under the storage budget); with both unavailable, in the
process, so a reply still goes out.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot.extensions import db
from bot.models import Conversation
from bot.stores import (
    RedisError,
    StorageUnavailable,
    in_database,
    redis_client,
    redis_failed,
    storage,
)

log = logging.getLogger(__name__)

TTL = 24 * 3600  # an offer older than a day has been forgotten by the resident too


def get(openid_hash: str) -> dict[str, Any]:
    state = _get(openid_hash)
    if state and time.time() - state.get("at", 0) > TTL:
        return {}
    return state


def _get(openid_hash: str) -> dict[str, Any]:
    r = redis_client()
    if r is not None:
        try:
            raw = r.get(f"pufa:conv:{openid_hash}")
            return json.loads(raw) if raw else {}
        except RedisError as exc:
            redis_failed(exc)
            log.warning("redis unavailable for conversation state: %s", exc)
    try:
        return in_database(_get_in_database, openid_hash)
    except (SQLAlchemyError, StorageUnavailable):
        return dict(storage().local_conversations.get(openid_hash, {}))


def _get_in_database(openid_hash: str) -> dict[str, Any]:
    row = db.session.scalar(select(Conversation).where(Conversation.openid_hash == openid_hash))
    return dict(row.state) if row else {}


def put(openid_hash: str, state: dict[str, Any]) -> None:
    state = {**state, "at": time.time()}
    r = redis_client()
    if r is not None:
        try:
            r.set(f"pufa:conv:{openid_hash}", json.dumps(state, ensure_ascii=False), ex=TTL)
            return
        except RedisError as exc:
            redis_failed(exc)
            log.warning("redis unavailable for conversation state: %s", exc)
    try:
        in_database(_put_in_database, openid_hash, state)
    except (SQLAlchemyError, StorageUnavailable):
        storage().local_conversations[openid_hash] = state


def _put_in_database(openid_hash: str, state: dict[str, Any]) -> None:
    row = db.session.get(Conversation, openid_hash)
    if row is None:
        db.session.add(Conversation(openid_hash=openid_hash, state=state))
    else:
        row.state = state
    db.session.commit()


def forget(openid_hash: str) -> None:
    """Erase a resident's state from Redis and the process (the database row goes with
    `journal.erase`, in the same transaction as the rest of the erasure)."""
    storage().local_conversations.pop(openid_hash, None)
    r = redis_client()
    if r is not None:
        try:
            r.delete(f"pufa:conv:{openid_hash}")
        except RedisError as exc:
            redis_failed(exc)
            log.warning("redis unavailable, conversation state kept until it expires: %s", exc)
