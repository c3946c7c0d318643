"""What tests build: apps, content copies, the WeChat helper, an outage, the fake API's app.

Plain functions and classes, imported by test files and by conftest.py's fixtures. (Test
files used to import them from conftest.py, which pytest also loads under its own name: two
copies of the module, and the clean-up fixtures of one never saw the apps of the other.)
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from bot import create_app, journal
from bot.extensions import db
from bot.wechat.simulator import Simulator
from tests.helpers import APPS, MODULE_APPS

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CONTENT = Path(__file__).parent / "fixtures" / "content"
REAL_CONTENT = ROOT / "content"
TOKEN = "test-token-不重要"
APP_ID = "wx0123456789abcdef"
# Fixed, so that every test signs and encrypts with the same key.
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
    shipped = Path(content) in (FIXTURE_CONTENT, REAL_CONTENT)
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_AES_KEY": AES_KEY,
        "DATABASE_URL": database_url(tmp_path),
        # the console writes advisers' changes into the content files: never the repo's own
        "CONTENT_DIR": str(writable_content(tmp_path, Path(content)) if shipped else content),
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
    app.test_client_class = SettledClient
    with app.app_context():
        db.drop_all()
        db.create_all()
    (MODULE_APPS if module_scoped else APPS).append(app)
    return app


class SettledClient(FlaskClient):
    """Each request returns once the journal's writer has written what the request spooled
    (write-behind): what an adviser sees a moment later is what the test then reads."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        if self.application.config["JOURNAL_WRITE_BEHIND"]:
            with self.application.app_context():
                journal.flush()
        return response


def close_app(app) -> None:
    """Close an app's connections and threads; a later use opens new ones."""
    app.extensions["pufa.storage"].close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class WeChat:
    """Test helper around the simulator: `client.post(**wechat.text("..."))`."""

    def __init__(self, sim: Simulator, path: str = "/wechat"):
        self.sim, self.path = sim, path

    def __getattr__(self, name):
        return getattr(self.sim, name)

    def post_kwargs(self, xml: str) -> dict:
        args, body = self.sim.request(xml)
        return {"path": self.path, "query_string": args, "data": body, "content_type": "text/xml"}

    def text_message(self, content: str, **kw) -> dict:
        return self.post_kwargs(self.sim.text(content, **kw))

    def ask(self, client, content: str, **kw) -> str:
        response = client.post(**self.text_message(content, **kw))
        assert response.status_code == 200, response.get_data(as_text=True)
        return self.sim.reply_text(response.get_data())


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


def writable_content(tmp_path: Path, source: Path) -> Path:
    """A copy of a base shipped in the repository, once per test directory (apps made in one
    directory are workers of one deployment and share it); the shipped vectors are linked."""
    target = tmp_path / ("content-real" if source == REAL_CONTENT else "content-fixture")
    if not target.exists():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("embeddings"))
        if (source / "embeddings").exists():
            (target / "embeddings").symlink_to(source / "embeddings", target_is_directory=True)
    return target


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


FAKE_SECRET = "test-app-secret"


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
    cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""
    with engine.begin() as conn:
        for table in (
            "apscheduler_jobs",
            "audit_events",
            "memberships",
            "users",
            "reviews",
            "corrections",
            "help_requests",
            "snippet_signoffs",
            "deliveries",
            "post_events",
            "posts",
            "api_tokens",
            "exchanges",
            "conversations",
            "heartbeats",
            "accounts",
            "alembic_version",
        ):
            conn.execute(text(f"DROP TABLE IF EXISTS {table}{cascade}"))
    engine.dispose()
    assert flask_cli(env, "db", "upgrade").returncode == 0


# -- the console ----------------------------------------------------------------------------

CONSOLE_PASSWORD = "correct-horse-电池-staple"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def make_user(app, username: str, role: str, *, account_id: int = 1, name: str | None = None):
    """A console user with one role in one account (password CONSOLE_PASSWORD)."""
    from bot import users

    with app.app_context():
        return users.create(
            username=username,
            display_name=name or username,
            password=CONSOLE_PASSWORD,
            role=role,
            account_id=account_id,
            actor="tests",
        ).id


def csrf_token(client, path: str = "/console/login") -> str:
    """The CSRF token a page's forms carry (the session's, so any console page will do)."""
    match = _CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, username: str, password: str = CONSOLE_PASSWORD):
    """Sign in through the login form, as a person would; returns the response."""
    token = csrf_token(client)
    return client.post(
        "/console/login", data={"username": username, "password": password, "csrf_token": token}
    )


def console_post(client, path: str, data: dict | None = None, *, page: str = "/console/"):
    """POST a console form with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, page)})


# -- a real browser (Debian's chromium, driven by Playwright) -------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NO_CHROMIUM = not Path(CHROMIUM).exists() and not os.environ.get("CI")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright):
    """Debian's chromium, headless, quiet (Playwright never downloads a browser here)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
