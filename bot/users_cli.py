"""`flask --app bot users …`: console users from the command line (the first admin, say)."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from bot import accounts, users
from bot.extensions import db
from bot.models import Membership, User

group = AppGroup("users", help="Console users and their roles.")


@group.command("create")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="shown in histories, e.g. 张三")
@click.option("--role", type=click.Choice(list(users.ROLES)), required=True)
@click.option("--account", "slug", default=accounts.DEFAULT_SLUG, show_default=True)
@click.password_option(help="asked for twice when not given")
def create(username: str, display_name: str, role: str, slug: str, password: str) -> None:
    """Create a user with a role in one account."""
    account = _account(slug)
    try:
        users.create(
            username=username,
            display_name=display_name,
            password=password,
            role=role,
            account_id=account.id,
            actor="命令行",
        )
    except users.UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"已创建用户 {username}：{users.ROLES[role]}（{account.slug}），登录地址 /console/")


@group.command("grant")
@click.argument("username")
@click.option("--role", type=click.Choice(list(users.ROLES)), required=True)
@click.option("--account", "slug", required=True)
def grant(username: str, role: str, slug: str) -> None:
    """Give a user a role in another account (a county admin serving several townships)."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"没有用户 {username}")
    users.grant(user, account_id=_account(slug).id, role=role, actor="命令行")
    click.echo(f"{username} 在 {slug} 的角色：{users.ROLES[role]}")


@group.command("reset")
@click.argument("username")
def reset(username: str) -> None:
    """A temporary password for a user who forgot theirs (the last admin, say); it only lets
    them set a new one at their next sign-in. Also restores a stopped user."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"没有用户 {username}")
    user.active = True
    temporary = users.reset_password(user, actor="命令行", account_id=None)
    click.echo(f"{username} 的临时密码：{temporary}（登录后必须先设置新密码）")


@group.command("list")
def list_() -> None:
    """Every user and their roles."""
    rows = db.session.execute(
        select(
            User.username, User.display_name, User.active, Membership.account_id, Membership.role
        )
        .join(Membership, Membership.user_id == User.id)
        .order_by(User.username, Membership.account_id)
    )
    for username, name, active, account_id, role in rows:
        state = "" if active else "（已停用）"
        click.echo(f"{username}\t{name}{state}\t账号{account_id}\t{users.ROLES[role]}")


def _account(slug: str) -> accounts.Settings:
    try:
        account = accounts.by_slug(slug)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if account is None:
        raise click.ClickException(f"没有标识为 {slug} 的公众号账号")
    return account
