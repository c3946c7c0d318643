"""Console pages for advisers: the review queue, one exchange in context, corrections."""

from __future__ import annotations

from flask import render_template

from bot.console import bp
from bot.console.auth import requires


@bp.get("/reviews")
@requires("view")
def review_queue():
    return render_template("console/placeholder.html", title="问答审核")
