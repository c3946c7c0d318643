"""flask --app bot demo: the whole product on a laptop, in one process.

Registered as a Flask command through the `flask.commands` entry point (pyproject.toml), so
the web app never imports the scheduler package.

Starts the stand-in WeChat API (bot/wechat/fakeapi.py) on a local port, points the publishing
path at it, runs the scheduler's tick in a background APScheduler, and serves the webhook and
the demo chat page. Staff can queue posts with `flask --app bot posts …` in another terminal
and watch them arrive at the stand-in's /_fake/calls. Production runs these as separate
processes (gunicorn workers, python -m scheduler) against the real API.
"""

from __future__ import annotations

import threading

import click
from apscheduler.schedulers.background import BackgroundScheduler
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.serving import make_server, run_simple

from bot.wechat.fakeapi import FakeWeChat, create_fake_api
from scheduler import jobs

DEMO_SECRET = "pufa-demo-secret"


@click.command("demo")
@click.option("--port", default=5000, show_default=True, help="the web app (webhook, /demo/)")
@click.option("--api-port", default=8900, show_default=True, help="the stand-in WeChat API")
@click.option("--tick", default=10, show_default=True, help="scheduler tick, seconds")
@with_appcontext
def demo(port: int, api_port: int, tick: int) -> None:
    """Run the demo: web app, stand-in WeChat API and scheduler together."""
    if current_app.config.get("ENV") == "production":
        raise click.UsageError("the demo never runs with PUFA_ENV=production")
    from bot import create_app

    app = create_app(overrides={"DEMO_PAGE": True})  # the chat page exists only in this app
    fake = FakeWeChat(
        app.config["WECHAT_APP_ID"], DEMO_SECRET, account_type=app.config["WECHAT_ACCOUNT_TYPE"]
    )
    api = make_server("127.0.0.1", api_port, create_fake_api(fake), threaded=True)
    threading.Thread(target=api.serve_forever, daemon=True, name="fake-wechat-api").start()
    app.config.update(
        WECHAT_APP_SECRET=DEMO_SECRET, WECHAT_API_BASE=f"http://127.0.0.1:{api_port}/cgi-bin/"
    )
    jobs.bind(app)
    scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
    scheduler.add_job(
        jobs.tick, "interval", seconds=tick, id="pufa-tick", coalesce=True, max_instances=1
    )
    scheduler.start()
    click.echo(f"普法演示：聊天页面 http://127.0.0.1:{port}/demo/")
    click.echo(f"模拟微信接口：http://127.0.0.1:{api_port}/_fake/calls（群发记录）")
    click.echo(
        "另开一个终端用 flask --app bot posts create/submit/approve 排期文章，到点自动群发。"
    )
    try:
        run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)
    finally:
        scheduler.shutdown(wait=False)
        api.shutdown()
