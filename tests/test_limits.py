"""Abuse: a flooding resident gets a polite note, a probing address a 429; nobody else waits."""

from __future__ import annotations

from sqlalchemy import select

from bot.extensions import db
from bot.models import Exchange
from tests.factories import make_app

WAGE_ARTICLE = "第五十条"


def test_a_resident_who_floods_gets_a_polite_note_and_others_are_still_answered(
    tmp_path, plain_wechat
):
    app = make_app(tmp_path, RATE_LIMIT_RESIDENT="3/minute")
    client = app.test_client()
    replies = [plain_wechat.ask(client, "老板拖欠工资", openid="o-flood") for _ in range(4)]
    assert all(WAGE_ARTICLE in r for r in replies[:3])
    assert "太快" in replies[3] and "110" in replies[3] and WAGE_ARTICLE not in replies[3]
    assert WAGE_ARTICLE in plain_wechat.ask(client, "老板拖欠工资", openid="o-other")
    with app.app_context():
        outcomes = db.session.scalars(select(Exchange.outcome).order_by(Exchange.id)).all()
    assert outcomes.count("limited") == 1 and len(outcomes) == 5  # the note is logged too


def test_a_retry_of_a_message_is_not_counted_again(tmp_path, plain_wechat):
    app = make_app(tmp_path, RATE_LIMIT_RESIDENT="2/minute")
    client = app.test_client()
    for _ in range(3):
        assert WAGE_ARTICLE in plain_wechat.ask(client, "老板拖欠工资", msg_id=7001)
    assert WAGE_ARTICLE in plain_wechat.ask(client, "老板拖欠工资", msg_id=7002)


def test_an_address_sending_refused_requests_gets_429_while_wechat_traffic_flows(
    tmp_path, plain_wechat
):
    app = make_app(tmp_path, RATE_LIMIT_REFUSED="5/minute")
    client = app.test_client()
    for _ in range(10):  # valid traffic is never counted
        assert WAGE_ARTICLE in plain_wechat.ask(client, "老板拖欠工资")
    kwargs = plain_wechat.text_message("工资")
    kwargs["query_string"]["signature"] = "0" * 40
    statuses = [client.post(**kwargs).status_code for _ in range(6)]
    assert statuses == [403] * 5 + [429]


def test_residents_are_counted_across_workers_in_redis(tmp_path, plain_wechat, redis_url):
    workers = [
        make_app(tmp_path, REDIS_URL=redis_url, RATE_LIMIT_RESIDENT="2/minute") for _ in range(2)
    ]
    replies = [
        plain_wechat.ask(workers[n % 2].test_client(), "老板拖欠工资", openid="o-flood-2")
        for n in range(3)
    ]
    assert "太快" in replies[2]


def test_an_unreachable_limiter_store_never_costs_a_reply(tmp_path, plain_wechat):
    app = make_app(tmp_path, REDIS_URL="redis://127.0.0.1:1/0", RATE_LIMIT_RESIDENT="1/minute")
    client = app.test_client()
    for _ in range(3):
        assert WAGE_ARTICLE in plain_wechat.ask(client, "老板拖欠工资", openid="o-any")
