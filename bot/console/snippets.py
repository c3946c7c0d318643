"""The law base as advisers see it: every snippet, which await a lawyer's review, sign-off."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from bot import lawbase, signoffs
from bot.console import bp
from bot.console.auth import actor, requires
from bot.console.forms import ActionForm
from bot.console.snippet_edits import render_page

PAGE = 50


@bp.get("/snippets")
@requires("view")
def snippet_list():
    base, signed = lawbase.current(), signoffs.signed()
    wanted, law = request.args.get("status", ""), request.args.get("law", "")
    words = request.args.get("q", "").strip()
    rows = [(s, signoffs.status(s, signed)) for s in base.snippets]
    counts = {
        "all": len(rows),
        "awaiting": sum(not st.reviewed for _, st in rows),
        "reviewed": sum(st.reviewed for _, st in rows),
    }
    shown = [
        (s, st)
        for s, st in rows
        if (wanted != "awaiting" or not st.reviewed)
        and (wanted != "reviewed" or st.reviewed)
        and (not law or s.law.short == law)
        and (not words or words in s.summary + s.quote + s.explain + "".join(s.questions))
    ]
    page = request.args.get("page", 1, type=int) or 1
    laws = sorted({s.law.short for s in base.snippets})
    return render_template(
        "console/snippets/list.html",
        rows=shown[(page - 1) * PAGE : page * PAGE],
        total=len(shown),
        page=page,
        pages=max((len(shown) + PAGE - 1) // PAGE, 1),
        counts=counts,
        laws=laws,
        args=request.args,
    )


@bp.get("/snippets/<snippet_id>")
@requires("view")
def snippet_page(snippet_id: str):
    snippet = lawbase.current().by_id.get(snippet_id) or abort(404)
    return render_page(snippet)


@bp.post("/snippets/<snippet_id>/signoff")
@requires("reviews.correct")
def snippet_signoff(snippet_id: str):
    snippet = lawbase.current().by_id.get(snippet_id) or abort(404)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        signoffs.sign(snippet, adviser=actor(), note=form.detail.data)
    except signoffs.SignoffError as exc:
        flash(str(exc), "error")
    else:
        flash("已签核：这一条在工作台显示为“律师已审核”，导出后写入内容文件", "ok")
    return redirect(url_for("console.snippet_page", snippet_id=snippet.id))
