"""One nonce, one message: a captured callback URL cannot carry a forged body.

WeChat signs only token, timestamp and nonce, not the body (plaintext mode), so anyone who
saw one callback URL could post any body to it while the timestamp is fresh. A nonce is
therefore remembered for the replay window with the identity of the message it came with; the
same nonce again is accepted only with that same message (a retry, which the journal answers
once), never with another. Shared in Redis across workers; without Redis, in files under the
spool directory, which every worker of the host sees (the laptop and single-host case).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from flask import current_app

from bot.accounts import Settings
from bot.stores import DiskKeys, RedisError, redis_client, redis_failed, storage
from bot.wechat.protocol import Inbound

log = logging.getLogger(__name__)


def first_use(inbound: Inbound, window: int, account: Settings) -> bool:
    """True if this nonce is new, or was last seen with this very message (per account)."""
    identity = hashlib.sha256(repr(sorted(inbound.raw.items())).encode()).hexdigest()
    key = "pufa:nonce:" + account.scoped(f"{inbound.timestamp}:{inbound.nonce}")
    r = redis_client()
    if r is not None:
        try:
            if r.set(key, identity, nx=True, ex=window):
                return True
            return r.get(key) == identity
        except RedisError as exc:
            redis_failed(exc)
            log.warning("redis unavailable for nonces, remembering them on disk: %s", exc)
    try:
        return _on_disk(key, identity, window)
    except OSError as exc:  # no disk either: this process's memory is the last resort
        log.warning("nonce files unavailable, remembering nonces in-process: %s", exc)
        return storage().remember(key, identity, window) == identity


def _on_disk(key: str, identity: str, window: int) -> bool:
    spool = Path(current_app.config["SPOOL_DIR"])
    held = DiskKeys(spool, "nonces", window).add(key, identity)
    return held is None or held == identity
