"""Queues, approves and publishes posts: each (post, audience) is sent exactly once.

Rules that make "once" hold (shared/WECHAT.md W10-W13, W19):
- A post moves between states only through conditional UPDATEs (`_move`), so of two scheduler
  processes, or a scheduler and a member of staff, exactly one wins each transition.
- A delivery is claimed by a conditional UPDATE that also bumps `attempts`; only the claimant
  sends. It is marked submitted only after WeChat answered.
- Its `clientmsgid` is derived from (post, audience): after a crash between "sent" and
  "marked sent", the resend is refused by WeChat itself (45065), which returns the first
  msg_id, and we record that.
- Transient errors are retried with backoff; permanent ones stop the post with a reason in
  Chinese that staff read; a post whose time passed while nothing could send it is sent late
  within a grace window, otherwise marked missed. Nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import markdown
from flask import current_app
from sqlalchemy import func, or_, select, update

from bot import campaigns, wechat_client
from bot.errors import PufaError
from bot.extensions import db
from bot.models import Delivery, Post, PostEvent

log = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
EVERYONE = "全体"
CLAIM_TIMEOUT = timedelta(minutes=2)  # a claim older than this was left by a crashed process
CONFIRM_WINDOW = timedelta(minutes=30)  # mass-send protection (W11)
STATES = {
    "draft": "草稿",
    "awaiting_approval": "待审核",
    "scheduled": "已排期",
    "publishing": "发送中",
    "awaiting_confirmation": "待管理员确认",
    "published": "已发布",
    "failed": "发送失败",
    "cancelled": "已取消",
    "missed": "已错过",
}
_ALLOWED = {
    "submit": ({"draft"}, "awaiting_approval"),
    "approve": ({"awaiting_approval"}, "scheduled"),
    "cancel": ({"draft", "awaiting_approval", "scheduled"}, "cancelled"),
    "reopen": ({"failed", "missed", "cancelled"}, "draft"),
}


class PostError(PufaError):
    """A post cannot do what was asked; the message (Chinese) tells staff why."""


# -- staff actions ----------------------------------------------------------------------


def parse_markdown(text: str) -> dict[str, Any]:
    """A post file: TOML front matter between +++ lines, then the body in Markdown."""
    m = re.match(r"^\+\+\+\s*\n(.*?)\n\+\+\+\s*\n(.*)$", text, re.S)
    if not m:
        raise PostError("文件开头需要用 +++ 包起来的设置（title、audiences、send_at 或 on）")
    try:
        meta = tomllib.loads(m.group(1))
    except tomllib.TOMLDecodeError as exc:
        raise PostError(f"设置部分格式有误：{exc}") from None
    return {**meta, "body": m.group(2).strip()}


def create(
    *,
    actor: str,
    title: str,
    body: str,
    audiences: list[str],
    kind: str = "text",
    send_at: str | datetime | None = None,
    on: str | None = None,
    at: str = "09:00",
    digest: str | None = None,
    author: str | None = None,
    cover_media_id: str | None = None,
    now: datetime | None = None,
) -> Post:
    """Create a draft post; its time is a moment (`send_at`) or a calendar key date (`on`)."""
    if not title.strip() or not body.strip():
        raise PostError("标题和正文都不能为空")
    if kind not in ("text", "article"):
        raise PostError("kind 只能是 text（文字）或 article（图文）")
    if not audiences:
        raise PostError('请至少选择一个发送对象（audiences），例如 ["全体"]')
    if kind == "article" and not cover_media_id:
        log.info("article without cover_media_id: WeChat requires a cover before sending")
    post = Post(
        title=title.strip(),
        body=body,
        kind=kind,
        audiences=list(dict.fromkeys(audiences)),
        digest=digest,
        author=author,
        cover_media_id=cover_media_id,
        created_by=actor,
        state="draft",
    )
    post.send_at, post.calendar_id = _when(send_at, on, at, now or datetime.now(UTC))
    db.session.add(post)
    db.session.flush()
    _event(post, actor, "create", None, "draft", f"发送时间 {local(post.send_at)}")
    db.session.commit()
    return post


def _when(
    send_at: Any, on: str | None, at: str, now: datetime
) -> tuple[datetime | None, str | None]:
    if send_at and on:
        raise PostError("send_at 和 on 只能选一个")
    if on:
        return calendar_time(on, at, now), on
    if not send_at:
        raise PostError(
            "请写明发送时间 send_at（如 2026-12-04 09:00）或关键日期 on（如 constitution-day）"
        )
    return parse_time(send_at), None


def parse_time(value: str | datetime) -> datetime:
    """Staff write Beijing time; the database keeps UTC (SQLite drops the zone)."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace(" ", "T"))
        except ValueError:
            raise PostError(f"时间格式不对：{value}（应为 2026-12-04 09:00）") from None
    return (moment.replace(tzinfo=TZ) if moment.tzinfo is None else moment).astimezone(UTC)


_CLOCK = re.compile(r"^\s*(\d{1,2})\s*(?:[:：]\s*(\d{2})|点\s*(?:(半)|(\d{1,2})\s*分?)?)\s*$")


def parse_clock(value: str) -> tuple[int, int]:
    """A time of day as staff write it: "09:00", "9:30", "9点", "9点半", "9点15分"."""
    m = _CLOCK.match(str(value))
    if m:
        hour = int(m.group(1))
        minute = 30 if m.group(3) else int(m.group(2) or m.group(4) or 0)
        if hour < 24 and minute < 60:
            return hour, minute
    raise PostError(f"时刻格式不对：{value}（应为 09:00 这样的 24 小时制，或“9点”“9点半”）")


def calendar_time(entry_id: str, at: str, now: datetime) -> datetime:
    """The next first day of a key date, at `at` o'clock Beijing time."""
    entries = campaigns.load(current_app.config["CALENDAR_FILE"])
    if entry_id not in entries:
        raise PostError(f"日历里没有关键日期 {entry_id}；可选：{', '.join(entries)}")
    hour, minute = parse_clock(at)
    today = now.astimezone(TZ).date()
    day = campaigns.next_start(entries[entry_id].rule, today)
    if day is None:
        raise PostError(f"{entry_id} 在两年内没有日期")
    moment = datetime.combine(day, time(hour, minute), tzinfo=TZ)
    if moment <= now:  # today's occurrence already began: take the next one
        day = campaigns.next_start(entries[entry_id].rule, today + timedelta(days=1))
        moment = datetime.combine(day, time(hour, minute), tzinfo=TZ)
    return moment.astimezone(UTC)


def act(
    post_id: int, action: str, *, actor: str, detail: str | None = None, now: datetime | None = None
) -> Post:
    """submit / approve / cancel / reopen, each allowed only from its states."""
    post = _get(post_id)
    sources, target = _ALLOWED[action]
    if post.state not in sources:
        raise PostError(f"“{post.title}”现在是{STATES[post.state]}，不能{_VERB[action]}")
    grace = timedelta(minutes=int(current_app.config["POST_GRACE_MINUTES"]))
    if action == "approve" and post.send_at < (now or datetime.now(UTC)) - grace:
        raise PostError(
            f"“{post.title}”的发送时间 {local(post.send_at)} 已经过去，请先改时间再审核"
        )
    if not _move(post, sources, target, actor=actor, action=action, detail=detail):
        raise PostError(f"“{post.title}”刚被别人改过了，请刷新后再试")
    return post


_VERB = {"submit": "提交审核", "approve": "审核通过", "cancel": "取消", "reopen": "重新编辑"}


def reschedule(
    post_id: int,
    *,
    actor: str,
    send_at: str | datetime | None = None,
    on: str | None = None,
    at: str = "09:00",
    now: datetime | None = None,
) -> Post:
    post = _get(post_id)
    if post.state not in ("draft", "awaiting_approval", "scheduled"):
        raise PostError(f"“{post.title}”现在是{STATES[post.state]}，不能改时间")
    before = local(post.send_at)
    post.send_at, post.calendar_id = _when(send_at, on, at, now or datetime.now(UTC))
    _event(post, actor, "reschedule", post.state, post.state, f"{before} → {local(post.send_at)}")
    db.session.commit()
    return post


def history(post_id: int) -> list[PostEvent]:
    return list(
        db.session.scalars(
            select(PostEvent)
            .where(PostEvent.post_id == post_id)
            .order_by(PostEvent.at, PostEvent.id)
        )
    )


def _get(post_id: int) -> Post:
    post = db.session.get(Post, post_id)
    if post is None:
        raise PostError(f"没有编号为 {post_id} 的文章")
    return post


def _move(
    post: Post,
    sources: set[str],
    target: str,
    *,
    actor: str,
    action: str,
    detail: str | None = None,
    error: str | None = None,
    with_pending: bool = False,
) -> bool:
    """A conditional state change: True only for the one caller that made it.

    With `with_pending`, the caller's own unsaved changes (a delivery's new state) go in the
    same transaction as the post's: both are saved, or neither, whether or not the post moved.
    """
    before = post.state
    values: dict[str, Any] = {"state": target, "updated_at": datetime.now(UTC)}
    if error is not None:
        values["last_error"] = error
    result = db.session.execute(
        update(Post).where(Post.id == post.id, Post.state.in_(sources)).values(**values)
    )
    if result.rowcount != 1:
        if with_pending:
            db.session.commit()
        else:
            db.session.rollback()
        return False
    _event(post, actor, action, before, target, detail or error)
    db.session.commit()
    db.session.refresh(post)
    return True


def _event(
    post: Post, actor: str, action: str, before: str | None, after: str | None, detail: str | None
) -> None:
    db.session.add(
        PostEvent(
            post_id=post.id,
            actor=actor,
            action=action,
            from_state=before,
            to_state=after,
            detail=detail,
        )
    )


def local(moment: datetime | None) -> str:
    if moment is None:
        return "未定"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M")


# -- quotas (W10) ---------------------------------------------------------------------------


def quota_warnings(post: Post) -> list[str]:
    """Warn staff when the plan would exceed the account's mass-send quota."""
    if post.send_at is None:
        return []
    cfg = current_app.config
    planned = select(Post).where(
        Post.id != post.id,
        Post.state.in_(
            ("awaiting_approval", "scheduled", "publishing", "awaiting_confirmation", "published")
        ),
    )
    when = post.send_at.astimezone(TZ)
    others = [p for p in db.session.scalars(planned) if p.send_at is not None]
    if cfg["WECHAT_ACCOUNT_TYPE"] == "subscription":
        same_day = [p for p in others if p.send_at.astimezone(TZ).date() == when.date()]
        sends = sum(len(p.audiences) for p in same_day) + len(post.audiences)
        if sends > 1:
            return [f"{when.date()} 共安排了 {sends} 次群发，订阅号每天只能群发 1 次，多出的会失败"]
        return []
    same_month = [
        p
        for p in others
        if (p.send_at.astimezone(TZ).year, p.send_at.astimezone(TZ).month)
        == (when.year, when.month)
    ]
    reach = sum(len(p.audiences) for p in same_month) + len(post.audiences)
    if reach > 4:
        return [
            f"{when:%Y-%m} 共安排了 {reach} 次群发，服务号每位粉丝每月最多收到 4 次，"
            "同时在多个标签里的粉丝会收不到多出的"
        ]
    return []


# -- the scheduler's work -----------------------------------------------------------------


@dataclass
class TickReport:
    started: list[int] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)  # clientmsgids
    duplicates_refused: list[str] = field(default_factory=list)  # 45065: sent before a crash
    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def publish_due(*, now: datetime, worker: str) -> TickReport:
    """One scheduler tick: start due posts, send claimed deliveries, settle the posts."""
    report = TickReport()
    now = now.astimezone(UTC)  # stored times are UTC
    _start_due_posts(now, report)
    _expire_confirmations(now)
    for delivery_id in _sendable(now):
        _send_one(delivery_id, now=now, worker=worker, report=report)
    _settle_posts()
    return report


def _start_due_posts(now: datetime, report: TickReport) -> None:
    grace = timedelta(minutes=int(current_app.config["POST_GRACE_MINUTES"]))
    due = db.session.scalars(select(Post).where(Post.state == "scheduled", Post.send_at <= now))
    for post in list(due):
        late = now - post.send_at
        if late > grace:
            reason = f"计划 {local(post.send_at)} 发送时系统未运行，已超过补发时限，请重新安排"
            if _move(
                post, {"scheduled"}, "missed", actor="scheduler", action="missed", error=reason
            ):
                db.session.execute(
                    update(Delivery).where(Delivery.post_id == post.id).values(state="missed")
                )
                db.session.commit()
                report.missed.append(post.id)
                log.warning("post %s missed its time %s", post.id, post.send_at)
            continue
        detail = (
            f"晚了 {int(late.total_seconds() // 60)} 分钟补发"
            if late > timedelta(minutes=5)
            else None
        )
        if _move(
            post, {"scheduled"}, "publishing", actor="scheduler", action="start", detail=detail
        ):
            for audience in post.audiences:
                db.session.add(
                    Delivery(
                        post_id=post.id,
                        audience=audience,
                        clientmsgid=clientmsgid(post.id, audience),
                    )
                )
            db.session.commit()
            report.started.append(post.id)


def clientmsgid(post_id: int, audience: str) -> str:
    """Stable per (post, audience), at most 64 characters, as sendall requires."""
    return f"pufa-{post_id}-{hashlib.sha1(audience.encode()).hexdigest()[:12]}"


def _claimable(now: datetime):
    """A delivery may be taken when it waits (and its backoff has passed) or its claim is stale."""
    stale = now - CLAIM_TIMEOUT
    return or_(
        (Delivery.state == "pending")
        & or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        (Delivery.state == "sending") & (Delivery.claimed_at < stale),
    )


def _sendable(now: datetime) -> list[int]:
    query = (
        select(Delivery.id)
        .join(Post, Post.id == Delivery.post_id)
        .where(Post.state == "publishing", _claimable(now))
        .order_by(Delivery.id)
    )
    return list(db.session.scalars(query))


def _claim(delivery_id: int, *, now: datetime, worker: str) -> bool:
    """The conditions are checked inside the UPDATE: of two schedulers, one gets rowcount 1."""
    result = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, _claimable(now))
        .values(state="sending", claimed_by=worker, claimed_at=now, attempts=Delivery.attempts + 1)
    )
    db.session.commit()
    return result.rowcount == 1


def _send_one(delivery_id: int, *, now: datetime, worker: str, report: TickReport) -> None:
    if not _claim(delivery_id, now=now, worker=worker):
        return  # another scheduler has it
    delivery = db.session.get(Delivery, delivery_id)
    db.session.refresh(delivery)
    post = db.session.get(Post, delivery.post_id)
    try:
        sent = _deliver(post, delivery)
    except wechat_client.ApiError as exc:
        _failed_attempt(post, delivery, exc, now=now, report=report)
        return
    record_sent(post, delivery, sent, now=now)
    (report.duplicates_refused if sent.duplicate else report.submitted).append(delivery.clientmsgid)


def _deliver(post: Post, delivery: Delivery) -> wechat_client.Sent:
    client = wechat_client.client()
    tag_id = None
    if delivery.audience != EVERYONE:
        known = wechat_client.tags(client)
        if delivery.audience not in known:
            raise wechat_client.ApiError(
                40050, f"公众号里没有名为“{delivery.audience}”的用户标签", transient=False
            )
        tag_id = known[delivery.audience]
    if post.kind == "article":
        if delivery.media_id is None:
            delivery.media_id = wechat_client.add_draft(
                client,
                title=post.title,
                html=markdown.markdown(post.body),
                digest=post.digest,
                author=post.author,
                thumb_media_id=post.cover_media_id,
            )
            db.session.commit()  # a draft made twice is harmless; a send made twice is not
        message = {"msgtype": "mpnews", "mpnews": {"media_id": delivery.media_id}}
    else:
        message = {"msgtype": "text", "text": {"content": post.body}}
    return wechat_client.send_to_tag(
        client, tag_id=tag_id, message=message, clientmsgid=delivery.clientmsgid
    )


def record_sent(post: Post, delivery: Delivery, sent: wechat_client.Sent, *, now: datetime) -> None:  # noqa: E501
    """Mark a delivery submitted (WeChat accepted it); with protection on, awaiting the admin."""
    protected = current_app.config["WECHAT_MASS_SEND_PROTECTION"] and delivery.audience == EVERYONE
    delivery.state = "confirming" if protected else "submitted"
    delivery.msg_id, delivery.msg_data_id, delivery.submitted_at = (
        sent.msg_id,
        sent.msg_data_id,
        now,
    )
    delivery.last_error = None
    note = "（微信确认此前已发送过，未重复发送）" if sent.duplicate else ""
    _event(
        post,
        "scheduler",
        "sent",
        post.state,
        post.state,
        f"{delivery.audience}：已提交微信群发，msg_id {sent.msg_id}{note}",
    )
    if protected:
        _event(
            post,
            "scheduler",
            "awaiting_confirmation",
            post.state,
            post.state,
            "已开启群发保护：请管理员在30分钟内用手机微信确认这次群发",
        )
        log.warning("post %s waits for an administrator to confirm the mass send", post.id)
    db.session.commit()


def _failed_attempt(
    post: Post,
    delivery: Delivery,
    exc: wechat_client.ApiError,
    *,
    now: datetime,
    report: TickReport,
) -> None:
    max_attempts = int(current_app.config["POST_MAX_ATTEMPTS"])
    delivery.last_error = exc.reason
    if exc.transient and delivery.attempts < max_attempts:
        delivery.state = "pending"
        delivery.next_attempt_at = now + min(
            timedelta(minutes=2**delivery.attempts), timedelta(hours=1)
        )
        db.session.commit()
        report.retried.append(delivery.clientmsgid)
        log.warning("delivery %s will be retried: %s", delivery.clientmsgid, exc)
        return
    delivery.state = "failed"
    reason = f"{delivery.audience}：{exc.reason}"
    if exc.transient:
        reason += f"（已重试 {delivery.attempts} 次）"
    _move(  # one transaction: the delivery and its post fail together
        post,
        {"publishing"},
        "failed",
        actor="scheduler",
        action="failed",
        error=reason,
        with_pending=True,
    )
    report.failed.append(delivery.clientmsgid)
    log.error("post %s failed: %s", post.id, exc)


def _expire_confirmations(now: datetime) -> None:
    waiting = db.session.scalars(
        select(Delivery).where(
            Delivery.state == "confirming", Delivery.submitted_at < now - CONFIRM_WINDOW
        )
    )
    for delivery in list(waiting):
        delivery.state = "failed"
        delivery.last_error = "管理员没有在30分钟内确认群发，本次群发未发出（不会自动重发）"
        post = db.session.get(Post, delivery.post_id)
        _move(
            post,
            {"publishing", "awaiting_confirmation"},
            "failed",
            actor="scheduler",
            action="confirmation_expired",
            error=delivery.last_error,
            with_pending=True,
        )


def _settle_posts() -> None:
    """A post is published when every delivery is with WeChat; waiting if one needs an admin."""
    busy = db.session.scalars(
        select(Post).where(Post.state.in_(("publishing", "awaiting_confirmation")))
    )
    for post in list(busy):
        states = set(db.session.scalars(select(Delivery.state).where(Delivery.post_id == post.id)))
        if not states or states & {"pending", "sending", "failed"}:
            continue
        if "confirming" in states:
            if post.state == "publishing":
                _move(
                    post,
                    {"publishing"},
                    "awaiting_confirmation",
                    actor="scheduler",
                    action="awaiting_confirmation",
                    detail="等待管理员在手机上确认群发",
                )
            continue
        _move(
            post,
            {"publishing", "awaiting_confirmation"},
            "published",
            actor="scheduler",
            action="published",
        )


def record_job_finish(fields: dict[str, Any]) -> bool:
    """MASSSENDJOBFINISH / PUBLISHJOBFINISH: WeChat's report on a mass send (W8, W10)."""
    info = (
        fields.get("PublishEventInfo") if isinstance(fields.get("PublishEventInfo"), dict) else {}
    )
    msg_id = str(fields.get("MsgID") or fields.get("MsgId") or info.get("publish_id") or "")
    delivery = (
        db.session.scalar(select(Delivery).where(Delivery.msg_id == msg_id)) if msg_id else None
    )
    if delivery is None:
        log.warning("job-finish report for unknown msg_id %s", msg_id)
        return False
    status = str(fields.get("Status", ""))
    delivery.report = {
        k: str(fields.get(k, ""))
        for k in ("Status", "TotalCount", "FilterCount", "SentCount", "ErrorCount")
    }
    ok = status in ("send success", "sendsuccess", "0")
    delivery.state = "finished" if ok else "failed"
    if not ok:
        delivery.last_error = f"微信报告群发失败：{status}"
    post = db.session.get(Post, delivery.post_id)
    if ok:
        _event(
            post,
            "wechat",
            "report",
            post.state,
            post.state,
            f"{delivery.audience}：送达 {delivery.report['SentCount']} 人，"
            f"过滤 {delivery.report['FilterCount']}，失败 {delivery.report['ErrorCount']}",
        )
        db.session.commit()
        _settle_posts()
    else:
        _move(
            post,
            {"publishing", "awaiting_confirmation", "published"},
            "failed",
            actor="wechat",
            action="report",
            error=delivery.last_error,
            with_pending=True,
        )
    return True


def counts() -> dict[str, int]:
    rows = db.session.execute(select(Post.state, func.count()).group_by(Post.state))
    return {state: n for state, n in rows}
