"""The webhook as WeChat drives it: signed XML in plaintext, compatible and safe mode."""

from __future__ import annotations

import io
import threading

import pytest
from sqlalchemy import func, select

from bot.extensions import db
from bot.models import Exchange
from tests.factories import make_app


def count_exchanges(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Exchange))


def test_get_verification_echoes_echostr(client, plain_wechat):
    args, _ = plain_wechat.request("<xml/>")
    response = client.get("/wechat", query_string={**args, "echostr": "4213"})
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "4213"


def test_get_verification_with_a_bad_signature_is_refused(client, plain_wechat):
    args, _ = plain_wechat.request("<xml/>")
    response = client.get("/wechat", query_string={**args, "signature": "0" * 40, "echostr": "1"})
    assert response.status_code == 403
    assert "1" not in response.get_data(as_text=True).split()


def test_a_wage_question_gets_the_wage_article_quoted_exactly(client, wechat):
    reply = wechat.ask(client, "老板拖欠我三个月工资，咋个整？")
    assert "《中华人民共和国劳动法》第五十条" in reply
    assert "“工资应当以货币形式按月支付给劳动者本人。不得克扣或者无故拖欠劳动者的工资。”" in reply
    assert "测试镇司法所" in reply and "0871-00000000" in reply and "12348" in reply
    assert len(reply.encode()) <= 2048


def test_a_question_the_base_cannot_answer_cites_nothing(client, wechat):
    reply = wechat.ask(client, "我家母猪下崽了明天赶集卖多少钱合适")
    assert "《" not in reply and "第" not in reply
    assert "还没有可靠的答案" in reply
    assert "12348" in reply and "测试镇司法所" in reply


@pytest.mark.parametrize(
    ("message", "number"),
    [
        ("山上着火了，火好大", "12119"),
        ("有人动刀了！", "110"),
        ("孩子不见了找了一下午", "110"),
        ("他又在打我", "110"),
        ("我妈喝农药了", "120"),
    ],
)
def test_emergencies_get_the_numbers_on_the_first_line(client, plain_wechat, message, number):
    reply = plain_wechat.ask(client, message)
    first_line = reply.splitlines()[0]
    assert number in first_line
    assert first_line.startswith("🚨")


def test_a_fire_report_also_gets_the_law_after_the_numbers(client, plain_wechat):
    reply = plain_wechat.ask(client, "山上冒烟了，林子着火了")
    assert reply.index("12119") < reply.index("《森林防火条例》第三十一条")


def test_a_retried_message_is_answered_once_and_logged_once(app, client, wechat):
    message = wechat.text_message("老板拖欠工资怎么办", msg_id=4242)
    first = client.post(**message)
    retry = client.post(**wechat.text_message("老板拖欠工资怎么办", msg_id=4242))
    third = client.post(**wechat.text_message("老板拖欠工资怎么办", msg_id=4242))
    replies = {wechat.reply_text(r.get_data()) for r in (first, retry, third)}
    assert len(replies) == 1 and "第五十条" in replies.pop()
    assert count_exchanges(app) == 1


def test_retries_arriving_together_are_answered_once(app, plain_wechat):
    """Three deliveries of one MsgId at the same moment, as several workers would see them."""
    results: list[str] = []

    def deliver():
        with app.test_client() as c:
            results.append(plain_wechat.ask(c, "工钱被老板克扣了", msg_id=777))

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1 and "第五十条" in results[0]
    assert count_exchanges(app) == 1


def test_two_workers_sharing_the_database_log_a_retry_once(tmp_path, plain_wechat):
    first_worker, second_worker = make_app(tmp_path), None
    second_worker = make_app(tmp_path)  # same database, its own process state
    with second_worker.app_context():
        pass
    reply1 = plain_wechat.ask(first_worker.test_client(), "老板拖欠工资", msg_id=9001)
    reply2 = plain_wechat.ask(second_worker.test_client(), "老板拖欠工资", msg_id=9001)
    assert reply1 == reply2
    assert count_exchanges(first_worker) == 1


def test_two_workers_sharing_redis_answer_a_retry_once(tmp_path, plain_wechat, redis_url):
    workers = [make_app(tmp_path, REDIS_URL=redis_url) for _ in range(2)]
    replies = [plain_wechat.ask(w.test_client(), "工资拖欠半年了", msg_id=9002) for w in workers]
    assert replies[0] == replies[1] and "第五十条" in replies[0]
    assert count_exchanges(workers[0]) == 1


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"signature": "f" * 40}, 403),
        ({"signature": ""}, 403),
        ({"timestamp": "abc"}, 403),
        ({"nonce": ""}, 403),
    ],
)
def test_badly_signed_messages_are_refused_and_not_answered(app, client, wechat, change, status):
    kwargs = wechat.text_message("老板拖欠工资")
    kwargs["query_string"] = {**kwargs["query_string"], **change}
    response = client.post(**kwargs)
    assert response.status_code == status
    assert count_exchanges(app) == 0


def test_a_bad_msg_signature_in_encrypted_modes_is_refused(app, client, encrypted_wechat):
    wechat = encrypted_wechat
    kwargs = wechat.text_message("老板拖欠工资")
    kwargs["query_string"] = {**kwargs["query_string"], "msg_signature": "0" * 40}
    assert client.post(**kwargs).status_code == 403
    assert count_exchanges(app) == 0


def test_a_stale_timestamp_is_refused_as_a_replay(app, client, wechat):
    wechat.sim.clock = lambda: 1_700_000_000  # signed correctly, but long ago
    response = client.post(**wechat.text_message("老板拖欠工资"))
    assert response.status_code == 403
    assert "replay" in response.get_data(as_text=True)
    assert count_exchanges(app) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><ToUserName>broken",
        b"not xml at all",
        b"<other><MsgType>text</MsgType></other>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>',
        b"   ",
    ],
)
def test_malformed_xml_gets_a_clean_400(app, client, plain_wechat, body):
    args, _ = plain_wechat.request("<xml/>")
    response = client.post("/wechat", query_string=args, data=body, content_type="text/xml")
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)
    assert count_exchanges(app) == 0


def test_an_oversized_body_gets_413(client, plain_wechat):
    xml = plain_wechat.sim.text("工资" * 40000)
    kwargs = plain_wechat.post_kwargs(xml)
    assert client.post(**kwargs).status_code == 413


def test_encrypted_garbage_gets_a_clean_4xx(client, encrypted_wechat):
    wechat = encrypted_wechat
    kwargs = wechat.text_message("工资")
    body = kwargs["data"].decode()
    start = body.index("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
    kwargs["data"] = (body[:start] + "QUJD" + body[start + 4 :]).encode()
    response = client.post(**kwargs)
    assert response.status_code in (400, 403)


def test_unknown_message_types_get_success(client, plain_wechat):
    xml = plain_wechat.sim._xml("<MsgType><![CDATA[hologram]]></MsgType><MsgId>5</MsgId>", None)
    response = client.post(**plain_wechat.post_kwargs(xml))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "success"


def test_a_voice_message_is_answered_from_its_recognition(client, wechat):
    response = client.post(**wechat.post_kwargs(wechat.sim.voice("十五岁的娃儿能不能去厂里打工")))
    reply = wechat.reply_text(response.get_data())
    assert "《中华人民共和国劳动法》第十五条" in reply


def test_a_voice_message_without_recognition_asks_for_text(client, plain_wechat):
    response = client.post(**plain_wechat.post_kwargs(plain_wechat.sim.voice(None)))
    assert "没能识别" in plain_wechat.reply_text(response.get_data())


@pytest.mark.parametrize("kind", ["image", "location"])
def test_pictures_and_locations_get_a_polite_request_for_text(client, wechat, kind):
    response = client.post(**wechat.post_kwargs(getattr(wechat.sim, kind)()))
    reply = wechat.reply_text(response.get_data())
    assert "请用文字" in reply


def test_a_new_follower_is_welcomed_with_what_the_bot_does_and_a_human_contact(client, wechat):
    response = client.post(**wechat.post_kwargs(wechat.sim.event("subscribe")))
    reply = wechat.reply_text(response.get_data())
    assert "欢迎关注" in reply and "12348" in reply and "测试镇司法所" in reply
    assert "110" in reply


def test_a_menu_click_opens_its_topic_and_a_number_opens_an_answer(client, plain_wechat):
    response = client.post(
        **plain_wechat.post_kwargs(plain_wechat.sim.event("CLICK", key="TOPIC_WAGES"))
    )
    menu = plain_wechat.reply_text(response.get_data())
    assert "【工资劳动】" in menu and "1." in menu
    reply = plain_wechat.ask(client, "1")
    assert "《中华人民共和国劳动法》第五十条" in reply


def test_a_retried_event_is_answered_once(app, client, plain_wechat):
    xml = plain_wechat.sim.event("subscribe", create_time=1_800_000_000)
    client.post(**plain_wechat.post_kwargs(xml))
    client.post(**plain_wechat.post_kwargs(xml))
    assert count_exchanges(app) == 1


def test_unsubscribing_removes_what_identifies_the_resident(app, client, plain_wechat):
    plain_wechat.ask(client, "老板拖欠工资", openid="o-leaving")
    plain_wechat.ask(client, "老板拖欠工资", openid="o-staying")
    xml = plain_wechat.sim.event("unsubscribe", openid="o-leaving")
    response = client.post(**plain_wechat.post_kwargs(xml))
    assert response.get_data(as_text=True) == "success"
    with app.app_context():
        linked = db.session.scalars(select(Exchange.openid_hash)).all()
    assert len(linked) == 2 and linked.count(None) == 1


def test_no_error_page_shows_a_stack_trace(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Traceback" not in response.get_data(as_text=True)


def test_with_redis_unreachable_the_database_takes_over_the_claims(tmp_path, plain_wechat):
    app = make_app(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
    client = app.test_client()
    first = plain_wechat.ask(client, "老板拖欠工资", msg_id=9100)
    again = plain_wechat.ask(client, "老板拖欠工资", msg_id=9100)
    assert first == again and "第五十条" in first
    assert count_exchanges(app) == 1


def test_in_safe_mode_plaintext_bodies_are_refused(tmp_path, plain_wechat, encrypted_wechat):
    app = make_app(tmp_path, WECHAT_ENCRYPTION="safe")
    client = app.test_client()
    forged = client.post(
        **plain_wechat.post_kwargs(plain_wechat.sim.event("unsubscribe", openid="o-victim"))
    )
    assert forged.status_code == 403
    assert "第五十条" in encrypted_wechat.ask(client, "老板拖欠工资怎么办")


def test_a_captured_callback_url_cannot_carry_another_message(app, client, plain_wechat):
    plain_wechat.ask(client, "老板拖欠工资怎么办", openid="o-victim")
    args, body = plain_wechat.sim.request(plain_wechat.sim.text("工资", openid="o-victim"))
    first = client.post("/wechat", query_string=args, data=body, content_type="text/xml")
    assert first.status_code == 200
    again = client.post("/wechat", query_string=args, data=body, content_type="text/xml")
    assert again.status_code == 200  # WeChat's own retry: the same message
    forged = plain_wechat.sim.event("unsubscribe", openid="o-victim").encode()
    refused = client.post("/wechat", query_string=args, data=forged, content_type="text/xml")
    assert refused.status_code == 403
    with app.app_context():
        linked = db.session.scalars(select(Exchange).where(Exchange.openid_hash.is_not(None))).all()
    assert len(linked) == 2  # the resident's history is still theirs


def test_a_chunked_body_over_the_limit_gets_413(client, plain_wechat):
    kwargs = plain_wechat.text_message("工资")
    body = kwargs.pop("data") + b"<!--" + b"x" * 70_000 + b"-->"
    response = client.post(
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
        **kwargs,
    )
    assert response.status_code == 413


def test_without_redis_a_nonce_is_remembered_by_every_worker(tmp_path, plain_wechat):
    first, second = make_app(tmp_path), make_app(tmp_path)  # one host, one spool directory
    plain_wechat.ask(first.test_client(), "老板拖欠工资怎么办", openid="o-victim")
    args, body = plain_wechat.sim.request(plain_wechat.sim.text("工资", openid="o-victim"))
    post = {"query_string": args, "content_type": "text/xml"}
    assert first.test_client().post("/wechat", data=body, **post).status_code == 200
    forged = plain_wechat.sim.event("unsubscribe", openid="o-victim").encode()
    assert second.test_client().post("/wechat", data=forged, **post).status_code == 403
