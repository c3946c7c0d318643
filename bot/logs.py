"""Log lines an operator can follow: one request id per request, JSON in production.

Every request gets an id (nginx's `X-Request-Id` when it sends one, else a new one), returned
in the `X-Request-Id` header and attached to every record logged while the request runs, so
`journalctl … | grep <id>` shows one message's whole path. With `PUFA_LOG_FORMAT=json` each
record is one JSON object per line. Masking (bot/privacy.py) runs on the handlers before any
formatter, so numbers never reach either format.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request

_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class RequestId(logging.Filter):
    """Adds `request_id` to every record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        return json.dumps(doc, ensure_ascii=False)


_REQUEST_ID = RequestId()


def init_app(app: Flask) -> None:
    """Request ids on every handler Pufa's records reach; the format as configured."""
    fmt = (
        JsonFormatter()
        if str(app.config["LOG_FORMAT"]).lower() == "json"
        else logging.Formatter(TEXT_FORMAT)
    )
    for handler in logging.getLogger().handlers + app.logger.handlers:
        if _REQUEST_ID not in handler.filters:
            handler.addFilter(_REQUEST_ID)
        handler.setFormatter(fmt)

    @app.before_request
    def assign_id() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _ID.fullmatch(given) else uuid.uuid4().hex[:16]

    @app.after_request
    def return_id(response: Response) -> Response:
        response.headers.setdefault("X-Request-Id", g.get("request_id", "-"))
        return response
