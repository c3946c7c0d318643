"""A post's life as staff drive it: create, submit, approve, cancel, reopen, reschedule.

Every change is one conditional UPDATE and its event in one transaction (`_move`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from bot.extensions import db
from bot.models import DEFAULT_ACCOUNT_ID, Post, PostEvent
from bot.posts.frontmatter import _when, calendar_time, parse_time
from bot.posts.states import _ALLOWED, STATES, PostError, State, local

log = logging.getLogger(__name__)


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
    account_id: int = DEFAULT_ACCOUNT_ID,
) -> Post:
    """Create a draft post of an account; its time is a moment (`send_at`) or a calendar key
    date (`on`)."""
    if not title.strip() or not body.strip():
        raise PostError("标题和正文都不能为空")
    if kind not in ("text", "article"):
        raise PostError("kind 只能是 text（文字）或 article（图文）")
    if not audiences:
        raise PostError('请至少选择一个发送对象（audiences），例如 ["全体"]')
    if kind == "article" and not cover_media_id:
        log.info("article without cover_media_id: WeChat requires a cover before sending")
    post = Post(
        account_id=account_id,
        title=title.strip(),
        body=body,
        kind=kind,
        audiences=list(dict.fromkeys(audiences)),
        digest=digest,
        author=author,
        cover_media_id=cover_media_id,
        created_by=actor,
        state=State.DRAFT,
    )
    post.send_at, post.calendar_id = _when(send_at, on, at, now or datetime.now(UTC), account_id)
    db.session.add(post)
    db.session.flush()
    _event(post, actor, "create", None, "draft", f"发送时间 {local(post.send_at)}")
    db.session.commit()
    return post


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
    if action == "approve" and actor in _writers(post):
        raise PostError(f"“{post.title}”是您写的或您提交的，须由另一位同事审核")
    if not _move(post, sources, target, actor=actor, action=action, detail=detail):
        raise PostError(f"“{post.title}”刚被别人改过了，请刷新后再试")
    return post


def _writers(post: Post) -> set[str]:
    """Who wrote the post or submitted it since it was last opened: none of them approves it."""
    submitted = db.session.scalars(
        select(PostEvent.actor).where(PostEvent.post_id == post.id, PostEvent.action == "submit")
    )
    return {post.created_by, *submitted}


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
    if post.state not in (State.DRAFT, State.AWAITING_APPROVAL, State.SCHEDULED):
        raise PostError(f"“{post.title}”现在是{STATES[post.state]}，不能改时间")
    before = local(post.send_at)
    post.send_at, post.calendar_id = _when(
        send_at, on, at, now or datetime.now(UTC), post.account_id
    )
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


def schedule_moment(
    schedule: dict[str, str | None], account_id: int = DEFAULT_ACCOUNT_ID
) -> tuple[datetime, str | None]:
    """The UTC moment and the key date (if any) a schedule means, as create() computes them."""
    if schedule["on"]:
        at = schedule["at"] or "09:00"
        when = calendar_time(schedule["on"], at, datetime.now(UTC), account_id=account_id)
        return when, schedule["on"]
    return parse_time(schedule["send_at"] or ""), None


def edit_draft(
    post: Post,
    *,
    actor: str,
    title: str,
    body: str,
    kind: str,
    digest: str | None,
    audiences: list[str],
    send_at: str | None,
    on: str | None,
    at: str,
) -> Post:
    """Change a draft: one conditional UPDATE (still a draft) and its event."""
    if not title or not body.strip():
        raise PostError("标题和正文都不能为空")
    if kind not in ("text", "article"):
        raise PostError("形式只能是文字消息或图文")
    if not audiences:
        raise PostError("请至少填写一个发送对象，例如“全体”")
    moment, calendar_id = schedule_moment({"send_at": send_at, "on": on, "at": at}, post.account_id)
    values = {
        "title": title,
        "body": body,
        "kind": kind,
        "digest": digest,
        "audiences": audiences,
        "send_at": moment,
        "calendar_id": calendar_id,
    }
    changed = [name for name, value in values.items() if getattr(post, name) != value]
    detail = "修改了" + "、".join(_FIELD_NAMES[n] for n in changed) if changed else "未改动"
    if "send_at" in changed:
        detail += f"（发送时间 {local(post.send_at)} → {local(moment)}）"
    return _change_draft(post, values, actor=actor, action="edit", detail=detail)


def set_cover(post: Post, media_id: str, *, actor: str) -> Post:
    """Give a draft article its cover: a permanent image already in the account's materials."""
    detail = f"封面图已上传到公众号素材库（{media_id}）"
    return _change_draft(
        post, {"cover_media_id": media_id}, actor=actor, action="cover", detail=detail
    )


def _change_draft(
    post: Post, values: dict[str, Any], *, actor: str, action: str, detail: str
) -> Post:
    """One conditional UPDATE (the post is still a draft) and its event, in one transaction."""
    result = db.session.execute(
        update(Post)
        .where(Post.id == post.id, Post.state == State.DRAFT)
        .values(**values, updated_at=datetime.now(UTC))
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise PostError(f"“{post.title}”刚被别人改过了，已不是草稿，请刷新后再看")
    db.session.add(
        PostEvent(
            post_id=post.id,
            actor=actor,
            action=action,
            from_state=State.DRAFT,
            to_state=State.DRAFT,
            detail=detail,
        )
    )
    db.session.commit()
    db.session.refresh(post)
    return post


_FIELD_NAMES = {
    "title": "标题",
    "body": "正文",
    "kind": "形式",
    "digest": "摘要",
    "audiences": "发送对象",
    "send_at": "发送时间",
    "calendar_id": "重要日子",
}
