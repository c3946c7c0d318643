"""Residents talk to the real bot over the signed webhook, in plaintext, compatible and safe mode.

The real law base and the real models answer; every phrasing here was written for this test.
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from bot.extensions import db
from bot.models import Exchange
from tests.factories import REAL_CONTENT, make_app

_residents = itertools.count(1)


@pytest.fixture(scope="module")
def real_app(tmp_path_factory):
    return make_app(
        tmp_path_factory.mktemp("conversation"), content=REAL_CONTENT, module_scoped=True
    )


@pytest.fixture
def client(real_app):
    return real_app.test_client()


@pytest.fixture
def resident():
    """A fresh follower for each test, so conversations never mix."""
    return f"o-resident-{next(_residents):04d}"


def exchange(app, question_part: str) -> Exchange:
    with app.app_context():
        row = db.session.scalars(
            select(Exchange).where(Exchange.question.contains(question_part))
        ).first()
        db.session.expunge_all()
        return row


def test_an_indirect_emergency_gets_the_numbers_first(client, wechat, resident):
    reply = wechat.ask(client, "我老倌喝醉了拿起柴刀在院坝里追着我砍", openid=resident)
    assert reply.startswith("🚨") and "110" in reply.splitlines()[0]


def test_a_past_event_in_the_same_words_is_answered_as_a_legal_question(client, wechat, resident):
    reply = wechat.ask(client, "前年遭人打断了手，现在还能告他不", openid=resident)
    assert not reply.startswith("🚨")
    assert "《" in reply or "12348" in reply


def test_a_question_beyond_the_base_gets_possibly_related_articles(
    real_app, client, wechat, resident
):
    if real_app.extensions.get("pufa.article_index") is None:
        pytest.skip("no full-text vectors shipped in content/embeddings")
    reply = wechat.ask(client, "按兵役法义务兵要当几年兵", openid=resident)  # no snippet
    assert "尚未经法律顾问解释" in reply and "12348" in reply
    assert "1. 《中华人民共和国兵役法》" in reply
    picked = wechat.ask(client, "1", openid=resident)
    assert "现行文本" in picked and "“义务兵服现役的期限为二年。”" in picked
    assert exchange(real_app, "按兵役法义务兵要当几年兵").outcome == "suggestions"  # a gap


def test_a_follow_up_keeps_the_topic(client, wechat, resident):
    first = wechat.ask(client, "老板拖欠了我两个月工钱不给", openid=resident)
    assert "劳动法" in first
    which = wechat.ask(client, "那找哪个部门", openid=resident)
    assert "关于刚才说的事" in which
    assert "劳动" in which or "司法所" in which
    papers = wechat.ask(client, "要带哪样材料", openid=resident)
    assert "还没有可靠的答案" not in papers
    assert "劳动" in papers  # the wage topic's answer, not another subject's


def test_an_emergency_asked_like_a_follow_up_gets_the_numbers_not_the_topic(
    client, wechat, resident
):
    wechat.ask(client, "老板拖欠了我两个月工钱不给", openid=resident)
    reply = wechat.ask(client, "发现山上冒烟了找哪个", openid=resident)  # not about wages
    assert reply.startswith("🚨") and "12119" in reply.splitlines()[0]
    assert "关于刚才说的事" not in reply


def test_a_new_question_after_an_answer_is_answered_on_its_own(client, wechat, resident):
    wechat.ask(client, "老板拖欠了我两个月工钱不给", openid=resident)
    reply = wechat.ask(client, "那离婚了娃儿跟哪个", openid=resident)
    first_citation = reply[reply.index("《") :].split("》")[0] if "《" in reply else ""
    assert "民法典" in reply and "劳动法" not in first_citation


def test_several_questions_in_one_message(client, wechat, resident):
    reply = wechat.ask(
        client,
        "老板拖欠了三个月工资不给咋个办？还有离婚了娃儿的抚养费男方该给好多",
        openid=resident,
    )
    assert "您还问到" in reply or "请回复数字查看" in reply
    assert "抚养" in reply or "1085" in reply or "一千零八十五" in reply


def test_feedback_after_an_answer_is_stored_against_that_answer(real_app, client, wechat, resident):
    wechat.ask(client, "村里修路占了我家的承包地，补偿款一分没给", openid=resident)
    reply = wechat.ask(client, "没用", openid=resident)
    assert "抱歉没帮上忙" in reply and "12348" in reply
    assert exchange(real_app, "修路占了我家的承包地").feedback == "not_useful"


@pytest.mark.parametrize(
    ("message", "expected"),
    [("你好", "普法小助手"), ("谢谢", "不客气"), ("人工", "12348"), ("你是哪个", "不是律师")],
)
def test_greetings_thanks_and_asking_for_a_person(client, wechat, resident, message, expected):
    reply = wechat.ask(client, message, openid=resident)
    assert expected in reply
    assert "还没有可靠的答案" not in reply


def test_asking_for_a_person_says_how_to_reach_one_now(client, wechat, resident):
    reply = wechat.ask(client, "我要找人", openid=resident)
    assert "测试镇司法所" in reply and "0871-00000000" in reply and "法律援助" in reply


def test_a_qr_code_subscribe_is_welcomed_and_its_scene_recorded(real_app, client, wechat, resident):
    xml = wechat.event(
        "subscribe", key="qrscene_village-03", create_time=1764000000, openid=resident
    )
    response = client.post(**wechat.post_kwargs(xml))
    assert "欢迎关注" in wechat.reply_text(response.get_data())
    with real_app.app_context():
        row = db.session.scalars(select(Exchange).where(Exchange.kind == "subscribe")).all()
        assert "village-03" in {r.scene for r in row}


def test_two_menu_clicks_in_one_second_are_two_answers(real_app, client, wechat, resident):
    replies = []
    for key in ("TOPIC_WAGES", "TOPIC_FAMILY"):
        xml = wechat.event("CLICK", key=key, create_time=1764000100, openid=resident)
        replies.append(wechat.reply_text(client.post(**wechat.post_kwargs(xml)).get_data()))
    assert "工资劳动" in replies[0] and "婚姻家庭" in replies[1]
    retry = wechat.event("CLICK", key="TOPIC_FAMILY", create_time=1764000100, openid=resident)
    assert wechat.reply_text(client.post(**wechat.post_kwargs(retry)).get_data()) == replies[1]
