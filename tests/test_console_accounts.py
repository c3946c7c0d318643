"""Administrators at work: a forgotten password reset, the accounts a deployment serves."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot import accounts, users
from bot.extensions import db
from bot.models import Account, AuditEvent, User
from tests.factories import console_post, login, make_app, make_user

NEW = "my-own-password-42"


def signed_in(app, username: str):
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def user_id(app, username: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == username))


# -- a forgotten password --------------------------------------------------------------------


def test_an_admin_resets_a_forgotten_password_and_the_user_must_set_their_own(app):
    make_user(app, "admin", "admin")
    make_user(app, "zhangsan", "staff", name="张三")
    admin, before = signed_in(app, "admin"), signed_in(app, "zhangsan")
    page = "/console/users"
    shown = console_post(admin, f"/console/users/{user_id(app, 'zhangsan')}/reset", page=page)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    temporary = re.search(r'<code class="secret">(\w+)</code>', shown.get_data(as_text=True))[1]
    assert len(temporary) == 12 and not set(temporary) & set("01lIoO")
    assert temporary not in admin.get(page).get_data(as_text=True)  # shown once
    assert "待改密码" in admin.get(page).get_data(as_text=True)

    assert before.get("/console/").status_code == 302  # their sessions ended
    assert login(app.test_client(), "zhangsan").status_code == 200  # the old password fails
    client = app.test_client()
    first = login(client, "zhangsan", temporary)
    assert first.headers["Location"].endswith("/console/password")
    for path in ("/console/", "/console/posts", "/console/reviews"):  # nothing else until then
        assert client.get(path).headers["Location"].endswith("/console/password")
    form = {"current": temporary, "new": temporary, "again": temporary}
    same = console_post(client, "/console/password", form, page="/console/password")
    assert "新密码不能和当前密码一样" in same.get_data(as_text=True)
    form = {"current": temporary, "new": NEW, "again": NEW}
    assert (
        console_post(client, "/console/password", form, page="/console/password").status_code == 302
    )
    assert client.get("/console/").status_code == 200
    assert login(app.test_client(), "zhangsan", temporary).status_code == 200  # used up
    assert login(app.test_client(), "zhangsan", NEW).status_code == 302
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert "user.reset" in actions and temporary not in str(
            db.session.scalars(select(AuditEvent.detail)).all()
        )


def test_a_township_admin_cannot_take_over_someone_who_also_belongs_elsewhere(two_towns):
    app = two_towns
    county = make_user(app, "county", "admin")  # admin of the default account …
    with app.app_context():
        row = db.session.get(User, county)
        users.grant(row, account_id=2, role="admin", actor="tests")  # … and of 乙镇
    make_user(app, "yiadmin", "admin", account_id=2)
    yi_staff = make_user(app, "yistaff", "staff", account_id=2)
    township = signed_in(app, "yiadmin")
    page = "/console/users"
    html = township.get(page).get_data(as_text=True)
    assert "也属于别的账号" in html
    for action in ("reset", "disable"):
        response = console_post(township, f"/console/users/{county}/{action}", page=page)
        assert response.status_code == 403
    assert login(app.test_client(), "county").status_code == 302  # untouched
    # their own staff they do manage; staff manage nobody
    assert console_post(township, f"/console/users/{yi_staff}/reset", page=page).status_code == 200
    staff = app.test_client()
    make_user(app, "lisi", "staff")
    login(staff, "lisi")
    assert (
        console_post(staff, f"/console/users/{county}/reset", page="/console/").status_code == 403
    )


# -- the accounts a deployment serves --------------------------------------------------------


ADD = {
    "slug": "dazhai",
    "name": "大寨镇普法",
    "app_id": "wx00000000000000c3",
    "original_id": "gh_0123456789ab",
    "account_type": "service",
    "encryption": "safe",
    "token_env": "PUFA_DAZHAI_TOKEN",
    "aes_key_env": "PUFA_DAZHAI_AES_KEY",
    "app_secret_env": "",
    "office_name": "大寨镇司法所",
    "office_phone": "0871-6600 1234",
    "office_address": "大寨镇政府一楼",
    "office_hours": "",
    "help_channels": "大寨村人民调解委员会，0871-6600 5678\n镇法律援助工作站",
}


def test_the_operator_adds_a_township_account_and_sees_what_the_server_still_needs(
    tmp_path, monkeypatch
):
    app = make_app(tmp_path)
    make_user(app, "operator", "admin")
    operator = signed_in(app, "operator")
    page = "/console/accounts"
    html = operator.get(page).get_data(as_text=True)
    assert "公众号账号" in html and "部署配置中的账号" in html

    bad = console_post(operator, page, {**ADD, "token_env": "my token"}, page=page)
    assert "不是环境变量名" in bad.get_data(as_text=True)
    added = console_post(operator, page, ADD, page=page)
    assert added.status_code == 302
    edit = operator.get(added.headers["Location"]).get_data(as_text=True)
    assert "/wechat/dazhai" in edit and "PUFA_DAZHAI_TOKEN" in edit and "缺少环境变量" in edit
    assert 'value="0871-6600 1234"' in edit and "大寨村人民调解委员会，0871-6600 5678" in edit
    with app.app_context():
        row = db.session.scalar(select(Account).where(Account.slug == "dazhai"))
        assert row.help_channels == [
            {"name": "大寨村人民调解委员会", "phone": "0871-6600 5678", "address": None},
            {"name": "镇法律援助工作站", "phone": None, "address": None},
        ]
        assert row.app_secret_env is None and row.encryption == "safe"
        assert users.roles_of(user_id(app, "operator"))[row.id] == "admin"  # they run it
    # the secrets set on the server: the account is served with its own office
    monkeypatch.setenv("PUFA_DAZHAI_TOKEN", "token-of-大寨")
    monkeypatch.setenv("PUFA_DAZHAI_AES_KEY", "a" * 43)
    html = operator.get(page).get_data(as_text=True)
    assert "缺少环境变量" not in html
    with app.app_context():
        accounts.forget_cached()
        settings = accounts.by_slug("dazhai")
        assert settings.office.name == "大寨镇司法所" and settings.encryption == "safe"


def test_a_township_admin_keeps_their_office_current_but_not_the_wechat_side(two_towns):
    app = two_towns
    make_user(app, "yiadmin", "admin", account_id=2)
    make_user(app, "yistaff", "staff", account_id=2)
    township = signed_in(app, "yiadmin")
    assert township.get("/console/accounts").status_code == 403  # the operator's page
    page = "/console/accounts/2"
    html = township.get(page).get_data(as_text=True)
    assert "司法所电话" in html and "AppID（wx" not in html and "PUFA_B_TOKEN" not in html
    form = {"name": "乙镇普法", "office_name": "乙镇司法所", "office_phone": "0871-1111 2222",
            "help_channels": "乙镇调解委员会，0871-3333 4444",
            "app_id": "wx99999999999999zz", "token_env": "PUFA_STOLEN"}  # fmt: skip
    assert console_post(township, page, form, page=page).status_code == 302
    with app.app_context():
        row = db.session.get(Account, 2)
        assert (
            row.office_phone == "0871-1111 2222"
            and row.help_channels[0]["name"] == "乙镇调解委员会"
        )
        assert row.app_id == "wx00000000000000b2" and row.token_env == "PUFA_B_TOKEN"
    # nor another account's, nor as staff; the default account is the configuration's
    assert township.get("/console/accounts/1").status_code == 404
    assert signed_in(app, "yistaff").get(page).status_code == 403
    make_user(app, "operator", "admin")
    html = signed_in(app, "operator").get("/console/accounts/1").get_data(as_text=True)
    assert "来自部署配置" in html and '<form method="post" class="stack">' not in html
