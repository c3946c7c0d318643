"""The PufaError family and the error handlers that keep stack traces away from users."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class PufaError(Exception):
    """Base of Pufa's own errors; the message names the thing that is wrong."""


class ContentError(PufaError):
    """A content file is broken: the message names the file, the snippet and the field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # Plain, short, no stack trace; WeChat and browsers both get a readable status.
        return Response(f"{exc.code} {exc.name}\n", status=exc.code, mimetype="text/plain")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return Response("500 Internal Server Error\n", status=500, mimetype="text/plain")
