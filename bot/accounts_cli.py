"""`flask --app bot accounts …`: the official accounts one deployment serves."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from bot import accounts

group = AppGroup("accounts", help="Official accounts served by this deployment.")


@group.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="shown to staff, e.g. 某某镇普法")
@click.option("--app-id", required=True, help="the account's AppID (wx…)")
@click.option("--original-id", default=None, help="原始ID (gh_…): messages to others are refused")
@click.option("--token-env", required=True, help="environment variable holding the Token")
@click.option("--aes-key-env", default=None, help="environment variable holding EncodingAESKey")
@click.option("--app-secret-env", default=None, help="environment variable holding AppSecret")
@click.option(
    "--type", "account_type", type=click.Choice(accounts.ACCOUNT_TYPES), default="subscription"
)
@click.option("--encryption", type=click.Choice(accounts.ENCRYPTIONS), default=None)
@click.option("--office-name", default=None, help="the township's 司法所")
@click.option("--office-phone", default=None)
@click.option("--office-address", default=None)
@click.option("--office-hours", default=None)
@click.option(
    "--help-channel",
    "channels",
    multiple=True,
    help='further help, "名称=电话", e.g. "村调解委员会=0871-1234567" (repeatable)',
)
def add(slug: str, channels: tuple[str, ...], **fields: str | None) -> None:
    """Add an account served at /wechat/<SLUG>; its secrets stay in the environment."""
    help_channels = []
    for channel in channels:
        name, _, phone = channel.partition("=")
        help_channels.append({"name": name.strip(), "phone": phone.strip() or None})
    try:
        row = accounts.create(slug=slug, help_channels=help_channels, **fields)  # type: ignore[arg-type]
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"已添加账号 {row.slug}（编号 {row.id}）：在公众号后台把服务器地址设为 /wechat/{row.slug}"
    )


@group.command("list")
def list_() -> None:
    """Every account, with the address WeChat must call and whether its secrets are set."""
    from bot.extensions import db
    from bot.models import Account

    for row in db.session.scalars(db.select(Account).order_by(Account.id)):
        path = "/wechat" if row.id == 1 else f"/wechat/{row.slug}"
        try:
            settings = accounts.by_id(row.id)
            ready = "就绪" if settings.app_secret else "可回复（未设 AppSecret，不能群发）"
        except accounts.AccountError as exc:
            ready = f"不可用：{exc}"
        name = row.name or ("（配置文件中的账号）" if row.id == 1 else "")
        record = {"id": row.id, "slug": row.slug, "name": name, "path": path, "status": ready}
        click.echo(json.dumps(record, ensure_ascii=False))
