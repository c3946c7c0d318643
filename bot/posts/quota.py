"""The account's mass-send quota (WECHAT.md W10), as warnings staff see before approving."""

from __future__ import annotations

from sqlalchemy import select

from bot import accounts
from bot.extensions import db
from bot.models import Post
from bot.posts.states import TZ


def quota_warnings(post: Post) -> list[str]:
    """Warn staff when the plan would exceed the account's mass-send quota."""
    if post.send_at is None:
        return []
    planned = select(Post).where(
        Post.id != post.id,
        Post.account_id == post.account_id,
        Post.state.in_(
            ("awaiting_approval", "scheduled", "publishing", "awaiting_confirmation", "published")
        ),
    )
    when = post.send_at.astimezone(TZ)
    others = [p for p in db.session.scalars(planned) if p.send_at is not None]
    if accounts.by_id(post.account_id).account_type == "subscription":
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
