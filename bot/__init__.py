"""Pufa (普法): the backend of a township's legal-education WeChat official account."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from bot import (
    accounts,
    answering,
    config,
    errors,
    fulltext,
    headers,
    lawbase,
    limits,
    logs,
    privacy,
    semantic,
    stores,
    wechat_client,
)
from bot.extensions import csrf, db, migrate, tune_sqlite

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def _ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic manages our tables; APScheduler creates and owns its job table itself."""
    return not (type_ == "table" and name == "apscheduler_jobs")


def create_app(
    test_config: Mapping[str, Any] | None = None, *, overrides: Mapping[str, Any] | None = None
) -> Flask:
    """Build a Pufa app; web workers, the scheduler, the CLI and every test come through here.

    Without `test_config` the configuration is `Defaults`, then instance/pufa.cfg, then the
    PUFA_* environment, then `overrides`. With it, it is `Defaults` and `test_config` alone:
    a test or a benchmark never picks up a developer's pufa.cfg or PUFA_* settings.

    It never starts threads or the scheduler, and it touches no database: a worker boots even
    while the database is down, and answers residents from the in-memory law base.
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(config.Defaults)  # SQLite in instance/, no Redis: a laptop runs it
    if test_config is not None:
        app.config.update(test_config)
    else:
        app.config.from_pyfile("pufa.cfg", silent=True)  # instance/pufa.cfg, git-ignored
        app.config.from_prefixed_env("PUFA")  # PUFA_SECRET_KEY=... beats both
        app.config.update(overrides or {})
    config.finalize(app.config, app.instance_path, app.root_path)
    if int(app.config["PROXY_HOPS"]):
        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    privacy.install_log_filter(app)
    logs.init_app(app)
    db.init_app(app)
    tune_sqlite(app)
    migrate.init_app(app, db, directory=MIGRATIONS, include_object=_ours)
    stores.init_app(app)
    accounts.init_app(app)  # the configured account now; others resolved on first message
    wechat_client.init_app(app)
    fulltext.init_app(app)  # every article of the national laws, cleaned
    semantic.init_app(app)  # the embedding model and its caches (before the law base)
    lawbase.init_app(app)  # loads, validates, checks and indexes content once per worker
    answering.init_app(app)  # the emergency and confidence models, the article index

    from bot import api, cli, console, demo, wechat

    csrf.init_app(app)
    console.auth.init_app(app)
    for blueprint in (wechat.bp, console.bp, api.bp):
        app.register_blueprint(blueprint)
    csrf.exempt(wechat.bp)  # WeChat signs its requests instead
    csrf.exempt(api.bp)  # machines: a bearer token, no cookies
    if app.config["DEMO_PAGE"]:
        app.register_blueprint(demo.bp)
        csrf.exempt(demo.bp)  # the local chat page speaks for demo residents only
    limits.init_app(app)
    cli.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    return app
