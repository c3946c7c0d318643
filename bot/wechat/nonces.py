"""One nonce, one message: a captured callback URL cannot carry a forged body.

WeChat signs only token, timestamp and nonce, not the body (plaintext mode), so anyone who
saw one callback URL could post any body to it while the timestamp is fresh. A nonce is
therefore remembered for the replay window with the identity of the message it came with; the
same nonce again is accepted only with that same message (a retry, which the journal answers
once), never with another. Shared in Redis across workers, else per process.
"""

from __future__ import annotations

import hashlib
import logging

from bot.stores import RedisError, redis_client, redis_failed, storage
from bot.wechat.protocol import Inbound

log = logging.getLogger(__name__)


def first_use(inbound: Inbound, window: int) -> bool:
    """True if this nonce is new, or was last seen with this very message."""
    identity = hashlib.sha256(repr(sorted(inbound.raw.items())).encode()).hexdigest()
    key = f"pufa:nonce:{inbound.timestamp}:{inbound.nonce}"
    r = redis_client()
    if r is not None:
        try:
            if r.set(key, identity, nx=True, ex=window):
                return True
            return r.get(key) == identity
        except RedisError as exc:
            redis_failed(exc)
            log.warning("redis unavailable for nonces, remembering them in-process: %s", exc)
    return storage().remember(key, identity, window) == identity
