"""What staff and operators run: ask, migrations, configuration checks, the demo page."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from bot import create_app
from bot.config import ConfigError
from tests.conftest import ROOT, flask_cli


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
        ({"SECRET_KEY": "s3cret"}, "PUFA_WECHAT_TOKEN"),
        ({"SECRET_KEY": "s3cret", "WECHAT_TOKEN": "t"}, "PUFA_WECHAT_APP_ID"),
        (
            {"SECRET_KEY": "s3cret", "WECHAT_TOKEN": "t", "WECHAT_APP_ID": "wx1"},
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


def test_production_hides_the_demo_page(tmp_path):
    app = create_app(
        {
            "ENV": "production",
            "SECRET_KEY": "s",
            "WECHAT_TOKEN": "t",
            "WECHAT_APP_ID": "wx1",
            "JUSTICE_OFFICE_PHONE": "1",
            "DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
        }
    )
    assert app.test_client().get("/demo/").status_code == 404


def test_configuration_comes_from_pufa_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("PUFA_JUSTICE_OFFICE_NAME", "青山镇司法所")
    monkeypatch.setenv("PUFA_JUSTICE_OFFICE_PHONE", "12348")  # a number, kept as text
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/p.db"})
    assert app.config["JUSTICE_OFFICE_NAME"] == "青山镇司法所"
    assert app.config["JUSTICE_OFFICE_PHONE"] == "12348"


def test_the_demo_page_sends_through_the_signed_webhook(app, client):
    page = client.get("/demo/")
    assert page.status_code == 200 and "普法小助手" in page.get_data(as_text=True)
    reply = client.post("/demo/send", json={"text": "老板拖欠工资咋个整"}).get_json()["reply"]
    assert "《中华人民共和国劳动法》第五十条" in reply
    welcome = client.post("/demo/send", json={"event": "subscribe"}).get_json()["reply"]
    assert "欢迎关注" in welcome


def test_the_demo_page_never_renders_a_residents_text_as_html(client):
    source = (ROOT / "bot" / "demo" / "templates" / "demo" / "chat.html").read_text(
        encoding="utf-8"
    )
    assert "innerHTML" not in source and "textContent" in source
    reply = client.post("/demo/send", json={"text": "<script>alert(1)</script>工资"}).get_json()
    assert reply is not None
