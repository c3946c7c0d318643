"""What staff and operators run: ask, migrations, configuration checks, the demo page."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, select

from bot import accounts, create_app
from bot.config import ConfigError
from bot.extensions import db
from bot.models import Exchange
from bot.wechat import qa
from tests.factories import ROOT, flask_cli, make_app


def test_ask_prints_the_reply_a_resident_would_get(runner):
    result = runner.invoke(args=["ask", "老板拖欠工资怎么办"])
    assert result.exit_code == 0
    assert "《中华人民共和国劳动法》第五十条" in result.output
    assert "测试镇司法所" in result.output


def test_ask_with_an_emergency_prints_the_numbers_first(runner):
    result = runner.invoke(args=["ask", "山上着火了"])
    assert result.output.splitlines()[0].startswith("🚨") and "119" in result.output.splitlines()[0]


def test_db_upgrade_creates_the_tables_on_an_empty_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    env = {"PUFA_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    done = flask_cli(env, "db", "upgrade", cwd=tmp_path)  # the installed package, anywhere
    assert done.returncode == 0, done.stderr
    engine = create_engine(url)
    assert {"exchanges", "conversations", "alembic_version"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_the_models_and_the_migrations_agree(tmp_path):
    """`flask db migrate` on an upgraded database would find nothing to add."""
    url = f"sqlite:///{tmp_path / 'check.sqlite3'}"
    env = {"PUFA_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    assert flask_cli(env, "db", "upgrade", cwd=tmp_path).returncode == 0
    done = flask_cli(env, "db", "check", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({}, "PUFA_SECRET_KEY"),
        ({"SECRET_KEY": "s3cret-0123456789ab"}, "PUFA_WECHAT_TOKEN"),
        ({"SECRET_KEY": "s3cret-0123456789ab", "WECHAT_TOKEN": "t"}, "PUFA_WECHAT_APP_ID"),
        (
            {
                "SECRET_KEY": "s3cret-0123456789ab",
                "WECHAT_TOKEN": "t",
                "WECHAT_APP_ID": "wx0123456789abcdef",
            },
            "PUFA_JUSTICE_OFFICE_PHONE",
        ),
    ],
)
def test_production_refuses_to_start_without_its_secrets(tmp_path, settings, missing):
    with pytest.raises(ConfigError, match=missing):
        create_app({"ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path}/p.db", **settings})


def test_a_wrong_length_aes_key_is_refused_at_start(tmp_path):
    with pytest.raises(ConfigError, match="43 characters"):
        create_app({"WECHAT_AES_KEY": "short", "DATABASE_URL": f"sqlite:///{tmp_path}/p.db"})


PRODUCTION = {
    "SECRET_KEY": "s3cret-0123456789ab",
    "WECHAT_TOKEN": "t0ken",
    "WECHAT_APP_ID": "wx0123456789abcdef",
    "JUSTICE_OFFICE_PHONE": "0871-65123456",
}


def example_settings() -> dict:
    """deploy/pufa.cfg.example as an operator who copied it unchanged would run it."""
    namespace: dict = {}
    exec((ROOT / "deploy" / "pufa.cfg.example").read_text(encoding="utf-8"), namespace)
    return {k: v for k, v in namespace.items() if k.isupper() and k != "DATABASE_URL"}


def test_production_refuses_the_example_configuration_unchanged(tmp_path):
    with pytest.raises(ConfigError):
        create_app({**example_settings(), "DATABASE_URL": f"sqlite:///{tmp_path}/p.db"})


@pytest.mark.parametrize(
    "key",
    ["SECRET_KEY", "WECHAT_TOKEN", "WECHAT_APP_ID", "JUSTICE_OFFICE_NAME", "JUSTICE_OFFICE_PHONE"],
)
def test_production_names_each_placeholder_left_from_the_example(tmp_path, key):
    placeholder = example_settings()[key]
    settings = {**PRODUCTION, "ENV": "production", key: placeholder}
    with pytest.raises(ConfigError, match=f"PUFA_{key}"):
        create_app({**settings, "DATABASE_URL": f"sqlite:///{tmp_path}/p.db"})


def test_the_demo_page_is_off_unless_the_demo_is_asked_for(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/p.db"})
    assert app.test_client().get("/demo/").status_code == 404
    assert app.test_client().post("/demo/send", json={"text": "工资"}).status_code == 404


def test_production_hides_the_demo_page_even_when_asked(tmp_path):
    app = create_app(
        {
            "ENV": "production",
            "DEMO_PAGE": True,
            **PRODUCTION,
            "DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
        }
    )
    assert app.test_client().get("/demo/").status_code == 404


def test_configuration_comes_from_pufa_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("PUFA_JUSTICE_OFFICE_NAME", "青山镇司法所")
    monkeypatch.setenv("PUFA_JUSTICE_OFFICE_PHONE", "12348")  # a number, kept as text
    monkeypatch.setenv("PUFA_DATABASE_URL", f"sqlite:///{tmp_path}/p.db")
    app = create_app()
    assert app.config["JUSTICE_OFFICE_NAME"] == "青山镇司法所"
    assert app.config["JUSTICE_OFFICE_PHONE"] == "12348"


def test_a_test_configuration_ignores_the_developers_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("PUFA_JUSTICE_OFFICE_NAME", "开发者自己的司法所")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/p.db"})
    assert app.config["JUSTICE_OFFICE_NAME"] != "开发者自己的司法所"


@pytest.fixture
def demo_client(tmp_path):
    return make_app(tmp_path, DEMO_PAGE=True).test_client()


def test_the_demo_page_sends_through_the_signed_webhook(demo_client):
    client = demo_client
    page = client.get("/demo/")
    assert page.status_code == 200 and "普法小助手" in page.get_data(as_text=True)
    reply = client.post("/demo/send", json={"text": "老板拖欠工资咋个整"}).get_json()["reply"]
    assert "《中华人民共和国劳动法》第五十条" in reply
    welcome = client.post("/demo/send", json={"event": "subscribe"}).get_json()["reply"]
    assert "欢迎关注" in welcome


def test_the_demo_page_never_renders_a_residents_text_as_html(demo_client):
    client = demo_client
    source = (ROOT / "bot" / "demo" / "static" / "chat.js").read_text(encoding="utf-8")
    assert "innerHTML" not in source and "textContent" in source
    page = client.get("/demo/").get_data(as_text=True)
    assert "<script>" not in page and "<style>" not in page  # nothing inline: the CSP holds
    reply = client.post("/demo/send", json={"text": "<script>alert(1)</script>工资"}).get_json()
    assert reply is not None


def test_the_demo_page_cannot_speak_as_a_real_resident(tmp_path, plain_wechat):
    app = make_app(tmp_path, DEMO_PAGE=True)
    client = app.test_client()
    plain_wechat.ask(client, "老板拖欠工资咋个整", openid="o-real-follower")
    client.post("/demo/send", json={"text": "1", "openid": "o-real-follower"})
    client.post("/demo/send", json={"event": "unsubscribe", "openid": "o-real-follower"})
    with app.app_context():
        real = qa.hash_openid("o-real-follower", accounts.default())
        linked = db.session.scalars(select(Exchange).where(Exchange.openid_hash == real)).all()
    assert len(linked) == 1  # the demo neither joined the conversation nor unlinked it


@pytest.mark.parametrize("path", ["/wechat", "/demo/", "/no-such-page"])
def test_every_response_carries_the_security_headers(tmp_path, path):
    client = make_app(tmp_path, DEMO_PAGE=True).test_client()
    response = client.get(path)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
