"""Storage faults: a reply goes out in time and each exchange is logged once, whatever the
database and Redis do (a lock, a freeze, a refused entry, a worker killed mid-message)."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select

from bot import journal
from bot.extensions import db
from bot.models import Exchange
from bot.stores import Writer
from bot.wechat import qa
from tests.factories import Outage, make_app

WAGE_ARTICLE = "第五十条"


def rows(app) -> list[Exchange]:
    with app.app_context():
        found = db.session.scalars(select(Exchange).order_by(Exchange.id)).all()
        db.session.expunge_all()
        return found


def spooled(app) -> int:
    with app.app_context():
        return journal.depth()


def replay(app) -> journal.Replayed:
    with app.app_context():
        return journal.replay_spool()


def flush(app) -> None:
    """The journal writer's pass once the database is back."""
    with app.app_context():
        journal.flush(force=True)


def is_sqlite(app) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")


# -- a slow or frozen database ---------------------------------------------------------------


class Freeze:
    """A database that takes the statement and never answers, as a paused PostgreSQL does.

    Statements block until `end()`; a guard ends the freeze after 20 s so a failing test
    finishes, and `ended_by_guard` then tells that the reply waited for the database.
    """

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.frozen, self.ended_by_guard = False, False
        self.thaw = threading.Event()
        event.listen(self.engine, "before_cursor_execute", self._hang)

    def _hang(self, *args, **kwargs) -> None:
        if self.frozen:
            self.thaw.wait()

    def start(self) -> None:
        self.frozen = True
        self.thaw.clear()
        self._guard = threading.Timer(20, self._by_guard)
        self._guard.start()

    def _by_guard(self) -> None:
        self.ended_by_guard = True
        self.end()

    def end(self) -> None:
        self.frozen = False
        self.thaw.set()
        self._guard.cancel()


def test_a_frozen_database_does_not_hold_the_reply_and_loses_nothing(app, client, plain_wechat):
    freeze = Freeze(app)
    freeze.start()
    first = plain_wechat.ask(client, "老板拖欠工资怎么办", msg_id=4101)
    second = plain_wechat.ask(client, "工资被拖欠了咋个整", msg_id=4102)
    still_frozen = freeze.frozen
    freeze.end()
    assert still_frozen and not freeze.ended_by_guard, "the replies waited for the database"
    assert WAGE_ARTICLE in first and WAGE_ARTICLE in second
    assert spooled(app) == 2
    app.extensions["pufa.storage"].pool().shutdown(wait=True)  # the stuck calls finish
    flush(app)
    assert spooled(app) == 0
    logged = rows(app)
    assert sorted(r.msg_key for r in logged) == ["msg:4101", "msg:4102"]
    assert all(r.outcome == "answered" and WAGE_ARTICLE in r.reply for r in logged)


def test_a_locked_table_does_not_hold_the_reply(app, client, plain_wechat):
    with app.app_context():
        engine = db.engine
    with engine.connect() as locker:
        if is_sqlite(app):
            locker.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            locker.exec_driver_sql("LOCK TABLE exchanges IN ACCESS EXCLUSIVE MODE")
        reply = plain_wechat.ask(client, "老板拖欠工资怎么办", msg_id=4201)
        assert WAGE_ARTICLE in reply
        assert spooled(app) == 1
        locker.rollback()
    flush(app)
    assert spooled(app) == 0
    assert [r.msg_key for r in rows(app)] == ["msg:4201"]


# -- replay that cannot be poisoned ------------------------------------------------------------


def spool_entries(app, keys: list[str], **poison) -> None:
    """Spool one finished entry per key; the entry `poison["at"]` gets the bad fields."""
    at = poison.pop("at", None)
    with app.app_context():
        for key in keys:
            entry = journal.Entry(
                msg_key=key, openid_hash=None, kind="text", question="工资", reply="答"
            )
            entry.outcome = "answered"
            for name, value in (poison if key == at else {}).items():
                setattr(entry, name, value)
            journal.spool(entry)


POISONS = {
    "a date nobody can read": {"received_at": "去年腊月"},
    "a value too long for its column": {"kind": "k" * 300},  # PostgreSQL refuses it
}


@pytest.mark.parametrize("poison", POISONS)
def test_an_entry_the_database_refuses_is_quarantined_and_the_rest_are_written(app, runner, poison):
    if poison == "a value too long for its column" and is_sqlite(app):
        pytest.skip("SQLite does not enforce column lengths")
    keys = [f"msg:{n}" for n in range(4301, 4323)]
    spool_entries(app, keys, at="msg:4302", **POISONS[poison])
    result = runner.invoke(args=["journal", "replay"])
    assert result.exit_code == 0, result.output
    assert "21 of 22 spooled entries written, 1 quarantined" in result.output
    assert [r.msg_key for r in rows(app)] == [k for k in keys if k != "msg:4302"]
    listed = runner.invoke(args=["journal", "quarantine"]).output
    assert "msg:4302" in listed and "1 quarantined" in listed
    assert spooled(app) == 0
    assert replay(app).written == 0  # idempotent: nothing written twice


def test_an_unreadable_spool_file_is_quarantined_with_its_reason(app, runner):
    spool_entries(app, ["msg:4401"])
    with app.app_context():
        folder = journal.spool_dir()
    (folder / "0-broken.json").write_text("{not json", encoding="utf-8")
    done = replay(app)
    assert (done.written, done.quarantined) == (1, 1)
    with app.app_context():
        [item] = journal.quarantined()
    assert item["record"] == "{not json" and "JSONDecodeError" in item["reason"]


def test_while_the_database_is_down_replay_waits_and_keeps_every_entry(app, runner, outage):
    spool_entries(app, ["msg:4501", "msg:4502"])
    outage.start()
    result = runner.invoke(args=["journal", "replay"])
    assert result.exit_code == 1
    assert "0 of 2 spooled entries written, 0 quarantined" in result.output
    assert spooled(app) == 2
    outage.end()
    assert replay(app).written == 2


def test_a_quarantined_entry_can_be_put_back_once_fixed(app, runner):
    spool_entries(app, ["msg:4601"], at="msg:4601", received_at="去年腊月")
    replay(app)
    with app.app_context():
        [item] = journal.quarantined()
        path = journal.spool_dir() / "quarantine" / item["file"]
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["record"]["received_at"] = "2026-12-01T08:00:00+00:00"  # an operator's fix
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert "1 entries back in the spool" in runner.invoke(args=["journal", "requeue"]).output
    assert replay(app).written == 1
    assert [r.msg_key for r in rows(app)] == ["msg:4601"]


# -- write-behind: the reply never waits for a commit ------------------------------------------


def eventually(check, seconds: float = 10.0):
    """Poll until `check()` is truthy (the writer thread runs on its own)."""
    deadline = time.monotonic() + seconds
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def test_the_reply_goes_out_once_the_entry_is_spooled_and_the_writer_logs_it(
    tmp_path, plain_wechat
):
    app = make_app(tmp_path, JOURNAL_WRITE_BEHIND=True)
    client = FlaskClient(app)  # no test helper flushing the journal: the writer alone
    commits = []
    with app.app_context():
        event.listen(db.engine, "commit", lambda conn: commits.append(threading.get_ident()))
    for n in range(30):
        reply = plain_wechat.ask(client, "老板拖欠工资怎么办", msg_id=4901 + n, openid=f"o-{n}")
        assert WAGE_ARTICLE in reply

    def all_logged():  # without Redis each claim left a pending row: wait for the answers
        found = rows(app)
        return len(found) == 30 and all(r.outcome == "answered" for r in found) and found

    logged = eventually(all_logged)
    assert logged and all(WAGE_ARTICLE in r.reply for r in logged)
    assert eventually(lambda: spooled(app) == 0)  # each file goes once its batch committed
    # every exchange's commit ran in the writer thread, never in the request's (the claims of
    # a database without Redis commit on the answer path: each claim is one statement)
    writer = app.extensions["pufa.storage"]._writer._thread.ident
    assert writer in commits


def test_with_write_behind_entries_that_wait_for_the_database_are_synced_to_disk(
    tmp_path, plain_wechat, monkeypatch
):
    app = make_app(tmp_path, JOURNAL_WRITE_BEHIND=True)
    synced = []
    monkeypatch.setattr(journal, "sync_files", synced.extend)
    outage = Outage(app)
    outage.start()
    reply = plain_wechat.ask(app.test_client(), "老板拖欠工资怎么办", msg_id=5201)
    assert WAGE_ARTICLE in reply
    with app.app_context():
        [path] = journal.spooled()
    assert path in synced  # not fsync'd on the answer path, but once the database made it wait
    outage.end()
    flush(app)
    assert [r.msg_key for r in rows(app)] == ["msg:5201"]


def test_an_entry_a_killed_writer_had_taken_is_put_back_and_written(app):
    dead = subprocess.Popen(["true"])
    dead.wait()
    with app.app_context():
        entry = journal.Entry(msg_key="msg:5001", openid_hash=None, kind="text", question="工资")
        entry.reply, entry.outcome = "答", "answered"
        path = journal.spool(entry)
        path.rename(path.with_name(f".{path.stem}.{dead.pid}.replaying"))  # died mid-replay
        assert journal.spooled() == [] and journal.depth() == 1
        journal.flush(force=True)
        assert journal.depth() == 0
    assert [r.msg_key for r in rows(app)] == ["msg:5001"]


def test_feedback_right_after_an_answer_marks_it_though_it_is_still_spooled(
    tmp_path, plain_wechat, monkeypatch, redis_url
):
    # claims in Redis: no row until the writer has written it
    app = make_app(tmp_path, REDIS_URL=redis_url, JOURNAL_WRITE_BEHIND=True)
    monkeypatch.setattr(
        Writer, "wake", lambda self, unsynced=None: None
    )  # a writer that has not run yet
    client = FlaskClient(app)
    plain_wechat.ask(client, "老板拖欠工资怎么办", msg_id=5101, openid="o-fb")
    assert rows(app) == []
    plain_wechat.ask(client, "没用", msg_id=5102, openid="o-fb")
    marked = {r.msg_key: r.feedback for r in rows(app)}
    assert marked["msg:5101"] == "not_useful"


# -- answered once, logged once, through any crash ---------------------------------------------


class Killed(BaseException):
    """The worker process dies here (nothing after this line runs in it)."""


def _die(*args, **kwargs):
    raise Killed


WRITE_BEHIND, DIRECT = {"JOURNAL_WRITE_BEHIND": True}, {}
STEPS = {
    "after claiming": (qa, "respond", DIRECT),
    "after answering": (journal, "finish", DIRECT),
    "while spooling (write-behind)": (journal, "write_atomically", WRITE_BEHIND),
    "after spooling, before sharing (write-behind)": (journal, "_share_reply", WRITE_BEHIND),
    "while storing": (journal, "_write", DIRECT),
    "after storing, before sharing the reply": (journal, "_share_reply", DIRECT),
}


@pytest.mark.parametrize("shared_by", ["database", "redis"])
@pytest.mark.parametrize("step", STEPS)
def test_a_worker_killed_at_any_step_leaves_the_message_answered_and_logged_once(
    tmp_path, plain_wechat, monkeypatch, request, step, shared_by
):
    module, name, config = STEPS[step]
    settings = {"RETRY_WAIT_SECONDS": 0.5, **config}
    if shared_by == "redis":
        settings["REDIS_URL"] = request.getfixturevalue("redis_url")
    dying, survivor = make_app(tmp_path, **settings), make_app(tmp_path, **settings)
    monkeypatch.setattr(module, name, _die)
    with pytest.raises(Killed):
        plain_wechat.ask(dying.test_client(), "老板拖欠工资怎么办", msg_id=4701)
    monkeypatch.undo()
    retry = plain_wechat.ask(survivor.test_client(), "老板拖欠工资怎么办", msg_id=4701)
    assert WAGE_ARTICLE in retry
    [row] = rows(survivor)
    assert row.msg_key == "msg:4701" and row.outcome == "answered" and row.reply == retry


def test_without_redis_a_retry_during_an_outage_is_answered_once_by_the_workers(
    tmp_path, plain_wechat, caplog
):
    first, second = make_app(tmp_path), make_app(tmp_path)  # one host, one spool directory
    for worker in (first, second):
        Outage(worker).start()
    reply = plain_wechat.ask(first.test_client(), "老板拖欠工资", msg_id=4801)
    again = plain_wechat.ask(second.test_client(), "老板拖欠工资", msg_id=4801)
    assert again == reply and WAGE_ARTICLE in reply
    assert spooled(first) == 1  # the second worker did not answer (and log) it again
    assert "repeat delivery of msg:4801 answered from the stored reply" in caplog.text


# -- messages without a MsgId --------------------------------------------------------------


def without_msg_id(xml: str) -> str:
    return re.sub(r"<MsgId>.*?</MsgId>", "", xml)


def test_messages_without_msgid_never_get_another_residents_reply(app, client, plain_wechat):
    sim = plain_wechat.sim
    wage = without_msg_id(sim.text("老板拖欠工资怎么办", openid="o-resident-a"))
    other = without_msg_id(sim.text("我家母猪下崽了卖多少钱", openid="o-resident-b"))
    replies = [
        sim.reply_text(client.post(**plain_wechat.post_kwargs(xml)).get_data())
        for xml in (wage, other, wage)  # the last one is WeChat's retry of the first
    ]
    assert WAGE_ARTICLE in replies[0] and WAGE_ARTICLE not in replies[1]
    assert replies[2] == replies[0]
    assert len(rows(app)) == 2


def test_a_message_with_a_non_numeric_msgid_is_answered(app, client, plain_wechat):
    xml = re.sub(r"<MsgId>.*?</MsgId>", "<MsgId>abc</MsgId>", plain_wechat.sim.text("老板拖欠工资"))
    assert WAGE_ARTICLE in plain_wechat.sim.reply_text(
        client.post(**plain_wechat.post_kwargs(xml)).get_data()
    )
    assert rows(app)[0].msg_key.startswith("nomsg:")


@pytest.mark.parametrize(
    "change",
    [
        ("<CreateTime>", "<FromUserName>o-x</FromUserName><CreateTime>"),  # sender repeated
        ("</xml>", "<Content>again</Content></xml>"),  # content repeated
        ("<CreateTime>", "<CreateTime><a>1</a>"),  # a field with elements inside
    ],
)
def test_signed_but_malformed_messages_get_a_clean_400_not_a_500(client, plain_wechat, change):
    xml = plain_wechat.sim.text("老板拖欠工资").replace(*change, 1)
    assert client.post(**plain_wechat.post_kwargs(xml)).status_code == 400


def test_a_message_without_a_sender_is_refused(client, plain_wechat):
    xml = re.sub(r"<FromUserName>.*?</FromUserName>", "", plain_wechat.sim.text("工资"))
    assert client.post(**plain_wechat.post_kwargs(xml)).status_code == 400


# -- a frozen Redis --------------------------------------------------------------------------


class SilentServer:
    """Accepts connections and never answers, as a paused Redis does; closes after 20 s."""

    def __init__(self):
        import socket

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list = []
        self.closed_by_guard = False
        threading.Thread(target=self._accept, daemon=True).start()
        self._guard = threading.Timer(20, self._by_guard)
        self._guard.start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def _by_guard(self) -> None:
        self.closed_by_guard = True
        self.close()

    def close(self) -> None:
        self._guard.cancel()
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_a_frozen_redis_does_not_hold_the_reply(tmp_path, plain_wechat):
    silent = SilentServer()
    app = make_app(tmp_path, REDIS_URL=f"redis://127.0.0.1:{silent.port}/0")
    client = app.test_client()
    replies = [plain_wechat.ask(client, "老板拖欠工资怎么办", msg_id=n) for n in (5001, 5002)]
    silent.close()
    assert not silent.closed_by_guard, "the replies waited for Redis"
    assert all(WAGE_ARTICLE in reply for reply in replies)
    assert sorted(r.msg_key for r in rows(app)) == ["msg:5001", "msg:5002"]
