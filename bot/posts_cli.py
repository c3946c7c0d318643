"""flask --app bot posts …: how staff manage posts until the console exists."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from bot import posts
from bot.extensions import db
from bot.models import Delivery, Post

group = AppGroup("posts", help="Queue, approve and schedule legal-education posts.")
by_option = click.option(
    "--by",
    "actor",
    default=lambda: getpass.getuser(),
    show_default="you",
    help="who is doing this (recorded in the history)",
)


def _fail(exc: posts.PostError) -> None:
    click.echo(f"错误：{exc}", err=True)
    sys.exit(1)


def _warn(post: Post) -> None:
    for warning in posts.quota_warnings(post):
        click.echo(f"注意：{warning}", err=True)


@group.command("create")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@by_option
def create(path: Path, actor: str) -> None:
    """Create a draft from a Markdown file with +++ TOML front matter."""
    try:
        meta = posts.parse_markdown(path.read_text(encoding="utf-8"))
        post = posts.create(
            actor=actor,
            title=meta.get("title", ""),
            body=meta["body"],
            audiences=list(meta.get("audiences", [])),
            kind=meta.get("kind", "text"),
            send_at=meta.get("send_at"),
            on=meta.get("on"),
            at=meta.get("at", "09:00"),
            digest=meta.get("digest"),
            author=meta.get("author"),
            cover_media_id=meta.get("cover_media_id"),
        )
    except posts.PostError as exc:
        _fail(exc)
    click.echo(
        f"已创建草稿 #{post.id}《{post.title}》，计划 {posts.local(post.send_at)} 发给 "
        f"{'、'.join(post.audiences)}"
    )
    _warn(post)


@group.command("list")
@click.option("--state", default=None, help="only posts in this state")
def list_posts(state: str | None) -> None:
    """Posts with their state and time; failed and missed ones say why."""
    query = select(Post).order_by(Post.send_at)
    if state:
        query = query.where(Post.state == state)
    for post in db.session.scalars(query):
        click.echo(
            f"#{post.id:<4} {posts.STATES[post.state]:<6} {posts.local(post.send_at)}  "
            f"{'、'.join(post.audiences)}  《{post.title}》"
        )
        if post.state in ("failed", "missed", "awaiting_confirmation") and post.last_error:
            click.echo(f"       ↳ {post.last_error}")


@group.command("show")
@click.argument("post_id", type=int)
def show(post_id: int) -> None:
    """A post, its deliveries and its whole history (who, when, what)."""
    post = db.session.get(Post, post_id)
    if post is None:
        _fail(posts.PostError(f"没有编号为 {post_id} 的文章"))
    click.echo(
        f"#{post.id}《{post.title}》 {posts.STATES[post.state]}  计划 {posts.local(post.send_at)}"
        f"{'（' + post.calendar_id + '）' if post.calendar_id else ''}"
    )
    for d in db.session.scalars(select(Delivery).where(Delivery.post_id == post.id)):
        extra = f" msg_id {d.msg_id}" if d.msg_id else ""
        report = f" 送达{d.report.get('SentCount')}人" if d.report else ""
        click.echo(
            f"  → {d.audience}: {d.state}{extra}{report}{' · ' + d.last_error if d.last_error else ''}"
        )
    click.echo("历史：")
    for e in posts.history(post.id):
        arrow = f"{e.from_state or ''}→{e.to_state or ''}" if e.from_state != e.to_state else ""
        click.echo(f"  {posts.local(e.at)}  {e.actor:<10} {e.action:<22} {arrow} {e.detail or ''}")


def _simple(action: str, help_text: str):
    @group.command(action, help=help_text)
    @click.argument("post_id", type=int)
    @by_option
    def command(post_id: int, actor: str) -> None:
        try:
            post = posts.act(post_id, action, actor=actor)
        except posts.PostError as exc:
            _fail(exc)
        click.echo(f"#{post.id}《{post.title}》现在是{posts.STATES[post.state]}")
        if action == "approve":
            _warn(post)

    return command


_simple("submit", "Send a draft for approval.")
_simple("approve", "Approve a post: it will be published at its time.")
_simple("cancel", "Cancel a post that has not been sent.")
_simple("reopen", "Turn a failed, missed or cancelled post back into a draft.")


@group.command("schedule")
@click.argument("post_id", type=int)
@click.option("--at", "send_at", default=None, help="2026-12-04 09:00 (Beijing time)")
@click.option("--on", "on", default=None, help="a key date of content/calendar.toml")
@click.option("--time", "at", default="09:00", show_default=True, help="time of day with --on")
@by_option
def schedule(post_id: int, send_at: str | None, on: str | None, at: str, actor: str) -> None:
    """Change when a post goes out."""
    try:
        post = posts.reschedule(post_id, actor=actor, send_at=send_at, on=on, at=at)
    except posts.PostError as exc:
        _fail(exc)
    click.echo(f"#{post.id}《{post.title}》改为 {posts.local(post.send_at)} 发送")
    _warn(post)


@group.command("tick")
def tick() -> None:
    """Run one scheduler tick now (python -m scheduler does this every 30 s)."""
    report = posts.publish_due(now=datetime.now(UTC), worker="cli")
    click.echo(
        f"开始 {report.started} 提交 {report.submitted} 重试 {report.retried} "
        f"失败 {report.failed} 错过 {report.missed}"
    )
