"""Console pages for staff: the calendar of key dates and posts, the editor, approvals.

Every change goes through a service that checks the state and records the history; these
views read the form, call it and show its Chinese message. The services of bot/posts do most;
changing a draft (`edit_draft`, `set_cover`, `upload_cover`) lives here until bot/posts has it.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from bot import campaigns, posts
from bot.console import bp
from bot.console.auth import account_id, actor, owned, requires
from bot.console.forms import ActionForm, PostForm, RescheduleForm
from bot.errors import ContentError
from bot.extensions import csrf, db
from bot.models import Delivery, Post
from bot.posts import publishing, render
from bot.posts.states import _ALLOWED, STATES, State

NEEDS_ACTION = (
    State.AWAITING_APPROVAL,
    State.FAILED,
    State.MISSED,
    State.AWAITING_CONFIRMATION,
)
PLANNED = (State.DRAFT, State.AWAITING_APPROVAL, State.SCHEDULED)  # may still be re-timed
ACTIONS = {"submit": "提交审核", "approve": "审核通过", "cancel": "取消", "reopen": "重新编辑"}
EVENTS = {
    "create": "创建草稿",
    "edit": "修改草稿",
    "submit": "提交审核",
    "approve": "审核通过",
    "cancel": "取消",
    "reopen": "重新编辑",
    "reschedule": "改发送时间",
    "start": "开始发送",
    "sent": "已提交微信群发",
    "awaiting_confirmation": "等待管理员确认",
    "confirmation_expired": "确认超时",
    "published": "已发布",
    "failed": "发送失败",
    "missed": "错过发送时间",
    "report": "微信群发报告",
    "cover": "上传封面",
}
DELIVERY_STATES = {
    "pending": "等待发送",
    "sending": "发送中",
    "submitted": "已提交微信",
    "confirming": "待管理员确认",
    "finished": "已送达",
    "failed": "失败",
    "missed": "已错过",
    "cancelled": "已取消",
}
WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")
_MONTH = re.compile(r"(\d{4})-(\d{1,2})")
_AUDIENCE_SPLIT = re.compile(r"[,，、;；\n]")


# -- the calendar ---------------------------------------------------------------------------


@bp.get("/posts")
@requires("view")
def post_calendar() -> str:
    first = _month(request.args.get("month"))
    weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    start, end = weeks[0][0], weeks[-1][-1]
    day_names, spans = _key_dates(start, end, first)
    return render_template(
        "console/posts/calendar.html",
        first=first,
        weeks=weeks,
        weekdays=WEEKDAYS,
        day_names=day_names,
        spans=spans,
        by_day=_posts_by_day(start, end),
        pending=_needing_action(),
        previous=(first - timedelta(days=1)).strftime("%Y-%m"),
        following=(first + timedelta(days=31)).strftime("%Y-%m"),
        today=datetime.now(posts.TZ).date(),
        states=STATES,
    )


def _month(value: str | None) -> date:
    """The first day of the month asked for (2026-12), or of this month."""
    found = _MONTH.fullmatch(value or "")
    if found and 2000 <= int(found.group(1)) <= 2100 and 1 <= int(found.group(2)) <= 12:
        return date(int(found.group(1)), int(found.group(2)), 1)
    if value:
        flash(f"月份格式不对：{value[:20]}（应为 2026-12 这样的年-月），已显示本月", "warn")
    return datetime.now(posts.TZ).date().replace(day=1)


@dataclass(frozen=True)
class Span:
    """A key date that lasts several days (宪法宣传周, 森林防火期), shown above the grid."""

    name: str
    runs: list[tuple[date, date]]


def _key_dates(start: date, end: date, first: date) -> tuple[dict[date, list[str]], list[Span]]:
    """Names of key dates by the day they begin, and the spans running in the month."""
    names: dict[date, list[str]] = {}
    spans: list[Span] = []
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    for entry in _calendar_entries().values():
        for day in campaigns.starts(entry.rule, start, end):
            names.setdefault(day, []).append(entry.name)
        covered = list(campaigns.days(entry.rule, first, last))
        runs = _runs(covered)
        if any(a != b for a, b in runs):
            spans.append(Span(entry.name, runs))
    return names, spans


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) pairs."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] == day - timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _calendar_entries() -> dict[str, campaigns.Entry]:
    try:
        return posts.key_dates(g.account.id)
    except ContentError as exc:
        current_app.logger.error("calendar of account %s cannot be read: %s", g.account.slug, exc)
        flash("普法日历文件有误，重要日子暂时无法显示，请联系管理员", "error")
        return {}


def _posts_by_day(start: date, end: date) -> dict[date, list[Post]]:
    low = datetime.combine(start, time(), tzinfo=posts.TZ)
    high = datetime.combine(end + timedelta(days=1), time(), tzinfo=posts.TZ)
    found = db.session.scalars(
        select(Post)
        .where(Post.account_id == account_id(), Post.send_at >= low, Post.send_at < high)
        .order_by(Post.send_at, Post.id)
    )
    by_day: dict[date, list[Post]] = {}
    for post in found:
        by_day.setdefault(post.send_at.astimezone(posts.TZ).date(), []).append(post)
    return by_day


def _needing_action() -> list[Post]:
    return list(
        db.session.scalars(
            select(Post)
            .where(Post.account_id == account_id(), Post.state.in_(NEEDS_ACTION))
            .order_by(Post.send_at, Post.id)
        )
    )


# -- the editor -----------------------------------------------------------------------------


@bp.route("/posts/new", methods=["GET", "POST"])
@requires("posts.edit")
def post_new() -> str | Response:
    form = _editor_form()
    if request.method == "GET" and request.args.get("day"):
        form.send_at.data = f"{request.args['day'][:10]} 09:00"
    return _editor(form, None)


@bp.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
@requires("posts.edit")
def post_edit(post_id: int) -> str | Response:
    post = owned(Post, post_id)
    if post.state != State.DRAFT:
        flash(f"“{post.title}”现在是{STATES[post.state]}，只有草稿可以修改", "error")
        return redirect(url_for("console.post_show", post_id=post.id))
    return _editor(_editor_form(post), post)


def _editor(form: PostForm, post: Post | None) -> str | Response:
    """Preview, or save a new draft (`post` None) or the draft being edited."""
    preview = None
    if form.validate_on_submit():
        if "preview" in request.form:
            preview = _form_preview(form)
        else:
            try:
                if post is None:
                    post = posts.create(
                        actor=actor(), account_id=account_id(), **_content(form), **_schedule(form)
                    )
                    saved = f"已保存草稿《{post.title}》"
                else:
                    posts.edit_draft(post, actor=actor(), **_content(form), **_schedule(form))
                    saved = f"已保存《{post.title}》"
            except posts.PostError as exc:
                flash(str(exc), "error")
            else:
                flash(f"{saved}，计划 {posts.local(post.send_at)} 发送", "ok")
                _flash_quota(post)
                return redirect(url_for("console.post_show", post_id=post.id))
    _flash_problems(form)
    tags = posts.account_tags(g.account)
    return render_template(
        "console/posts/editor.html", form=form, preview=preview, post=post, tags=tags
    )


def _editor_form(post: Post | None = None) -> PostForm:
    """The editor's form, filled from the post on first showing; key dates to choose from."""
    form = PostForm()
    if post is not None and request.method == "GET":
        form.title.data, form.kind.data, form.body.data = post.title, post.kind, post.body
        form.digest.data = post.digest
        form.audiences.data = "，".join(post.audiences)
        if post.calendar_id:
            form.on.data = post.calendar_id
            form.at.data = post.send_at.astimezone(posts.TZ).strftime("%H:%M")
        else:
            form.send_at.data = posts.local(post.send_at) if post.send_at else ""
    today = datetime.now(posts.TZ).date()
    form.on.choices = [("", "（不按重要日子，用上面的发送时间）")] + [
        (entry.id, f"{entry.name}（下一次 {_next(entry, today)}）")
        for entry in _calendar_entries().values()
    ]
    return form


def _next(entry: campaigns.Entry, today: date) -> str:
    day = campaigns.next_start(entry.rule, today)
    return f"{day:%Y-%m-%d}" if day else "两年内没有"


def _content(form: PostForm) -> dict[str, Any]:
    return {
        "title": (form.title.data or "").strip(),
        "body": form.body.data or "",
        "kind": form.kind.data or "text",
        "digest": (form.digest.data or "").strip() or None,
        "audiences": parse_audiences(form.audiences.data or ""),
    }


def parse_audiences(text: str) -> list[str]:
    """Tag names as staff type them: separated by commas (either width), 、 or new lines."""
    return list(dict.fromkeys(a.strip() for a in _AUDIENCE_SPLIT.split(text) if a.strip()))


def _schedule(form: PostForm) -> dict[str, str | None]:
    """A moment or a key date, never both: the services' arguments, in the form's words."""
    send_at, on = (form.send_at.data or "").strip(), form.on.data or ""
    if send_at and on:
        raise posts.PostError("发送时间和重要日子只能选一个：请清空其中一个")
    if not send_at and not on:
        raise posts.PostError("请填写发送时间（如 2026-12-04 09:00），或选择一个重要日子")
    return {"send_at": send_at or None, "on": on or None, "at": (form.at.data or "09:00").strip()}


def _flash_problems(form: PostForm) -> None:
    """The form's own checks (required, too long), in Chinese: WTForms speaks English."""
    if request.method != "POST":
        return
    for name, _errors in form.errors.items():
        field = form[name]
        label = field.label.text.split("（")[0]
        if not field.data:
            flash(f"请填写{label}", "error")
        else:
            flash(f"{label}太长或不符合要求，请修改", "error")


def _flash_quota(post: Post) -> None:
    for warning in [*posts.audience_warnings(post), *posts.quota_warnings(post)]:
        flash(f"注意：{warning}", "warn")


@dataclass(frozen=True)
class Preview:
    """A post as followers would see it: an article page or a chat message."""

    kind: str
    title: str
    html: Markup | None = None  # an article: render.article_html, which escapes typed HTML
    text: str | None = None  # a text message, shown escaped in a <pre>
    digest: str | None = None
    when: str | None = None


def message_preview(
    *, kind: str, title: str, body: str, digest: str | None = None, when: str | None = None
) -> Preview:
    """What WeChat will show: the article's HTML (made inert by render) or the clean text."""
    if kind == "article":
        # article_html shows typed HTML as text and drops unsafe link addresses, so its
        # output, and nothing a person typed directly, is marked safe here.
        html = Markup(render.article_html(body))
        return Preview("article", title, html=html, digest=digest, when=when)
    return Preview("text", title, text=render.text_message(title, body), when=when)


def _form_preview(form: PostForm) -> Preview:
    fields = _content(form)
    shown = {k: fields[k] for k in ("kind", "title", "body", "digest")}
    try:
        moment, _ = posts.schedule_moment(_schedule(form), g.account.id)
    except posts.PostError as exc:
        flash(str(exc), "error")
        return message_preview(**shown)
    return message_preview(**shown, when=posts.local(moment))


# -- one post and its actions ---------------------------------------------------------------


@bp.get("/posts/<int:post_id>")
@requires("view")
def post_show(post_id: int) -> str:
    post = owned(Post, post_id)
    history = posts.history(post.id)
    writers = {post.created_by} | {e.actor for e in history if e.action == "submit"}
    deliveries = db.session.scalars(
        select(Delivery).where(Delivery.post_id == post.id).order_by(Delivery.id)
    )
    return render_template(
        "console/posts/show.html",
        post=post,
        key_date=_calendar_entries().get(post.calendar_id or ""),
        preview=message_preview(
            kind=post.kind,
            title=post.title,
            body=post.body,
            digest=post.digest,
            when=posts.local(post.send_at),
        ),
        warnings=posts.quota_warnings(post) if post.state in PLANNED else [],
        deliveries=list(deliveries),
        history=history,
        available={a for a, (sources, _) in _ALLOWED.items() if post.state in sources},
        is_writer=actor() in writers,
        reschedulable=post.state in PLANNED,
        reschedule_form=RescheduleForm(formdata=None, send_at=posts.local(post.send_at)),
        actions=ACTIONS,
        events=EVENTS,
        states=STATES,
        delivery_states=DELIVERY_STATES,
    )


@bp.post("/posts/<int:post_id>/approve")
@requires("posts.approve")
def post_approve(post_id: int) -> Response:
    return _act(post_id, "approve")


@bp.post("/posts/<int:post_id>/<any(submit, cancel, reopen):action>")
@requires("posts.edit")
def post_act(post_id: int, action: str) -> Response:
    return _act(post_id, action)


def _act(post_id: int, action: str) -> Response:
    post = owned(Post, post_id)
    form = ActionForm()
    if form.validate_on_submit():
        try:
            posts.act(
                post.id, action, actor=actor(), detail=(form.detail.data or "").strip() or None
            )
        except posts.PostError as exc:
            flash(str(exc), "error")
        else:
            flash(f"《{post.title}》：已{ACTIONS[action]}，现在是{STATES[post.state]}", "ok")
            if action == "approve":
                _flash_quota(post)
    else:
        flash("说明太长了（最多 200 字）", "error")
    return redirect(url_for("console.post_show", post_id=post.id))


@bp.post("/posts/<int:post_id>/reschedule")
@requires("posts.edit")
def post_reschedule(post_id: int) -> Response:
    post = owned(Post, post_id)
    form = RescheduleForm()
    if not form.validate_on_submit():
        flash("请填写新的发送时间（如 2026-12-04 09:00）", "error")
        return redirect(url_for("console.post_show", post_id=post.id))
    try:
        posts.reschedule(post.id, actor=actor(), send_at=(form.send_at.data or "").strip())
    except posts.PostError as exc:
        flash(str(exc), "error")
    else:
        flash(f"《{post.title}》改为 {posts.local(post.send_at)} 发送", "ok")
        _flash_quota(post)
    return redirect(url_for("console.post_show", post_id=post.id))


@bp.post("/posts/<int:post_id>/cover")
@csrf.exempt  # checked below, once the body may be as large as an image (the app allows 64 KB)
@requires("posts.edit")
def post_cover(post_id: int) -> Response:
    post = owned(Post, post_id)
    request.max_content_length = publishing.COVER_LIMIT + 64 * 1024
    try:
        csrf.protect()  # the same check CSRFProtect makes on every other form: 400 without it
        upload = request.files.get("cover")
        data: bytes | None = upload.read(publishing.COVER_LIMIT + 1) if upload else b""
    except RequestEntityTooLarge:
        data = None
    try:
        posts.upload_cover(post, data, account=g.account, actor=actor())
    except posts.PostError as exc:
        flash(str(exc), "error")
    else:
        flash("封面已上传到公众号素材库", "ok")
    return redirect(url_for("console.post_show", post_id=post.id))
