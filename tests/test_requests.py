"""Residents ask for a person in the chat; staff follow the request up in the console.

Residents talk through the signed webhook; staff sign in and post the console's forms.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from bot import accounts
from bot import requests as help_requests
from bot.extensions import db
from bot.models import AuditEvent, Exchange, HelpRequest
from tests.factories import console_post, login, make_app, make_user, publishing_app

RESIDENT = "o-resident-help-01"


def ask(client, wechat, *messages: str, openid: str = RESIDENT) -> list[str]:
    return [wechat.ask(client, m, openid=openid) for m in messages]


def requests_in(app) -> list[HelpRequest]:
    with app.app_context():
        rows = db.session.scalars(select(HelpRequest).order_by(HelpRequest.id)).all()
        db.session.expunge_all()
        return rows


def mediation_request(client, wechat, about="隔壁占了我家的宅基地，说了不听", phone="13812345678"):
    return ask(client, wechat, "我要调解", about, "大寨村", phone)


# -- in the chat -----------------------------------------------------------------------------


def test_a_mediation_request_is_three_questions_then_stored(app, client, plain_wechat):
    start, village_q, phone_q, done = ask(
        client,
        plain_wechat,
        "我要调解",
        "隔壁张三占了我家宅基地，他电话13912345678也不接",
        "大寨村",
        "我的电话 138 1234 5678",
    )
    assert "人民调解" in start and "①" in start and "取消" in start
    assert "②" in village_q and "村" in village_q
    assert "③" in phone_q and "不留" in phone_q
    assert "测试镇司法所" in done and "0871-00000000" in done  # the office's line
    assert "工作日" in done and "12348" in done and "110" in done
    assert "138****5678" in done and "13812345678" not in done
    assert not done.startswith(("🚨", "⚠️"))  # a phone number is no sign of danger
    [row] = requests_in(app)
    assert row.kind == "mediation" and row.status == "new" and row.account_id == 1
    assert row.about == "隔壁张三占了我家宅基地，他电话139****5678也不接"  # masked
    assert row.village == "大寨村"
    assert row.phone == "13812345678"  # in full: staff call back
    assert row.openid_hash and row.openid_hash != RESIDENT
    with app.app_context():  # nor does the Q&A log keep the number
        logged = db.session.scalars(select(Exchange.question)).all()
    assert not any("13812345678" in q or "13912345678" in q for q in logged)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("人工", "person"),
        ("转人工", "person"),
        ("找人", "person"),
        ("调解", "mediation"),
        ("我想申请调解吧", "mediation"),
        ("法律援助", "legal_aid"),
        ("申请法律援助！", "legal_aid"),
    ],
)
def test_the_ways_of_asking_for_a_person_start_a_request(app, client, plain_wechat, message, kind):
    ask(client, plain_wechat, message, "工钱被拖欠了", "小寨村", "不留")
    [row] = requests_in(app)
    assert row.kind == kind and row.phone is None


def test_asking_for_a_person_still_says_how_to_reach_one_now(client, plain_wechat):
    [reply] = ask(client, plain_wechat, "人工")
    assert "测试镇司法所" in reply and "12348" in reply and "法律援助" in reply
    assert "①" in reply


def test_a_question_about_mediation_is_answered_not_taken_as_a_request(app, client, plain_wechat):
    [reply] = ask(client, plain_wechat, "调解不成怎么办")
    assert "①" not in reply
    assert requests_in(app) == []


def test_cancel_ends_the_request_and_nothing_is_stored(app, client, plain_wechat):
    *_, cancelled, after = ask(client, plain_wechat, "法律援助", "老板欠钱不给", "取消", "大寨村")
    assert "取消" in cancelled and "测试镇司法所" in cancelled
    assert "③" not in after  # no longer in a request: answered as a message
    assert requests_in(app) == []


def test_a_request_left_half_way_lapses(app, client, plain_wechat, monkeypatch):
    ask(client, plain_wechat, "我要调解", "邻居的牛吃了我家的苞谷")
    monkeypatch.setattr(help_requests, "EXPIRE_SECONDS", -1)
    [reply] = ask(client, plain_wechat, "大寨村")
    assert "③" not in reply
    assert requests_in(app) == []


def test_an_emergency_in_a_request_gets_the_numbers_first(app, client, plain_wechat):
    *_, alarm, phone_q, done = ask(
        client, plain_wechat, "我要调解", "和邻居争地界", "他拿刀要砍人了", "大寨村", "不留"
    )
    assert alarm.startswith("🚨") and "110" in alarm.splitlines()[0]
    assert "刚才的求助先放一放" in alarm and "②" in alarm  # the village is still asked
    assert "③" in phone_q and "记下了" in done
    [row] = requests_in(app)
    assert row.village == "大寨村" and row.about == "和邻居争地界"


def test_an_emergency_told_as_what_it_is_about_is_kept_as_that(app, client, plain_wechat):
    _, alarm, phone_q, _ = ask(
        client, plain_wechat, "人工", "他拿刀要砍人了", "大寨村", "0871 6234 5678"
    )
    assert alarm.startswith("🚨") and "110" in alarm.splitlines()[0]
    assert "③" in phone_q
    [row] = requests_in(app)
    assert row.about == "他拿刀要砍人了" and row.phone == "0871-62345678"


def test_a_number_not_understood_is_asked_for_again_once(app, client, plain_wechat):
    *_, again, done = ask(client, plain_wechat, "我要调解", "地界", "大寨村", "好的", "12345")
    assert "号码好像不太对" in again
    assert "没有留电话" in done
    [row] = requests_in(app)
    assert row.phone is None


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("幺三八一二三四五六七八", "13812345678"),
        ("电话是0871-62345678，白天打", "0871-62345678"),
        ("010 62345678", "010-62345678"),
        ("6234567", "6234567"),
        ("12345", None),
        ("好的", None),
        ("0000000000", None),
    ],
)
def test_phone_numbers_are_read_loosely(typed, kept):
    assert help_requests.phone_number(typed) == kept


# -- in the console --------------------------------------------------------------------------


@pytest.fixture
def staff(app, client):
    make_user(app, "zhangsan", "staff", name="张三")
    login(client, "zhangsan")
    return client


def test_staff_see_the_request_with_the_phone_masked_and_reveal_it(
    app, client, plain_wechat, staff
):
    mediation_request(client, plain_wechat)
    [row] = requests_in(app)
    listing = staff.get("/console/requests?status=new").get_data(as_text=True)
    assert "大寨村" in listing and "调解" in listing and "宅基地" in listing
    assert "138****5678" in listing and "13812345678" not in listing
    detail = staff.get(f"/console/requests/{row.id}").get_data(as_text=True)
    assert "138****5678" in detail and "13812345678" not in detail and "查看完整电话" in detail
    shown = console_post(staff, f"/console/requests/{row.id}/phone")
    assert shown.status_code == 200 and "13812345678" in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "request.phone"))
        assert event.target == f"help_request:{row.id}" and "zhangsan" in event.actor
        assert event.account_id == 1 and event.at is not None
    assert "13812345678" not in staff.get(f"/console/requests/{row.id}").get_data(as_text=True)


def test_staff_move_a_request_on_with_a_note_and_the_resident_hears_once(
    app, client, plain_wechat, staff
):
    mediation_request(client, plain_wechat)
    [row] = requests_in(app)
    response = console_post(
        staff,
        f"/console/requests/{row.id}/status",
        {"status": "contacted", "note": "已电话联系，周三到村委会调解"},
    )
    assert response.status_code == 302
    [row] = requests_in(app)
    assert row.status == "contacted"
    [note] = row.notes
    assert note["status"] == "contacted" and note["note"] == "已电话联系，周三到村委会调解"
    assert "zhangsan" in note["by"] and note["at"]
    detail = staff.get(f"/console/requests/{row.id}").get_data(as_text=True)
    assert "周三到村委会调解" in detail and "已联系" in detail
    assert "大寨村" in staff.get("/console/requests?status=contacted").get_data(as_text=True)
    assert "大寨村" not in staff.get("/console/requests?status=new").get_data(as_text=True)

    first, second = ask(client, plain_wechat, "你好", "你好")
    assert first.splitlines()[0] == "您的求助（调解）已有进展：已联系"
    assert "普法小助手" in first  # the reply itself follows
    assert "已有进展" not in second
    assert requests_in(app)[0].notified_status == "contacted"


def test_news_reaches_the_resident_through_another_worker_and_others_cost_no_query(
    tmp_path, plain_wechat
):
    """Each worker learns who has news at most every REQUEST_NEWS_CHECK_SECONDS; a message
    from anyone else asks the database nothing about requests."""
    from sqlalchemy import event

    console_app = make_app(tmp_path)
    resident_app = make_app(tmp_path, REQUEST_NEWS_CHECK_SECONDS=0.2)  # same database
    client = resident_app.test_client()
    mediation_request(client, plain_wechat)
    make_user(console_app, "zhangsan", "staff", name="张三")
    staff = console_app.test_client()
    login(staff, "zhangsan")
    [row] = requests_in(console_app)
    console_post(staff, f"/console/requests/{row.id}/status", {"status": "contacted", "note": ""})

    asked: list[str] = []
    with resident_app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, *args):
        if "help_requests" in statement:
            asked.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        time.sleep(0.25)
        [other] = ask(client, plain_wechat, "你好", openid="o-someone-else")
        assert "已有进展" not in other
        checks = len(asked)  # the worker looked once who has news, and no more
        ask(client, plain_wechat, "谢谢", "你好", openid="o-someone-else")
        assert len(asked) == checks <= 1
        [told] = ask(client, plain_wechat, "你好")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert told.splitlines()[0] == "您的求助（调解）已有进展：已联系"


def test_the_news_waits_until_after_an_emergency(app, client, plain_wechat, staff):
    mediation_request(client, plain_wechat)
    [row] = requests_in(app)
    console_post(staff, f"/console/requests/{row.id}/status", {"status": "closed", "note": ""})
    alarm, later = ask(client, plain_wechat, "他拿刀要砍人了", "谢谢")
    assert alarm.startswith("🚨") and "已有进展" not in alarm
    assert later.splitlines()[0] == "您的求助（调解）已有进展：已办结"
    [row] = requests_in(app)
    assert row.notified_status == "closed" and row.openid_hash is None  # unlinked once told


def test_a_status_can_only_move_forward(app, client, plain_wechat, staff):
    mediation_request(client, plain_wechat)
    [row] = requests_in(app)
    console_post(staff, f"/console/requests/{row.id}/status", {"status": "mediated"})
    assert requests_in(app)[0].status == "new"
    console_post(staff, f"/console/requests/{row.id}/status", {"status": "closed"})
    console_post(staff, f"/console/requests/{row.id}/status", {"status": "contacted"})
    assert requests_in(app)[0].status == "closed"


def test_a_viewer_sees_the_list_but_cannot_reveal_or_change(app, client, plain_wechat):
    mediation_request(client, plain_wechat)
    [row] = requests_in(app)
    make_user(app, "lingdao", "viewer")
    login(client, "lingdao")
    assert "138****5678" in client.get("/console/requests").get_data(as_text=True)
    detail = client.get(f"/console/requests/{row.id}").get_data(as_text=True)
    assert "查看完整电话" not in detail and "更新状态" not in detail
    assert console_post(client, f"/console/requests/{row.id}/phone").status_code == 403
    changed = console_post(client, f"/console/requests/{row.id}/status", {"status": "closed"})
    assert changed.status_code == 403
    assert requests_in(app)[0].status == "new"
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count(AuditEvent.id)).where(AuditEvent.action == "request.phone")
            )
            == 0
        )


def test_a_request_of_another_account_is_not_found(app, staff, monkeypatch):
    monkeypatch.setenv("PUFA_B_TOKEN", "token-of-乙镇")
    with app.app_context():
        other = accounts.create(
            slug="yizhen", name="乙镇普法", app_id="wx00000000000000b2", token_env="PUFA_B_TOKEN"
        )
        req = HelpRequest(account_id=other.id, kind="person", about="乙镇的事", phone="13800001111")
        db.session.add(req)
        db.session.commit()
        req_id = req.id
    assert staff.get(f"/console/requests/{req_id}").status_code == 404
    assert console_post(staff, f"/console/requests/{req_id}/phone").status_code == 404
    moved = console_post(staff, f"/console/requests/{req_id}/status", {"status": "closed"})
    assert moved.status_code == 404
    assert "乙镇的事" not in staff.get("/console/requests").get_data(as_text=True)


def test_what_residents_write_is_escaped_in_the_console(app, client, plain_wechat, staff):
    ask(client, plain_wechat, "人工", "<script>alert(1)</script>打人", "<b>大寨村</b>", "不留")
    [row] = requests_in(app)
    for page in ("/console/requests", f"/console/requests/{row.id}"):
        html = staff.get(page).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html and "<b>大寨村</b>" not in html
        assert "&lt;script&gt;" in html and "&lt;b&gt;大寨村&lt;/b&gt;" in html


def test_unsubscribing_unlinks_the_residents_requests(app, client, plain_wechat):
    mediation_request(client, plain_wechat)
    [before] = requests_in(app)
    assert before.openid_hash
    client.post(**plain_wechat.post_kwargs(plain_wechat.sim.event("unsubscribe", openid=RESIDENT)))
    [after] = requests_in(app)
    assert after.openid_hash is None and after.openid is None
    assert after.village == "大寨村" and after.phone == "13812345678"  # the staff's follow-up stays


def test_within_48_hours_the_resident_is_told_at_once_by_a_customer_service_message(
    tmp_path, fake_api, plain_wechat
):
    app = publishing_app(tmp_path, fake_api)
    client = app.test_client()
    mediation_request(client, plain_wechat)
    make_user(app, "zhangsan", "staff")
    login(client, "zhangsan")
    [row] = requests_in(app)
    page = f"/console/requests/{row.id}"
    done = console_post(
        client, f"{page}/status", {"status": "contacted", "note": "已联系"}, page=page
    )
    assert "已通过公众号消息告诉居民" in client.get(done.headers["Location"]).get_data(as_text=True)
    [sent] = fake_api.custom
    assert sent["data"]["touser"] == RESIDENT
    assert sent["data"]["text"]["content"] == "您的求助（调解）已有进展：已联系"
    assert "已有进展" not in plain_wechat.ask(client, "你好", openid=RESIDENT)  # not twice

    fake_api.window_closed.add(RESIDENT)  # 48 hours passed: WeChat refuses (45015)
    closed = console_post(
        client, f"{page}/status", {"status": "closed", "note": "调解成功"}, page=page
    )
    assert "居民下次发消息时会看到" in client.get(closed.headers["Location"]).get_data(as_text=True)
    assert len(fake_api.custom) == 1
    assert plain_wechat.ask(client, "你好", openid=RESIDENT).startswith(
        "您的求助（调解）已有进展：已办结"
    )
    [row] = requests_in(app)
    assert row.openid is None and row.openid_hash is None  # told it is closed: unlinked
