"""Console pages for staff: the calendar of key dates and posts, the editor, approvals."""

from __future__ import annotations

from flask import render_template

from bot.console import bp
from bot.console.auth import requires


@bp.get("/posts")
@requires("view")
def post_calendar():
    return render_template("console/placeholder.html", title="推送日历")
