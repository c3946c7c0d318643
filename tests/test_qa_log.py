"""The Q&A log advisers read: masked, complete, and never lost when the database is down."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot import journal
from bot.extensions import db
from bot.models import Exchange
from bot.privacy import mask


def exchanges(app) -> list[Exchange]:
    with app.app_context():
        rows = db.session.scalars(select(Exchange).order_by(Exchange.id)).all()
        db.session.expunge_all()
        return rows


def test_each_exchange_records_question_reply_citations_scores_and_latency(
    app, client, plain_wechat
):
    reply = plain_wechat.ask(client, "老板拖欠工资怎么办", msg_id=31)
    [row] = exchanges(app)
    assert row.msg_key == "msg:31" and row.kind == "text"
    assert row.question == "老板拖欠工资怎么办"
    assert row.reply == reply and row.outcome == "answered"
    assert row.citations[0]["citation"] == "《中华人民共和国劳动法》第五十条"
    assert row.citations[0]["score"] > 0
    assert row.latency_ms is not None and row.latency_ms >= 0
    assert row.openid_hash and plain_wechat.sim.openid not in row.openid_hash


def test_a_no_answer_is_logged_as_such_for_advisers(app, client, plain_wechat):
    plain_wechat.ask(client, "我家母猪下崽了明天赶集卖多少钱合适")
    [row] = exchanges(app)
    assert row.outcome == "no_answer"


def test_phone_id_and_bank_numbers_are_masked_in_the_log_and_in_log_lines(
    app, client, plain_wechat, caplog
):
    question = (
        "我电话13812345678，身份证530102199001011234，工资卡6222021234567890123，老板拖欠工资"
    )
    with caplog.at_level(logging.DEBUG):
        plain_wechat.ask(client, question)
        app.logger.warning("resident wrote %s", question)  # as a careless log line would
    [row] = exchanges(app)
    for secret in ("13812345678", "530102199001011234", "6222021234567890123"):
        assert secret not in row.question
        assert secret not in caplog.text
    assert "138****5678" in row.question and "6222" in row.question


def test_masking_leaves_ordinary_numbers_alone():
    assert (
        mask("欠了3个月工资共12000元，2024年5月1日开始")
        == "欠了3个月工资共12000元，2024年5月1日开始"
    )
    assert mask("电话 0871-65123456") != "电话 0871-65123456"


def test_with_the_database_down_the_reply_goes_out_and_the_entry_is_stored_after_recovery(
    app, client, plain_wechat, outage
):
    outage.start()
    reply = plain_wechat.ask(client, "老板拖欠工资怎么办，电话13812345678", msg_id=555)
    assert "第五十条" in reply
    with app.app_context():
        assert journal.depth() == 1
    outage.end()
    with app.app_context():
        journal.flush(force=True)  # the writer's pass once the database is back
        assert journal.depth() == 0
    [row] = exchanges(app)
    assert row.msg_key == "msg:555" and row.reply == reply
    assert "13812345678" not in row.question


def test_spooled_entries_are_written_by_the_next_request_once_the_database_is_back(
    app, client, plain_wechat, outage
):
    outage.start()
    plain_wechat.ask(client, "工资被拖欠", msg_id=601)
    outage.end()
    plain_wechat.ask(client, "工资被拖欠了咋个整", msg_id=602)
    app.extensions["pufa.storage"].settle()  # the replay runs beside the reply, not before it
    keys = sorted(row.msg_key for row in exchanges(app))
    assert keys == ["msg:601", "msg:602"]


def test_replaying_twice_never_duplicates_an_entry(app):
    with app.app_context():
        entry = journal.Entry(msg_key="msg:701", openid_hash=None, kind="text", question="工资")
        entry.reply, entry.outcome = "答", "answered"
        path = journal.spool(entry)
        saved = path.read_bytes()
        journal.replay_spool()
        path.write_bytes(saved)  # as if a crash came between commit and delete
        journal.replay_spool()
    assert [row.msg_key for row in exchanges(app)] == ["msg:701"]


def test_a_retry_during_an_outage_is_still_answered_once(app, client, plain_wechat, outage):
    outage.start()
    first = plain_wechat.ask(client, "老板拖欠工资", msg_id=801)
    again = plain_wechat.ask(client, "老板拖欠工资", msg_id=801)
    assert first == again
    with app.app_context():
        assert journal.depth() == 1


def test_unsubscribing_during_an_outage_is_carried_out_after_recovery(
    app, client, plain_wechat, outage
):
    plain_wechat.ask(client, "老板拖欠工资", openid="o-leaving")
    outage.start()
    client.post(
        **plain_wechat.post_kwargs(plain_wechat.sim.event("unsubscribe", openid="o-leaving"))
    )
    outage.end()
    with app.app_context():
        journal.flush(force=True)
    [row] = exchanges(app)
    assert row.openid_hash is None


def test_with_the_database_down_and_the_disk_full_the_resident_still_gets_a_reply(
    app, client, plain_wechat, outage, caplog
):
    app.config["SPOOL_DIR"] = "/proc/pufa-cannot-write-here"
    outage.start()
    reply = plain_wechat.ask(client, "老板拖欠工资怎么办", msg_id=991)
    assert "第五十条" in reply
    assert "spool unwritable: msg:991" in caplog.text


def test_exchanges_past_the_retention_period_lose_their_link_to_the_resident(app, runner):
    now = datetime.now(UTC)
    with app.app_context():
        for key, age in (("msg:old", 400), ("msg:recent", 30)):
            db.session.add(
                Exchange(
                    msg_key=key,
                    openid_hash="h" * 64,
                    kind="subscribe",
                    question="",
                    scene="village-7",
                    received_at=now - timedelta(days=age),
                )
            )
        db.session.commit()
    result = runner.invoke(args=["journal", "retain"])
    assert result.output.startswith("1 exchanges received before")
    old, recent = exchanges(app)
    assert (old.openid_hash, old.scene) == (None, None)
    assert recent.openid_hash == "h" * 64 and recent.scene == "village-7"


def test_retention_counts_calendar_months():
    march_31 = datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert journal.retention_cutoff(march_31, 1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert journal.retention_cutoff(march_31, 12) == datetime(2025, 3, 31, 12, tzinfo=UTC)
    assert journal.retention_cutoff(march_31, 0) is None


def test_spooled_questions_and_the_demo_database_are_readable_by_the_service_only(
    app, client, plain_wechat, outage
):
    outage.start()
    plain_wechat.ask(client, "老板拖欠工资，电话13812345678", msg_id=1201)
    with app.app_context():
        journal.flush()  # the outage goes on: the entry stays in the spool
        [path] = journal.spooled()
        url = db.engine.url
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    if url.get_backend_name() == "sqlite":
        assert os.stat(url.database).st_mode & 0o077 == 0
