"""Advisers change the law base from the console: a snippet's plain words, a new snippet whose
quote is checked against the current law, undo. The content files stay the source of truth,
and every worker answers residents with the change once it has looked at the files again."""

from __future__ import annotations

import difflib
import html
import json
import re
import threading
import time
from datetime import datetime

import pytest
from sqlalchemy import select

from bot import corrections, fulltext, lawbase
from bot import snippet_edits as edits
from bot.errors import ContentError
from bot.extensions import db
from bot.models import AuditEvent, Correction, Exchange
from bot.posts.states import TZ
from tests.factories import console_post, copy_content, login, make_app, make_user

WAGES = "t-labor-050-wages"
WAGES_QUESTION = "老板拖欠工资咋个整"
OLD_EXPLAIN = (
    "老板拖着工资不发是违法的。先收好考勤、转账记录等证据，再去劳动保障监察投诉或申请劳动仲裁。"
)
NEW_SUMMARY = "工资要按月足额发，老板不能扣也不能拖。"
NEW_EXPLAIN = "工钱拖着不给就是违法。把考勤表、微信聊天和转账记录留好，打12333投诉，或者去县劳动仲裁委申请仲裁。"
HOURS = "《中华人民共和国劳动法》第三十六条"
HOURS_QUOTE = "国家实行劳动者每日工作时间不超过八小时、平均每周工作时间不超过四十四小时的工时制度。"
HOURS_QUESTION = "厂里天天要我们上十二个钟头的班合法不"
HOURS_PHRASINGS = [
    HOURS_QUESTION,
    "一天上班超过八小时合法吗",
    "每周工作时间最多好多个钟头",
    "天天加班到半夜老板说是厂里的规定",
]
HOURS_ID = "labor-036-adviser"
HOURS_SUMMARY = "一天最多干8小时，一周平均最多44小时。"
ADVISER = "赵律师（guwen）"


@pytest.fixture
def workers(tmp_path, monkeypatch):
    """Two workers on one copy of the content and one database: the console's and another
    that only answers residents. Each looks at the files every 0.1 s instead of 2 s."""
    monkeypatch.setattr(lawbase, "RELOAD_CHECK_SECONDS", 0.1)
    content = copy_content(tmp_path)
    console_app = make_app(tmp_path, content)
    resident_app = make_app(tmp_path, content, CORRECTIONS_CHECK_SECONDS=0.1)
    return content, console_app, resident_app


def adviser(app, role: str = "adviser", username: str = "guwen", name: str = "赵律师"):
    make_user(app, username, role, name=name)
    client = app.test_client()
    login(client, username)
    return client


def eventually(check, seconds: float = 5.0):
    """`check()` once it is truthy (a worker reloads by itself within its interval)."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def seen(page: str) -> str:
    return re.search(r'name="seen" type="hidden" value="([^"]*)"', page).group(1)


def edit(client, summary: str = NEW_SUMMARY, explain: str = NEW_EXPLAIN, sid: str = WAGES):
    page = f"/console/snippets/{sid}"
    token = seen(client.get(page).get_data(as_text=True))
    data = {"summary": summary, "explain": explain, "seen": token}
    return console_post(client, f"{page}/explanation", data, page=page)


def snippet_events(app) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("snippet.%")).order_by(AuditEvent.id)
        ).all()
        db.session.expunge_all()
        return list(rows)


def laws_dir(content) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((content / "laws").iterdir())}


# -- the plain words of a snippet ------------------------------------------------------------


def test_an_adviser_edits_the_explanation_residents_get_it_and_a_revert_restores_it(
    workers, plain_wechat
):
    content, console_app, resident_app = workers
    labor = content / "laws" / "labor.toml"
    original = labor.read_text(encoding="utf-8")
    resident = resident_app.test_client()
    assert OLD_EXPLAIN in plain_wechat.ask(resident, WAGES_QUESTION)
    client = adviser(console_app)
    page = client.get(f"/console/snippets/{WAGES}").get_data(as_text=True)
    assert "修改通俗说法和解释" in page and "还没有在工作台修改过" in page

    assert edit(client).status_code == 302
    # the other worker picks the change up by itself
    reply = eventually(
        lambda: (r := plain_wechat.ask(resident, WAGES_QUESTION)) and NEW_EXPLAIN in r and r
    )
    assert reply and NEW_SUMMARY in reply and OLD_EXPLAIN not in reply

    # the change in the file is exactly that snippet's two lines
    changed = labor.read_text(encoding="utf-8")
    diff = [
        line
        for line in difflib.unified_diff(original.splitlines(), changed.splitlines(), n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff == [
        '-summary = "工资必须按月用钱发给本人，不能克扣或无故拖欠。"',
        f'-explain = "{OLD_EXPLAIN}"',
        f'+summary = "{NEW_SUMMARY}"',
        f'+explain = "{NEW_EXPLAIN}"',
    ]
    with console_app.app_context():
        assert lawbase.load(str(content)).by_id[WAGES].explain == NEW_EXPLAIN

    # versioned: who, when, before and after
    [event] = snippet_events(console_app)
    assert (event.action, event.actor, event.target) == ("snippet.edit", ADVISER, WAGES)
    detail = json.loads(event.detail)
    assert detail["before"]["explain"] == OLD_EXPLAIN and detail["after"]["explain"] == NEW_EXPLAIN
    page = client.get(f"/console/snippets/{WAGES}").get_data(as_text=True)
    assert NEW_EXPLAIN in page and OLD_EXPLAIN in page and ADVISER in page and "撤销" in page

    done = console_post(
        client, f"/console/snippets/changes/{event.id}/revert", page=f"/console/snippets/{WAGES}"
    )
    assert done.status_code == 302
    assert labor.read_text(encoding="utf-8") == original
    assert eventually(lambda: OLD_EXPLAIN in plain_wechat.ask(resident, WAGES_QUESTION))
    revert = snippet_events(console_app)[-1]
    assert revert.action == "snippet.revert" and json.loads(revert.detail)["reverts"] == event.id
    # the edit it undid cannot be undone twice
    again = console_post(
        client, f"/console/snippets/changes/{event.id}/revert", page=f"/console/snippets/{WAGES}"
    )
    assert again.status_code == 302
    assert "后来又被改过了" in client.get(f"/console/snippets/{WAGES}").get_data(as_text=True)
    assert labor.read_text(encoding="utf-8") == original


def test_markup_in_an_explanation_is_stored_as_text_and_shown_escaped(tmp_path, plain_wechat):
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content)
    client = adviser(app)
    script = '<script>alert("x")</script> 先收好证据\\再投诉'
    assert edit(client, explain=script).status_code == 302
    text = (content / "laws" / "labor.toml").read_text(encoding="utf-8")
    assert 'explain = "<script>alert(\\"x\\")</script> 先收好证据\\\\再投诉"' in text
    with app.app_context():
        assert lawbase.load(str(content)).by_id[WAGES].explain == script
    page = client.get(f"/console/snippets/{WAGES}").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert(" in page
    assert script in plain_wechat.ask(app.test_client(), WAGES_QUESTION)  # a text reply


def test_a_save_over_someone_elses_newer_words_is_refused(tmp_path):
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content)
    first = adviser(app)
    second = adviser(app, username="qianlvshi", name="钱律师")
    page = f"/console/snippets/{WAGES}"
    stale = seen(first.get(page).get_data(as_text=True))
    assert edit(second).status_code == 302
    late = console_post(
        first,
        f"{page}/explanation",
        {"summary": "我的说法", "explain": "我的解释，晚了一步。", "seen": stale},
        page=page,
    )
    assert late.status_code == 400 and "刚被别人改过了" in late.get_data(as_text=True)
    with app.app_context():
        assert lawbase.load(str(content)).by_id[WAGES].explain == NEW_EXPLAIN


def test_two_advisers_saving_at_once_both_land(tmp_path):
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content)
    full = fulltext.load()
    ids = [WAGES, "t-labor-015-child-labour", WAGES, "t-labor-015-child-labour"]
    errors: list[Exception] = []

    def save(n: int, sid: str) -> None:
        with app.app_context():
            snippet = lawbase.load(str(content)).by_id[sid]
            try:
                edits.edit_explanation(
                    snippet,
                    summary=f"同时保存的说法{n}",
                    explain=f"同时保存的解释{n}，一个字都不能丢。",
                    actor=f"顾问{n}",
                    content_dir=content,
                    full=full,
                )
            except Exception as exc:  # collected: asserted below
                errors.append(exc)

    threads = [threading.Thread(target=save, args=(n, sid)) for n, sid in enumerate(ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    events = snippet_events(app)
    assert len(events) == 4
    base = lawbase.load(str(content), full=full)
    # the last save of each snippet is in the file; every save is in the history
    for sid in set(ids):
        last = [e for e in events if e.target == sid][-1]
        assert base.by_id[sid].explain == json.loads(last.detail)["after"]["explain"]
    befores = [json.loads(e.detail)["before"]["explain"] for e in events]
    afters = [json.loads(e.detail)["after"]["explain"] for e in events]
    assert sum(b in afters for b in befores) == 2  # each second save started from the first


def test_a_change_the_base_refuses_is_undone_and_not_recorded(tmp_path, monkeypatch):
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content)
    client = adviser(app)
    labor = content / "laws" / "labor.toml"
    before, mtime = labor.read_bytes(), labor.stat().st_mtime_ns

    def broken(*args, **kwargs):
        raise ContentError(["labor.toml: snippet 't-labor-050-wages': field 'x': broken"])

    page = client.get(f"/console/snippets/{WAGES}").get_data(as_text=True)
    monkeypatch.setattr(lawbase, "load", broken)
    response = console_post(
        client,
        f"/console/snippets/{WAGES}/explanation",
        {"summary": NEW_SUMMARY, "explain": NEW_EXPLAIN, "seen": seen(page)},
        page=f"/console/snippets/{WAGES}",
    )
    assert response.status_code == 400 and "文件已恢复原样" in response.get_data(as_text=True)
    assert labor.read_bytes() == before and labor.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in (content / "laws").iterdir()) == [
        "forest-fire.toml",
        "labor.toml",
    ]
    assert snippet_events(app) == []


# -- a new snippet ---------------------------------------------------------------------------


def new_snippet(client, exchange: int | None = None, **changes):
    data = {
        "action": "save",
        "law": "中华人民共和国劳动法",
        "article": "36",
        "quote": HOURS_QUOTE,
        "summary": HOURS_SUMMARY,
        "explain": "国家规定一天工作不超过8小时。老板要你天天干十二个钟头，是违法加班，可以找劳动保障监察投诉。",
        "questions": "\n".join(HOURS_PHRASINGS),
        "topics": "工时、加班",
        "audience": ["全体", "外出务工人员"],
        "help": ["劳动保障监察", "法律援助"],
        "exchange": str(exchange or ""),
        **changes,
    }
    return console_post(client, "/console/snippets/new", data, page="/console/snippets/new")


def test_a_new_snippet_written_from_an_exchange_answers_its_question(workers, plain_wechat):
    content, console_app, resident_app = workers
    original = laws_dir(content)
    resident = resident_app.test_client()
    assert HOURS not in plain_wechat.ask(resident, HOURS_QUESTION)
    with console_app.app_context():
        ex = db.session.scalar(select(Exchange.id).where(Exchange.question == HOURS_QUESTION))
    client = adviser(console_app)
    page = client.get(f"/console/reviews/{ex}").get_data(as_text=True)
    link = re.search(r'<a href="([^"]+)">写一条新的条目</a>', page)
    assert link, page
    form = client.get(html.unescape(link.group(1)))
    assert form.status_code == 200
    shown = form.get_data(as_text=True)
    assert f"{HOURS_QUESTION}</textarea>" in shown and f'value="{ex}"' in shown

    filled = console_post(
        client,
        "/console/snippets/new",
        {"action": "fill", "law": "中华人民共和国劳动法", "article": "36", "exchange": str(ex)},
        page="/console/snippets/new",
    )
    assert filled.status_code == 200
    assert f"{HOURS_QUOTE}</textarea>" in filled.get_data(as_text=True)
    assert 'value="第三十六条"' in filled.get_data(as_text=True)
    assert laws_dir(content) == original  # filling saves nothing

    saved = new_snippet(client, exchange=ex)
    assert saved.status_code == 302 and saved.location.endswith(f"/console/snippets/{HOURS_ID}")
    # in the worker that saved, the question is answered by the new snippet at once
    reply = plain_wechat.ask(console_app.test_client(), HOURS_QUESTION)
    assert HOURS in reply and HOURS_QUOTE in reply
    # the file is valid, and says who verified the quote
    base = lawbase.load(str(content), full=fulltext.load())
    snippet = base.by_id[HOURS_ID]
    today = datetime.now(TZ).date().isoformat()
    assert snippet.review == {"status": "quote-verified", "by": ADVISER, "on": today}
    assert snippet.questions == tuple(HOURS_PHRASINGS) and snippet.topics == ("工时", "加班")
    assert snippet.audience == ("全体", "外出务工人员")
    assert snippet.help == ("劳动保障监察", "法律援助")
    assert snippet.law.file.endswith("labor.toml")
    # the other worker answers the question (the correction) and its other phrasings
    assert eventually(lambda: HOURS in plain_wechat.ask(resident, HOURS_QUESTION))
    assert eventually(lambda: HOURS_SUMMARY in plain_wechat.ask(resident, HOURS_PHRASINGS[1]))
    with console_app.app_context():
        [fix] = db.session.scalars(select(Correction)).all()
        assert (fix.snippet_id, fix.exchange_id, fix.author) == (HOURS_ID, ex, ADVISER)
        assert fix.before == [{"outcome": "no_answer"}]  # what it got before the snippet
        asked = db.session.scalars(
            select(Exchange).where(Exchange.question == HOURS_QUESTION).order_by(Exchange.id)
        ).all()
        assert asked[1].outcome == "answered" and asked[1].citations[0]["correction"] == fix.id
        phrased = db.session.scalars(
            select(Exchange).where(Exchange.question == HOURS_PHRASINGS[1]).order_by(Exchange.id)
        ).all()[-1]
        assert phrased.outcome == "answered" and "correction" not in phrased.citations[0]
        assert phrased.citations[0]["id"] == HOURS_ID
    page = client.get(f"/console/snippets/{HOURS_ID}").get_data(as_text=True)
    assert "新建这一条" in page and "撤销（删除这一条）" in page

    # undone: the snippet leaves the file and the correction to it is withdrawn
    [added] = snippet_events(console_app)
    assert added.action == "snippet.add" and added.target == HOURS_ID
    page = f"/console/snippets/{HOURS_ID}"
    done = console_post(client, f"/console/snippets/changes/{added.id}/revert", page=page)
    assert done.status_code == 302 and done.location.endswith("/console/snippets")
    assert laws_dir(content) == original
    with console_app.app_context():
        key = corrections.normalise(HOURS_QUESTION)
        assert corrections.in_effect_id(1, key) is None
    assert eventually(lambda: HOURS not in plain_wechat.ask(resident, HOURS_QUESTION))


def test_a_quote_one_character_off_is_refused_and_nothing_changes(tmp_path):
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content)
    client = adviser(app)
    original = laws_dir(content)
    wrong = HOURS_QUOTE.replace("八小时", "九小时")
    response = new_snippet(client, quote=wrong)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "对不上" in page and "您写的是“九小时" in page and "现行文本是“八小时" in page
    assert wrong in page  # the adviser's words stay in the form
    assert laws_dir(content) == original and snippet_events(app) == []

    for changes, message in [
        ({"law": "森林防火条例", "article": "31"}, "法律全文里没有《森林防火条例》"),
        ({"article": "第九百条"}, "没有第九百条"),
        ({"article": "五十条半"}, "不是条文序号"),
        ({"questions": "就一种问法"}, "至少写 3 种"),
        ({"summary": "说" * 41}, "通俗说法最多 40 个字"),
        ({"quote": ""}, "请填写法条原文"),
    ]:
        response = new_snippet(client, **changes)
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert laws_dir(content) == original and snippet_events(app) == []


FIRE = {  # a snippet of a law the fixture base has no file for
    "law": "中华人民共和国消防法",
    "article": "第四十四条",
    "quote": "任何人发现火灾都应当立即报警。……严禁谎报火警。",
    "summary": "发现着火要马上打119，谎报火警违法。",
    "explain": "看到起火先打119，说清楚地点。谁都不能拦着别人报警，故意谎报火警要受处罚。",
    "questions": "屋头着火了打哪个电话\n看到邻居家冒烟咋个整\n开玩笑打119会不会被抓",
    "topics": "消防",
}


def test_a_law_without_a_file_gets_a_new_file_and_a_revert_removes_it(tmp_path):
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content)
    client = adviser(app)
    original = laws_dir(content)
    quote = FIRE["quote"]
    saved = new_snippet(client, **FIRE, slug="fire-law")
    assert saved.status_code == 302
    text = (content / "laws" / "fire-law.toml").read_text(encoding="utf-8")
    assert 'law = "中华人民共和国消防法"' in text and 'kind = "法律"' in text
    base = lawbase.load(str(content), full=fulltext.load())
    snippet = base.by_id["fire-law-044-adviser"]
    assert snippet.quote == quote and snippet.law.short == "消防法"
    [added] = snippet_events(app)
    page = "/console/snippets/fire-law-044-adviser"
    assert (
        console_post(client, f"/console/snippets/changes/{added.id}/revert", page=page).status_code
        == 302
    )
    assert laws_dir(content) == original


def test_a_new_law_file_is_named_in_pinyin_when_the_adviser_gives_no_name(tmp_path):
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content)
    (content / "laws" / "xiaofang-law.toml").write_text("# taken\n", encoding="utf-8")
    saved = new_snippet(adviser(app), **FIRE, slug="")
    assert saved.status_code == 302
    assert (content / "laws" / "xiaofang-law-2.toml").exists()  # the first name was taken
    assert edits.file_slug("治安管理处罚法").endswith("-chufa-law")
    assert edits.file_slug("中华人民共和国民法典") == "minfadian"


# -- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "viewer"])
def test_staff_and_viewers_may_not_change_the_base(tmp_path, role):
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content)
    original = laws_dir(content)
    client = adviser(app, role=role, username="someone", name="某人")
    page = client.get(f"/console/snippets/{WAGES}").get_data(as_text=True)
    assert "修改记录" in page and "修改通俗说法和解释" not in page
    assert "写一条新的条目" not in client.get("/console/snippets").get_data(as_text=True)
    assert client.get("/console/snippets/new").status_code == 403
    home = f"/console/snippets/{WAGES}"
    for path, data in [
        (f"{home}/explanation", {"summary": "改", "explain": "改了"}),
        ("/console/snippets/new", {"action": "save", "law": "劳动法", "article": "36"}),
        ("/console/snippets/new", {"action": "fill", "law": "劳动法", "article": "36"}),
        ("/console/snippets/changes/1/revert", {}),
    ]:
        assert console_post(client, path, data, page=home).status_code == 403
    assert laws_dir(content) == original


# -- a corrected question joins the phrasings -------------------------------------------------


def test_phrasings_added_once_and_undone_without_touching_later_ones(tmp_path):
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content)
    where = {"content_dir": str(content), "actor": ADVISER}
    with app.app_context():
        first = edits.add_question(WAGES, "工钱拖了半年不给", correction_id=1, **where)
        # the same question in other spacing and punctuation is already there
        assert edits.add_question(WAGES, "工钱 拖了半年不给！", correction_id=2, **where) is None
        assert edits.add_question(WAGES, WAGES_QUESTION, correction_id=3, **where) is None
        second = edits.add_question(WAGES, "包工头跑了工钱找哪个要", correction_id=4, **where)
        assert edits.phrasing_of(1).id == first.id and edits.phrasing_of(2) is None
        lawbase.reload_now()
        snippet = lawbase.current().by_id[WAGES]
        assert snippet.questions[-2:] == ("工钱拖了半年不给", "包工头跑了工钱找哪个要")

        # undoing the first keeps the second (not a byte-for-byte restore of the older file)
        undone = edits.revert(first.id, **where)
        assert undone.unphrasing and undone.reverts == first.id
        lawbase.reload_now()
        snippet = lawbase.current().by_id[WAGES]
        assert snippet.questions[-1] == "包工头跑了工钱找哪个要"
        assert "工钱拖了半年不给" not in snippet.questions
        assert not edits.revertible(edits.get(first.id), snippet)
        with pytest.raises(edits.EditError, match="已经不在"):
            edits.revert(first.id, **where)
        assert edits.revertible(second, snippet)

    # a snippet keeps its minimum of phrasings
    child = "t-labor-015-child-labour"
    with app.app_context():
        added = edits.add_question(child, "娃儿十四岁厂里要不要", **where)
    path = content / "laws" / "labor.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"招童工犯法吗", ', ""), encoding="utf-8")  # by hand
    with app.app_context():
        lawbase.reload_now()
        with pytest.raises(edits.EditError, match="至少要留 3 种问法"):
            edits.revert(added.id, **where)
    assert "娃儿十四岁厂里要不要" in path.read_text(encoding="utf-8")
