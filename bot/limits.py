"""Rate limits (Flask-Limiter): a resident who floods gets a polite note, an address that keeps
sending refused requests gets 429; nobody else waits for either.

WeChat delivers every resident's message from a few of its own addresses, so residents are
limited by who they are (the keyed openid hash), never by address. Addresses are limited only
by the requests Pufa refuses (bad signature, unreadable or oversized body): a prober, or a
misconfigured token. Counts live in Redis when it is configured, so every worker sees them,
else in the process. A limiter that cannot reach its storage lets everything through: a limit
never costs a resident a reply.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many

log = logging.getLogger(__name__)

REFUSED = (400, 403, 413)


def init_app(app: Flask) -> None:
    """One limiter per app (its counters are its own); blueprints must be registered first."""
    cfg = app.config
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=cfg.get("REDIS_URL") or "memory://",
        storage_options=_storage_options(cfg),
        swallow_errors=True,
        key_prefix="pufa:limit",
        enabled=bool(cfg["RATE_LIMITS"]),
    )
    limiter.limit(lambda: cfg["RATE_LIMIT_REFUSED"], deduct_when=_refused)(app.blueprints["wechat"])
    if "demo" in app.blueprints:
        limiter.limit(lambda: cfg["RATE_LIMIT_DEMO"])(app.blueprints["demo"])
    if "console.login" in app.view_functions:  # guessing passwords is slow
        app.view_functions["console.login"] = limiter.limit(
            lambda: cfg["RATE_LIMIT_LOGIN"], methods=["POST"]
        )(app.view_functions["console.login"])
    app.extensions["pufa.limiter"] = limiter
    app.extensions["pufa.resident_limits"] = parse_many(cfg["RATE_LIMIT_RESIDENT"])


def _refused(response: Response) -> bool:
    return response.status_code in REFUSED


def _storage_options(cfg) -> dict:
    if not cfg.get("REDIS_URL"):
        return {}
    timeout = float(cfg["REDIS_TIMEOUT_MS"]) / 1000
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


def resident_allowed(who: str) -> bool:
    """Count one message of resident `who`; False once they are over PUFA_RATE_LIMIT_RESIDENT."""
    limiter: Limiter = current_app.extensions["pufa.limiter"]
    if not limiter.enabled:
        return True
    try:
        items = current_app.extensions["pufa.resident_limits"]
        return all([limiter.limiter.hit(item, "resident", who) for item in items])
    except Exception as exc:  # storage down: let the resident through
        log.warning("rate limiter unavailable, resident not counted: %s", exc)
        return True
