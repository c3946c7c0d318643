"""Posts published on their dates, to their audiences, exactly once (a controllable clock)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot import posts
from bot.extensions import db
from bot.models import Delivery, Post
from bot.posts import publishing, workflow
from tests.factories import publishing_app

T0 = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)  # 09:00 Beijing time, 国家宪法日


def queue(app, *, audiences=("全体",), send_at=T0, kind="text", title="宪法日普法", **extra) -> int:
    with app.app_context():
        post = posts.create(
            actor="张三",
            title=title,
            body="宪法规定：公民在法律面前一律平等。",
            audiences=list(audiences),
            kind=kind,
            send_at=send_at,
            now=send_at - timedelta(days=3),
            **extra,
        )
        posts.act(post.id, "submit", actor="张三")
        posts.act(post.id, "approve", actor="李四", now=send_at - timedelta(days=1))
        return post.id


def tick(app, at: datetime, worker: str = "scheduler-1") -> posts.TickReport:
    with app.app_context():
        return posts.publish_due(now=at, worker=worker)


def state(app, post_id: int) -> tuple[str, str | None]:
    with app.app_context():
        post = db.session.get(Post, post_id)
        return post.state, post.last_error


def sendall_calls(fake) -> list[dict]:
    return [c for c in fake.calls if c["endpoint"] == "message/mass/sendall"]


@pytest.fixture
def app(tmp_path, fake_api):
    return publishing_app(tmp_path, fake_api)


def test_a_post_is_published_once_at_its_time(app, fake_api):
    post_id = queue(app, audiences=["全体", "学生家长"])
    assert tick(app, T0 - timedelta(minutes=1)).started == []
    assert sendall_calls(fake_api) == []
    report = tick(app, T0)
    assert report.started == [post_id] and len(report.submitted) == 2
    for later in range(1, 5):
        tick(app, T0 + timedelta(minutes=later))
    calls = sendall_calls(fake_api)
    assert len(calls) == 2
    filters = sorted(str(c["json"]["filter"]) for c in calls)
    assert filters == sorted([str({"is_to_all": True}), str({"is_to_all": False, "tag_id": 100})])
    assert (
        calls[0]["json"]["text"]["content"]
        == "【宪法日普法】\n\n宪法规定：公民在法律面前一律平等。"
    )
    assert state(app, post_id) == ("published", None)


def test_every_change_is_recorded_with_who_and_when(app):
    post_id = queue(app)
    tick(app, T0)
    with app.app_context():
        events = [(e.actor, e.action, e.to_state) for e in posts.history(post_id)]
    assert events[:3] == [
        ("张三", "create", "draft"),
        ("张三", "submit", "awaiting_approval"),
        ("李四", "approve", "scheduled"),
    ]
    assert ("scheduler", "published", "published") in events


def test_a_post_on_a_key_date_goes_out_on_that_date(app):
    with app.app_context():
        post = posts.create(
            actor="张三",
            title="宪法日",
            body="正文",
            audiences=["全体"],
            on="constitution-day",
            at="09:00",
            now=datetime(2026, 11, 25, tzinfo=UTC),
        )
        assert posts.local(post.send_at) == "2026-12-04 09:00"
        fire = posts.create(
            actor="张三",
            title="防火",
            body="正文",
            audiences=["农户"],
            on="forest-fire-season",
            at="08:30",
            now=datetime(2026, 11, 25, tzinfo=UTC),
        )
        assert posts.local(fire.send_at) == "2026-12-01 08:30"


def test_staff_may_write_the_hour_in_chinese_and_a_wrong_one_is_a_clear_error(app):
    def on_constitution_day(at: str):
        return posts.create(
            actor="张三",
            title="宪法日",
            body="正文",
            audiences=["全体"],
            on="constitution-day",
            at=at,
            now=datetime(2026, 11, 25, tzinfo=UTC),
        )

    with app.app_context():
        assert posts.local(on_constitution_day("9点半").send_at) == "2026-12-04 09:30"
        for bad in ("九点钟", "25:00", "明早"):
            with pytest.raises(posts.PostError, match="时刻格式不对"):
                on_constitution_day(bad)


def test_two_scheduler_processes_never_send_twice(tmp_path, fake_api):
    schedulers = [publishing_app(tmp_path, fake_api) for _ in range(2)]
    ids = [
        queue(schedulers[0], audiences=["全体", "农户", "企业"], title=f"第{i}篇") for i in range(4)
    ]
    barrier = threading.Barrier(2)

    def run(app, name):
        barrier.wait()
        for minute in range(3):
            tick(app, T0 + timedelta(minutes=minute), worker=name)

    threads = [threading.Thread(target=run, args=(a, f"s{i}")) for i, a in enumerate(schedulers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = sendall_calls(fake_api)
    keys = [c["json"]["clientmsgid"] for c in calls]
    assert len(keys) == len(set(keys)) == 12  # 4 posts × 3 audiences, each sent once
    assert all(state(schedulers[0], i)[0] == "published" for i in ids)


def test_a_crash_between_send_and_commit_does_not_send_again(app, fake_api, monkeypatch):
    post_id = queue(app)
    real = publishing.record_sent

    def crash(*args, **kwargs):
        raise SystemExit("scheduler killed after WeChat accepted the send")

    monkeypatch.setattr(publishing, "record_sent", crash)
    with pytest.raises(SystemExit):
        tick(app, T0)
    monkeypatch.setattr(publishing, "record_sent", real)
    assert tick(app, T0 + timedelta(minutes=1)).submitted == []  # the claim is still fresh
    report = tick(app, T0 + timedelta(minutes=5))  # the claim is stale: a restart takes it over
    assert len(report.duplicates_refused) == 1
    assert len(fake_api.sends) == 1  # WeChat sent it once (the retry got 45065)
    with app.app_context():
        delivery = db.session.scalar(select(Delivery))
        assert delivery.msg_id == str(next(iter(fake_api.sends.values()))["msg_id"])
    assert state(app, post_id)[0] == "published"


@pytest.mark.parametrize("fault", [{"errcode": -1}, {"status": 502}, {"delay": 3.0}])
def test_transient_api_errors_are_retried_with_backoff(app, fake_api, fault):
    post_id = queue(app)
    fake_api.faults.append({"endpoint": "message/mass/sendall", "times": 2, **fault})
    first = tick(app, T0)
    assert first.retried and not first.submitted
    assert tick(app, T0 + timedelta(seconds=30)).retried == []  # backoff: not yet
    tick(app, T0 + timedelta(minutes=3))
    report = tick(app, T0 + timedelta(minutes=10))
    # A timed-out call may still have been carried out by WeChat: the retry is then
    # refused as a duplicate (45065) and the first msg_id recorded. Either way: sent once.
    assert len(report.submitted) + len(report.duplicates_refused) == 1
    assert state(app, post_id)[0] == "published"
    assert len(fake_api.sends) == 1


@pytest.mark.parametrize(
    ("errcode", "reason"),
    [
        (45009, "接口调用次数已用完"),
        (48001, "没有这个接口的权限"),
        (40003, "收件人标识无效"),
        (45028, "群发次数已用完"),
    ],
)
def test_permanent_errors_stop_the_post_with_a_reason_staff_can_read(
    app, fake_api, errcode, reason
):
    post_id = queue(app)
    fake_api.faults.append({"endpoint": "message/mass/sendall", "errcode": errcode, "times": 5})
    report = tick(app, T0)
    assert report.failed and not report.retried
    for minute in (5, 60, 600):
        tick(app, T0 + timedelta(minutes=minute))
    assert len(sendall_calls(fake_api)) == 1  # never retried blindly
    post_state, error = state(app, post_id)
    assert post_state == "failed" and reason in error


def test_an_audience_without_a_wechat_tag_fails_with_its_name(app):
    post_id = queue(app, audiences=["养蜂户"])
    tick(app, T0)
    post_state, error = state(app, post_id)
    assert post_state == "failed" and "养蜂户" in error


def test_a_post_missed_while_the_scheduler_was_down_is_sent_late_within_the_grace(app, fake_api):
    post_id = queue(app)
    report = tick(app, T0 + timedelta(hours=2))
    assert report.started == [post_id] and len(fake_api.sends) == 1
    with app.app_context():
        assert any("晚了" in (e.detail or "") for e in posts.history(post_id))


def test_a_post_missed_beyond_the_grace_is_flagged_not_sent(app, fake_api):
    post_id = queue(app)
    report = tick(app, T0 + timedelta(hours=8))
    assert report.missed == [post_id] and fake_api.sends == {}
    post_state, error = state(app, post_id)
    assert post_state == "missed" and "重新安排" in error


def test_an_article_is_made_a_draft_then_mass_sent(app, fake_api):
    queue(app, kind="article", cover_media_id="thumb-1", digest="宪法日", author="普法办")
    tick(app, T0)
    [draft] = fake_api.drafts.values()
    assert draft["articles"][0]["title"] == "宪法日普法"
    assert "<p>宪法规定" in draft["articles"][0]["content"]
    [call] = sendall_calls(fake_api)
    assert call["json"]["msgtype"] == "mpnews"
    assert call["json"]["mpnews"]["media_id"] in fake_api.drafts


def test_with_mass_send_protection_the_post_waits_and_an_unconfirmed_send_is_not_retried(
    tmp_path, fake_api
):
    app = publishing_app(tmp_path, fake_api, WECHAT_MASS_SEND_PROTECTION=True)
    post_id = queue(app)
    tick(app, T0)
    tick(app, T0 + timedelta(minutes=1))
    assert state(app, post_id)[0] == "awaiting_confirmation"
    tick(app, T0 + timedelta(minutes=31))
    post_state, error = state(app, post_id)
    assert post_state == "failed" and "30分钟内确认" in error
    tick(app, T0 + timedelta(minutes=45))
    assert len(sendall_calls(fake_api)) == 1


def test_the_job_finish_callback_records_counts_on_the_post(app, client, fake_api, plain_wechat):
    post_id = queue(app)
    tick(app, T0)
    msg_id = next(iter(fake_api.sends.values()))["msg_id"]
    body = (
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event>"
        f"<MsgID>{msg_id}</MsgID><Status><![CDATA[send success]]></Status>"
        f"<TotalCount>120</TotalCount><FilterCount>118</FilterCount>"
        f"<SentCount>117</SentCount><ErrorCount>1</ErrorCount>"
    )
    xml = plain_wechat.sim._xml(body, None)
    response = app.test_client().post(**plain_wechat.post_kwargs(xml))
    assert response.get_data(as_text=True) == "success"
    with app.app_context():
        delivery = db.session.scalar(select(Delivery))
        assert delivery.state == "finished" and delivery.report["SentCount"] == "117"
        assert any("送达 117 人" in (e.detail or "") for e in posts.history(post_id))


def test_staff_are_warned_when_a_plan_exceeds_the_daily_quota(app):
    queue(app, title="第一篇")
    with app.app_context():
        second = posts.create(
            actor="张三",
            title="第二篇",
            body="正文",
            audiences=["农户"],
            send_at=T0 + timedelta(hours=3),
            now=T0 - timedelta(days=1),
        )
        assert "每天只能群发 1 次" in posts.quota_warnings(second)[0]


def test_a_post_can_only_move_along_its_workflow(app):
    post_id = queue(app)
    with app.app_context(), pytest.raises(posts.PostError, match="不能审核通过"):
        posts.act(post_id, "approve", actor="李四")
    tick(app, T0)
    with app.app_context(), pytest.raises(posts.PostError, match="不能取消"):
        posts.act(post_id, "cancel", actor="张三")


def test_nobody_approves_a_post_they_wrote_or_submitted(app):
    with app.app_context():
        post = posts.create(
            actor="张三", title="宪法日", body="正文", audiences=["全体"], send_at=T0, now=T0
        )
        posts.act(post.id, "submit", actor="王五")  # a colleague submits 张三's draft
        for writer in ("张三", "王五"):
            with pytest.raises(posts.PostError, match="另一位同事审核"):
                posts.act(post.id, "approve", actor=writer, now=T0)
        assert posts.act(post.id, "approve", actor="李四", now=T0).state == "scheduled"


def test_a_post_whose_time_has_passed_cannot_be_approved(app):
    with app.app_context():
        post = posts.create(
            actor="张三",
            title="过期",
            body="正文",
            audiences=["全体"],
            send_at=T0,
            now=T0 - timedelta(days=1),
        )
        posts.act(post.id, "submit", actor="张三")
        with pytest.raises(posts.PostError, match="已经过去"):
            posts.act(post.id, "approve", actor="李四", now=T0 + timedelta(days=1))


def test_a_cancelled_post_is_never_sent(app, fake_api):
    post_id = queue(app)
    with app.app_context():
        posts.act(post_id, "cancel", actor="张三")
    tick(app, T0)
    assert fake_api.sends == {}


def test_a_publish_report_pufa_did_not_ask_for_is_acknowledged_and_logged(
    app, plain_wechat, caplog
):
    body = (
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event>"
        "<PublishEventInfo><publish_id>2247483999</publish_id><publish_status>0</publish_status>"
        "</PublishEventInfo>"
    )
    response = app.test_client().post(**plain_wechat.post_kwargs(plain_wechat.sim._xml(body, None)))
    assert response.status_code == 200 and response.get_data(as_text=True) == "success"
    assert "unknown msg_id 2247483999" in caplog.text


def test_a_failure_while_recording_a_failure_leaves_the_post_to_be_retried(
    app, fake_api, monkeypatch
):
    """The delivery and its post fail in one transaction: a crash between the two writes
    never leaves a failed delivery under a post that stays "publishing" for ever."""
    post_id = queue(app)
    fake_api.faults.append({"endpoint": "message/mass/sendall", "errcode": 48001, "times": 5})
    real_event = workflow._event

    def crash_on_failure(post, actor, action, *args):
        if action == "failed":
            raise RuntimeError("the process died here")
        return real_event(post, actor, action, *args)

    monkeypatch.setattr(workflow, "_event", crash_on_failure)
    with pytest.raises(RuntimeError):
        tick(app, T0)
    with app.app_context():
        db.session.rollback()
        deliveries = db.session.scalars(select(Delivery).where(Delivery.post_id == post_id))
        assert [d.state for d in deliveries] == ["sending"]  # claimed; not marked failed alone
    assert state(app, post_id)[0] == "publishing"
    monkeypatch.setattr(workflow, "_event", real_event)
    tick(app, T0 + timedelta(minutes=30))  # the stale claim is taken again
    assert state(app, post_id)[0] == "failed"


def test_a_subscription_account_gets_one_mass_send_a_day_and_staff_read_why(app, fake_api):
    fake_api.account_type = "subscription"  # as WeChat treats 订阅号 (shared/WECHAT.md W10)
    post_id = queue(app, audiences=["农户", "企业"], title="防火")
    tick(app, T0)
    post_state, error = state(app, post_id)
    assert len(fake_api.sends) == 1 and len(fake_api.refused) == 1
    assert post_state == "failed" and "订阅号每天只能群发一次" in error


def test_the_stand_in_shows_what_was_sent_as_a_page_people_read(fake_api):
    from bot.wechat.fakeapi import create_fake_api

    fake_api.account_type = "subscription"
    client = create_fake_api(fake_api).test_client()
    token = client.get(f"/cgi-bin/token?appid={fake_api.appid}&secret={fake_api.secret}")
    auth = {"access_token": token.get_json()["access_token"]}
    for content in ("<script>alert(1)</script>防诈骗", "第二条"):
        client.post(
            "/cgi-bin/message/mass/sendall",
            query_string=auth,
            json={"filter": {"is_to_all": True}, "msgtype": "text", "text": {"content": content}},
        )
    page = client.get("/_fake/calls", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;防诈骗" in page and "<script>" not in page
    assert "已提交群发" in page and "被拒绝：今天已群发过" in page
    assert client.get("/_fake/calls").is_json  # scripts still get JSON


def test_a_text_post_reaches_residents_as_clean_text_with_its_title(app, fake_api):
    body = "**12月4日**是国家宪法日。\n\n- 宪法是根本法\n- 人人平等\n\n详见[人大网](http://www.npc.gov.cn)。"
    with app.app_context():
        post = posts.create(
            actor="张三",
            title="宪法日",
            body=body,
            audiences=["全体"],
            send_at=T0,
            now=T0 - timedelta(days=3),
        )
        posts.act(post.id, "submit", actor="张三")
        posts.act(post.id, "approve", actor="李四", now=T0 - timedelta(days=1))
    tick(app, T0)
    [call] = sendall_calls(fake_api)
    assert call["json"]["text"]["content"] == (
        "【宪法日】\n\n12月4日是国家宪法日。\n\n• 宪法是根本法\n• 人人平等\n\n"
        "详见人大网（http://www.npc.gov.cn）。"
    )  # no **, no "- ", no [](): what a chat shows
