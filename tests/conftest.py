"""Fixtures: an app per test module, a clean database per test, and a WeChat stand-in.

The suite runs on SQLite by default and on PostgreSQL when PUFA_TEST_DATABASE_URL is set
(`.ci/run` does both). Redis tests use PUFA_TEST_REDIS_URL (default 127.0.0.1:6379) and are
skipped only where no Redis answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from bot import accounts
from bot.wechat.simulator import Simulator
from tests.factories import (
    AES_KEY,
    APP_ID,
    FAKE_SECRET,
    TOKEN,
    Outage,
    WeChat,
    close_app,
    make_app,
)
from tests.helpers import APPS, MODULE_APPS


@pytest.fixture(autouse=True)
def _close_apps():
    """Close every app's connections after each test, however the test ended; apps that
    serve a whole module are closed too, and forgotten when the module ends."""
    yield
    while APPS:
        close_app(APPS.pop())
    for app in MODULE_APPS:
        close_app(app)


@pytest.fixture(autouse=True, scope="module")
def _forget_module_apps():
    yield
    while MODULE_APPS:
        close_app(MODULE_APPS.pop())


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(params=["plain", "compatible", "safe"])
def wechat(request):
    """Signs (and in compatible/safe mode encrypts) messages as WeChat does."""
    return WeChat(Simulator(token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, mode=request.param))


@pytest.fixture(params=["compatible", "safe"])
def encrypted_wechat(request):
    return WeChat(Simulator(token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, mode=request.param))


@pytest.fixture
def plain_wechat():
    return WeChat(Simulator(token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, mode="plain"))


@pytest.fixture
def redis_url():
    url = os.environ.get("PUFA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            raise
        pytest.skip("no Redis at " + url)
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.fixture
def outage(app) -> Iterator[Outage]:
    o = Outage(app)
    yield o
    o.end()


@pytest.fixture
def fake_api():
    """The stand-in WeChat API on a real local port (real HTTP, real timeouts)."""
    import threading

    from werkzeug.serving import make_server

    from bot.wechat.fakeapi import FakeWeChat, create_fake_api

    fake = FakeWeChat(APP_ID, FAKE_SECRET)
    server = make_server("127.0.0.1", 0, create_fake_api(fake), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base = f"http://127.0.0.1:{server.server_port}/cgi-bin/"
    yield fake
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def two_towns(tmp_path, monkeypatch):
    """One deployment serving two townships: the default account and 乙镇 (id 2)."""
    monkeypatch.setenv("PUFA_B_TOKEN", "token-of-乙镇")
    app = make_app(tmp_path)
    with app.app_context():
        accounts.create(
            slug="yizhen", name="乙镇普法", app_id="wx00000000000000b2", token_env="PUFA_B_TOKEN"
        )
    return app
