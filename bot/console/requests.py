"""Console pages: residents' requests for a person, followed up to closed."""

from __future__ import annotations

from flask import render_template

from bot.console import bp
from bot.console.auth import requires


@bp.get("/requests")
@requires("view")
def request_list():
    return render_template("console/placeholder.html", title="群众求助")
