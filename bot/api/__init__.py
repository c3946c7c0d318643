"""Machines: /healthz (alive), /readyz (each dependency, JSON), /metrics (Prometheus)."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from bot import health, metrics

bp = Blueprint("api", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers (a load balancer's check): no dependency is asked."""
    return Response("ok\n", mimetype="text/plain")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = health.readiness()
    ready = all(check["ok"] for check in checks.values())
    return jsonify(ready=ready, checks=checks), 200 if ready else 503


@bp.get("/metrics")
def prometheus() -> Response:
    token = current_app.config.get("METRICS_TOKEN")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if token and not hmac.compare_digest(given.encode(), str(token).encode()):
        return Response("401 token required\n", status=401, mimetype="text/plain")
    body = metrics.exposition(current_app._get_current_object())
    return Response(body, mimetype="text/plain; version=0.0.4")
