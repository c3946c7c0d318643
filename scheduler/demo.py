"""flask --app bot demo: the whole product on a laptop, in one process.

Registered as a Flask command through the `flask.commands` entry point (pyproject.toml), so
the web app never imports the scheduler package.

Starts the stand-in WeChat API (bot/wechat/fakeapi.py) on a local port, points the publishing
path at it, runs the scheduler's tick in a background APScheduler, and serves the webhook, the demo chat page and the console (with demo users printed at start). Staff
queue posts in the console (or with `flask --app bot posts …`) and watch them arrive at the
stand-in's /_fake/calls. Production runs these as separate
processes (gunicorn workers, python -m scheduler) against the real API.
"""

from __future__ import annotations

import logging
import threading

import click
from flask import current_app
from flask.cli import with_appcontext

DEMO_SECRET = "pufa-demo-secret"
DEMO_PASSWORD = "pufa-demo-2026"  # localhost only; the demo refuses PUFA_ENV=production
DEMO_USERS = [  # username, name, role: two staff, so one can approve the other's post
    ("admin", "王主任", "admin"),
    ("zhangsan", "张三", "staff"),
    ("lisi", "李四", "staff"),
    ("guwen", "赵律师", "adviser"),
    ("lingdao", "刘书记", "viewer"),
]


@click.command("demo")
@click.option("--port", default=5000, show_default=True, help="the web app (webhook, /demo/)")
@click.option("--api-port", default=8900, show_default=True, help="the stand-in WeChat API")
@click.option("--tick", default=10, show_default=True, help="scheduler tick, seconds")
@with_appcontext
def demo(port: int, api_port: int, tick: int) -> None:
    """Run the demo: web app, stand-in WeChat API and scheduler together."""
    # Imported here: Flask loads this command for every `flask --app bot …`, and `ask` or
    # `db upgrade` should not pay for the scheduler, the stand-in API and the server.
    from apscheduler.schedulers.background import BackgroundScheduler
    from werkzeug.serving import make_server, run_simple

    from bot import users
    from bot.wechat.fakeapi import FakeWeChat, create_fake_api
    from scheduler import jobs

    if current_app.config.get("ENV") == "production":
        raise click.UsageError("the demo never runs with PUFA_ENV=production")
    from bot import create_app

    app = create_app(  # the chat page exists only in this app; it publishes to the stand-in
        overrides={
            "DEMO_PAGE": True,
            "WECHAT_APP_SECRET": DEMO_SECRET,
            "WECHAT_API_BASE": f"http://127.0.0.1:{api_port}/cgi-bin/",
        }
    )
    fake = FakeWeChat(
        app.config["WECHAT_APP_ID"], DEMO_SECRET, account_type=app.config["WECHAT_ACCOUNT_TYPE"]
    )
    api = make_server("127.0.0.1", api_port, create_fake_api(fake), threaded=True)
    threading.Thread(target=api.serve_forever, daemon=True, name="fake-wechat-api").start()
    jobs.bind(app)
    # The terminal is for staff: a tick every few seconds is not news (publishing is; the
    # jobs log that themselves). A failing tick still shows, as a warning.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
    scheduler.add_job(
        jobs.tick, "interval", seconds=tick, id="pufa-tick", coalesce=True, max_instances=1
    )
    scheduler.start()
    with app.app_context():
        made = _demo_users()
    click.echo(f"普法演示：聊天页面 http://127.0.0.1:{port}/demo/")
    click.echo(f"工作台 http://127.0.0.1:{port}/console/ ，演示用户（密码都是 {DEMO_PASSWORD}）：")
    for username, name, role in made:
        click.echo(f"  {username:<9} {name} · {users.ROLES[role]}")
    click.echo(f"模拟微信接口：http://127.0.0.1:{api_port}/_fake/calls（群发记录）")
    click.echo(
        "在工作台写推送、请另一位同事审核，到点自动群发；也可以用 flask --app bot posts 命令。"
    )
    try:
        run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)
    finally:
        scheduler.shutdown(wait=False)
        api.shutdown()


def _demo_users() -> list[tuple[str, str, str]]:
    """The demo's console users, made once (a user who already exists is left as it is)."""
    from sqlalchemy import select

    from bot import users
    from bot.extensions import db
    from bot.models import User

    for username, name, role in DEMO_USERS:
        if db.session.scalar(select(User.id).where(User.username == username)) is None:
            users.create(
                username=username,
                display_name=name,
                password=DEMO_PASSWORD,
                role=role,
                account_id=1,
                actor="演示",
            )
    return DEMO_USERS
