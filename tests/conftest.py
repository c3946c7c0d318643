"""Fixtures: an app per test module, a clean database per test, and a WeChat stand-in.

The suite runs on SQLite by default and on PostgreSQL when PUFA_TEST_DATABASE_URL is set
(`.ci/run` does both). Redis tests use PUFA_TEST_REDIS_URL (default 127.0.0.1:6379) and are
skipped only where no Redis answers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from bot import create_app
from bot.extensions import db
from bot.wechat.simulator import Simulator
from tests.helpers import APPS, MODULE_APPS

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CONTENT = Path(__file__).parent / "fixtures" / "content"
REAL_CONTENT = ROOT / "content"
TOKEN = "test-token-不重要"
APP_ID = "wx0123456789abcdef"
# Fixed, so that every import of this module (tests.conftest too) signs with the same key.
AES_KEY = "PufaTestKey0123456789abcdefghijklmnopqrstuv"

# The laws and regulations the base must cover (the annual report, its campaigns, daily life).
REQUIRED_LAWS = [
    # named by the township's annual report
    "宪法",
    "民法典",
    "义务教育法",
    "未成年人保护法",
    "安全生产法",
    "劳动法",
    "国旗法",
    "关税法",
    "粮食安全保障法",
    "突发事件应对法",
    # its campaigns
    "森林法",
    "森林防火条例",
    "人民调解法",
    "道路交通安全法",
    "道路交通安全法实施条例",
    "烟草专卖法",
    "烟草专卖法实施条例",
    # what a rural township asks every day
    "劳动合同法",
    "保障农民工工资支付条例",
    "工伤保险条例",
    "劳动争议调解仲裁法",
    "社会保险法",
    "农村土地承包法",
    "土地管理法",
    "反家庭暴力法",
    "妇女权益保障法",
    "老年人权益保障法",
    "家庭教育促进法",
    "消费者权益保护法",
    "食品安全法",
    "种子法",
    "反电信网络诈骗法",
    "治安管理处罚法",
    "禁毒法",
    "法律援助法",
    "村民委员会组织法",
]


def database_url(tmp_path: Path) -> str:
    return os.environ.get("PUFA_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'pufa.sqlite3'}"


def make_app(
    tmp_path: Path, content: Path = FIXTURE_CONTENT, *, module_scoped: bool = False, **overrides
):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_AES_KEY": AES_KEY,
        "DATABASE_URL": database_url(tmp_path),
        "CONTENT_DIR": str(content),
        "CALENDAR_FILE": str(REAL_CONTENT / "calendar.toml"),
        "SPOOL_DIR": str(tmp_path / "spool"),
        "JUSTICE_OFFICE_NAME": "测试镇司法所",
        "JUSTICE_OFFICE_PHONE": "0871-00000000",
        "REDIS_URL": None,
        # The tiny fixture base is matched by words alone (the calibrated confidence belongs
        # to the real base); the real base gets the real models.
        "EMBEDDINGS": Path(content) == REAL_CONTENT,
    }
    config.update(overrides)
    app = create_app(config)
    with app.app_context():
        db.drop_all()
        db.create_all()
    (_module_apps if module_scoped else _apps).append(app)
    return app


# One list whichever way this module was imported: pytest loads it as `conftest`, and test
# files that import `tests.conftest` get a second copy; the clean-up below must see the apps
# both copies made, or their database connections stay open until PostgreSQL refuses more.
_apps, _module_apps = APPS, MODULE_APPS


def _close(app) -> None:
    """Close an app's connections and threads; a later use opens new ones."""
    app.extensions["pufa.storage"].close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _close_apps():
    """Close every app's connections after each test, however the test ended; apps that
    serve a whole module are closed too, and forgotten when the module ends."""
    yield
    while _apps:
        _close(_apps.pop())
    for app in _module_apps:
        _close(app)


@pytest.fixture(autouse=True, scope="module")
def _forget_module_apps():
    yield
    while _module_apps:
        _close(_module_apps.pop())


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


class WeChat:
    """Test helper around the simulator: `client.post(**wechat.text("..."))`."""

    def __init__(self, sim: Simulator):
        self.sim = sim

    def __getattr__(self, name):
        return getattr(self.sim, name)

    def post_kwargs(self, xml: str) -> dict:
        args, body = self.sim.request(xml)
        return {"path": "/wechat", "query_string": args, "data": body, "content_type": "text/xml"}

    def text_message(self, content: str, **kw) -> dict:
        return self.post_kwargs(self.sim.text(content, **kw))

    def ask(self, client, content: str, **kw) -> str:
        response = client.post(**self.text_message(content, **kw))
        assert response.status_code == 200, response.get_data(as_text=True)
        return self.sim.reply_text(response.get_data())


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


class Outage:
    """Makes the database unreachable: pooled connections are dropped and new ones refused.

    This is what a stopped PostgreSQL server or an unreadable SQLite file looks like to the
    app: every statement raises OperationalError until `end()`.
    """

    def __init__(self, app):
        self.app, self.down = app, False
        with app.app_context():
            self.engine = db.engine
        event.listen(self.engine, "do_connect", self._connect)

    def _connect(self, *args, **kwargs):
        if self.down:
            raise OperationalError("connect", {}, Exception("database is down (test outage)"))
        return None

    def start(self) -> None:
        with self.app.app_context():
            db.session.remove()
        self.engine.dispose()
        self.down = True

    def end(self) -> None:
        self.down = False

    def ping(self) -> bool:
        with self.app.app_context(), self.engine.connect() as conn:
            return conn.execute(text("select 1")).scalar() == 1


@pytest.fixture
def outage(app) -> Iterator[Outage]:
    o = Outage(app)
    yield o
    o.end()


def copy_content(tmp_path: Path, source: Path = FIXTURE_CONTENT) -> Path:
    target = tmp_path / "content"
    shutil.copytree(source, target)
    return target


def edit_content(content: Path, old: str, new: str, name: str = "labor.toml") -> Path:
    """Replace the first `old` in one law file of a copied base; returns the file."""
    path = content / "laws" / name
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    return path


def flask_cli(env: dict[str, str], *args: str, cwd: Path = ROOT):
    """Run `flask --app bot ARGS` as staff would, in a separate process (from `cwd`)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "bot", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- the stand-in WeChat API ------------------------------------------------------------------

FAKE_SECRET = "test-app-secret"


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


def publishing_app(tmp_path, fake, **overrides):
    """An app (a web worker or the scheduler) that publishes through the fake API."""
    settings = {
        "WECHAT_APP_SECRET": FAKE_SECRET,
        "WECHAT_API_BASE": fake.base,
        "WECHAT_API_TIMEOUT": 2,
        **overrides,
    }
    return make_app(tmp_path, **settings)


def fresh_database(env: dict[str, str]) -> None:
    """An empty database at PUFA_DATABASE_URL, upgraded by Alembic as operators do."""
    from sqlalchemy import create_engine, text

    engine = create_engine(
        env["PUFA_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://")
    )
    with engine.begin() as conn:
        for table in (
            "apscheduler_jobs",
            "deliveries",
            "post_events",
            "posts",
            "api_tokens",
            "exchanges",
            "conversations",
            "heartbeats",
            "alembic_version",
        ):
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()
    assert flask_cli(env, "db", "upgrade").returncode == 0
