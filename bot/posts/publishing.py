"""The scheduler's work: each (post, audience) is sent exactly once.

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
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select, update

from bot import accounts, wechat_client
from bot.extensions import db
from bot.models import DEFAULT_ACCOUNT_ID, Delivery, Post
from bot.posts import render
from bot.posts.states import CLAIM_TIMEOUT, CONFIRM_WINDOW, EVERYONE, PostError, State, local
from bot.posts.workflow import _event, _move, set_cover

log = logging.getLogger(__name__)


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
    due = db.session.scalars(select(Post).where(Post.state == State.SCHEDULED, Post.send_at <= now))
    for post in list(due):
        late = now - post.send_at
        if late > grace:
            reason = f"计划 {local(post.send_at)} 发送时系统未运行，已超过补发时限，请重新安排"
            if _move(
                post,
                {State.SCHEDULED},
                State.MISSED,
                actor="scheduler",
                action="missed",
                error=reason,
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
            post,
            {State.SCHEDULED},
            State.PUBLISHING,
            actor="scheduler",
            action="start",
            detail=detail,
        ):
            for audience in post.audiences:
                db.session.add(
                    Delivery(
                        post_id=post.id,
                        audience=audience,
                        clientmsgid=clientmsgid(post.id, audience, post.account_id),
                    )
                )
            db.session.commit()
            report.started.append(post.id)


def clientmsgid(post_id: int, audience: str, account_id: int = DEFAULT_ACCOUNT_ID) -> str:
    """Stable per (account, post, audience), at most 64 characters, as sendall requires."""
    scope = "" if account_id == DEFAULT_ACCOUNT_ID else f"a{account_id}-"
    return f"pufa-{scope}{post_id}-{hashlib.sha1(audience.encode()).hexdigest()[:12]}"


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
        .where(Post.state == State.PUBLISHING, _claimable(now))
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
    client = wechat_client.client(accounts.by_id(post.account_id))
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
                html=render.article_html(post.body),
                digest=post.digest,
                author=post.author,
                thumb_media_id=post.cover_media_id,
            )
            db.session.commit()  # a draft made twice is harmless; a send made twice is not
        message = {"msgtype": "mpnews", "mpnews": {"media_id": delivery.media_id}}
    else:
        message = {
            "msgtype": "text",
            "text": {"content": render.text_message(post.title, post.body)},
        }
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
        {State.PUBLISHING},
        State.FAILED,
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
            {State.PUBLISHING, State.AWAITING_CONFIRMATION},
            State.FAILED,
            actor="scheduler",
            action="confirmation_expired",
            error=delivery.last_error,
            with_pending=True,
        )


def _settle_posts() -> None:
    """A post is published when every delivery is with WeChat; waiting if one needs an admin."""
    busy = db.session.scalars(
        select(Post).where(Post.state.in_((State.PUBLISHING, State.AWAITING_CONFIRMATION)))
    )
    for post in list(busy):
        states = set(db.session.scalars(select(Delivery.state).where(Delivery.post_id == post.id)))
        if not states or states & {"pending", "sending", "failed"}:
            continue
        if "confirming" in states:
            if post.state == State.PUBLISHING:
                _move(
                    post,
                    {State.PUBLISHING},
                    State.AWAITING_CONFIRMATION,
                    actor="scheduler",
                    action="awaiting_confirmation",
                    detail="等待管理员在手机上确认群发",
                )
            continue
        _move(
            post,
            {State.PUBLISHING, State.AWAITING_CONFIRMATION},
            State.PUBLISHED,
            actor="scheduler",
            action="published",
        )


def record_job_finish(fields: dict[str, Any], *, account_id: int = DEFAULT_ACCOUNT_ID) -> bool:
    """MASSSENDJOBFINISH / PUBLISHJOBFINISH: WeChat's report on a mass send (W8, W10).

    msg_ids are the platform's per account: the report only touches that account's posts.
    """
    info = (
        fields.get("PublishEventInfo") if isinstance(fields.get("PublishEventInfo"), dict) else {}
    )
    msg_id = str(fields.get("MsgID") or fields.get("MsgId") or info.get("publish_id") or "")
    delivery = (
        db.session.scalar(
            select(Delivery)
            .join(Post, Post.id == Delivery.post_id)
            .where(Delivery.msg_id == msg_id, Post.account_id == account_id)
        )
        if msg_id
        else None
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
            {State.PUBLISHING, State.AWAITING_CONFIRMATION, State.PUBLISHED},
            State.FAILED,
            actor="wechat",
            action="report",
            error=delivery.last_error,
            with_pending=True,
        )
    return True


def counts() -> dict[str, int]:
    rows = db.session.execute(select(Post.state, func.count()).group_by(Post.state))
    return {state: n for state, n in rows}


COVER_LIMIT = 2 * 1024 * 1024  # nginx lets 2 MB through to /console/ (WeChat takes 10 MB)
IMAGE_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


def upload_cover(post: Post, data: bytes | None, *, account: accounts.Settings, actor: str) -> Post:
    """Put the image among the account's permanent materials and make it the draft's cover.

    `data` None: the upload was too large to read.
    """
    if post.state != State.DRAFT or post.kind != "article":
        raise PostError("只有图文草稿可以上传封面")
    if data is None or len(data) > COVER_LIMIT:
        raise PostError("图片太大了：封面最大 2 MB")
    if not data:
        raise PostError("请先选择一张封面图片")
    mimetype = next((t for magic, t in IMAGE_TYPES.items() if data.startswith(magic)), None)
    if mimetype is None:
        raise PostError("封面只能是 JPG 或 PNG 图片")
    try:
        client = wechat_client.client(account)
        media_id = wechat_client.add_image(client, data=data, mimetype=mimetype)
    except wechat_client.ApiError as exc:
        raise PostError(f"封面没有上传成功：{exc.reason}") from None
    return set_cover(post, media_id, actor=actor)


TAGS_FRESH_SECONDS = 600  # the account's tag list is asked of WeChat at most this often
TAGS_RETRY_SECONDS = 60  # after WeChat could not be asked


def account_tags(account: accounts.Settings) -> list[str] | None:
    """The account's user tags by name, for staff choosing audiences; None when WeChat
    cannot be asked (no AppSecret, the network), so the editor never waits on it twice."""
    held: dict[int, tuple[float, list[str] | None]] = current_app.extensions.setdefault(
        "pufa.account_tags", {}
    )
    now = time.monotonic()
    cached = held.get(account.id)
    if cached is not None:
        fresh = TAGS_FRESH_SECONDS if cached[1] is not None else TAGS_RETRY_SECONDS
        if now - cached[0] < fresh:
            return cached[1]
    try:
        names: list[str] | None = sorted(wechat_client.tags(wechat_client.client(account)))
    except wechat_client.ApiError as exc:
        log.info("tags of account %s not available: %s", account.slug, exc)
        names = cached[1] if cached is not None else None
    held[account.id] = (now, names)
    return names


def audience_warnings(post: Post) -> list[str]:
    """Audiences that are not tags of the post's account: their sends would fail (40050)."""
    known = account_tags(accounts.by_id(post.account_id))
    if known is None:
        return []
    unknown = [a for a in post.audiences if a != EVERYONE and a not in known]
    if not unknown:
        return []
    return [
        f"公众号里没有“{'”“'.join(unknown)}”这个用户标签，发送会失败；"
        f"现有标签：{'、'.join(known) or '（无）'}"
    ]
