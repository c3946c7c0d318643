"""Console pages: residents' requests for a person, followed up to closed.

Phone numbers are shown masked; staff who call back reveal one with a POST that is audited,
and the full number is shown on that response only (never in a URL, never cached).
"""

from __future__ import annotations

from flask import (
    Response,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from bot import requests as help_requests
from bot.console import bp
from bot.console.auth import account_id, actor, owned, requires
from bot.console.forms import ActionForm, RequestStatusForm
from bot.models import HelpRequest
from bot.wechat import render


@bp.get("/requests")
@requires("view")
def request_list():
    status = request.args.get("status") or None
    if status not in (None, *help_requests.STATUSES):
        status = None
    counts = help_requests.counts(account_id())
    return render_template(
        "console/requests/list.html",
        rows=help_requests.listing(account_id(), status),
        status=status,
        counts=counts,
        total=sum(counts.values()),
        statuses=help_requests.STATUSES,
        limit=help_requests.LIST_LIMIT,
    )


@bp.get("/requests/<int:request_id>")
@requires("view")
def request_detail(request_id: int):
    return _detail(owned(HelpRequest, request_id))


@bp.post("/requests/<int:request_id>/phone")
@requires("requests.phone")
def request_phone(request_id: int):
    req = owned(HelpRequest, request_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    full = help_requests.reveal_phone(req, actor=actor())
    response = _detail(req, full_phone=full)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/requests/<int:request_id>/status")
@requires("requests.handle")
def request_status(request_id: int):
    req = owned(HelpRequest, request_id)
    form = _status_form(req)
    if not form.validate_on_submit():
        flash("请选择状态（跟进记录不超过 2000 字）", "error")
    else:
        try:
            help_requests.change_status(
                req, status=form.status.data or "", note=form.note.data or "", actor=actor()
            )
        except help_requests.RequestError as exc:
            flash(str(exc), "error")
        else:
            told = req.status != "new" and help_requests.tell_now(
                req, g.account, text=_progress_text(req)
            )
            how = "已通过公众号消息告诉居民" if told else "居民下次发消息时会看到这个进展"
            flash(f"已更新为“{help_requests.STATUSES[req.status]}”；{how}", "ok")
    return redirect(url_for("console.request_detail", request_id=req.id))


def _progress_text(req: HelpRequest) -> str:
    """The same line the resident would read at their next message (the residents' wording)."""
    kind = render.REQUEST_KINDS[req.kind]
    return render.REQUEST_PROGRESS.format(kind=kind, status=render.REQUEST_STATUSES[req.status])


def _status_form(req: HelpRequest) -> RequestStatusForm:
    form = RequestStatusForm()
    form.status.choices = [(s, help_requests.STATUSES[s]) for s in help_requests.choices(req)]
    return form


def _detail(req: HelpRequest, *, full_phone: str | None = None) -> Response:
    form = _status_form(req)
    form.status.data = form.status.data or req.status
    page = render_template(
        "console/requests/detail.html",
        req=help_requests.shown(req),
        notes=help_requests.history(req),
        form=form,
        full_phone=full_phone,
        has_phone=bool(req.phone),
        closed=req.status == help_requests.Status.CLOSED,
    )
    return make_response(page)
