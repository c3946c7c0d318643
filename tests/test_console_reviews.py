"""The advisers' pages: the review queue, one exchange, verdicts, corrections and the export."""

from __future__ import annotations

import csv
import io
import re
import time
import tomllib
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from bot import accounts, corrections
from bot.extensions import db
from bot.models import AuditEvent, Correction, Exchange, Review
from bot.privacy import mask
from tests.factories import Outage, console_post, login, make_app, make_user

WAGES = "《中华人民共和国劳动法》第五十条"
CHILD_LABOUR = "《中华人民共和国劳动法》第十五条"
CHILD_LABOUR_QUOTE = "禁止用人单位招用未满十六周岁的未成年人。"
# no answer from the fixture base; an adviser says it is about child labour
UNANSWERED = "娃儿在厂里头做工，老板说他年纪小不给工钱"
PHONE = "13812345678"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def _resident(n: int) -> str:
    return f"o-resident-{n:04d}"


def ask(app, wechat, text: str, who: int = 1) -> str:
    return wechat.ask(app.test_client(), text, openid=_resident(who))


def adviser(app, role: str = "adviser", name: str | None = None):
    username = name or role
    make_user(app, username, role, name=f"{role}甲")
    client = app.test_client()
    login(client, username)
    return client


def exchange_id(app, question: str) -> int:
    with app.app_context():
        return db.session.scalar(
            select(Exchange.id).where(Exchange.question == question).order_by(Exchange.id.desc())
        )


def facets(html: str) -> dict[str, dict[str, int]]:
    """{"结果": {"全部": 5, "未能答复": 2, …}, "群众反馈": {…}, "审核": {…}} from the queue."""
    out = {}
    title_re = r'<span class="facet-title">(\w+)：</span>(.*?)</p>'
    link_re = r'class="facet"[^>]*>([^<]+?)（<span class="count">(\d+)</span>）'
    for title, body in re.findall(title_re, html, re.S):
        links = re.findall(link_re, body)
        out[title] = {label: int(n) for label, n in links}
    return out


def queue_questions(html: str) -> list[str]:
    return re.findall(r'<pre class="message">(.*?)</pre>', html, re.S)


@pytest.fixture
def other_account(app, monkeypatch):
    """A second township's account with one exchange of its own."""
    monkeypatch.setenv("PUFA_B_TOKEN", "token-of-乙镇")
    with app.app_context():
        account = accounts.create(
            slug="yizhen", name="乙镇普法", app_id="wx00000000000000b2", token_env="PUFA_B_TOKEN"
        )
        row = Exchange(
            account_id=account.id,
            msg_key="b:msg:1",
            openid_hash="b-resident",
            kind="text",
            question="乙镇的问题：电话13900001111",
            reply="乙镇的回复",
            outcome="no_answer",
        )
        db.session.add(row)
        db.session.commit()
        return row.id


# -- the queue ------------------------------------------------------------------------------


def test_residents_messages_appear_in_the_queue_with_counts_per_filter(app, plain_wechat):
    # (the fixture app has no embedding model: its emergency detector reads cues alone and
    # offers the numbers to "…怎么办" questions too, so these questions avoid such cues)
    ask(app, plain_wechat, "老板拖欠工资咋个投诉", who=1)
    ask(app, plain_wechat, "我家母猪下崽了明天赶集卖多少钱合适", who=2)
    ask(app, plain_wechat, "山上着火了，火好大", who=3)
    ask(app, plain_wechat, "老板拖欠工资犯法吗", who=4)
    ask(app, plain_wechat, "没用", who=4)  # said about the answer before it
    plain_wechat.ask(app.test_client(), "", openid=_resident(5))  # empty: not a question
    console = adviser(app)

    html = console.get("/console/reviews").get_data(as_text=True)
    counts = facets(html)
    assert counts["结果"] == {
        "全部": 6,
        "未能答复": 2,  # the sow, and the fire (the law base has no answer, the numbers do)
        "给了选项": 0,
        "全文推荐": 0,
        "紧急求助": 1,
        "直接答复": 2,
    }
    assert counts["群众反馈"] == {"全部": 6, "说“没用”": 1}
    assert counts["审核"] == {"全部": 6, "未审核": 6, "已审核": 0}
    assert queue_questions(html)[:2] == ["", "没用"]  # newest first
    assert WAGES in html

    no_answer = console.get("/console/reviews?outcome=no_answer").get_data(as_text=True)
    assert "母猪" in no_answer and "拖欠工资" not in no_answer
    negative = console.get("/console/reviews?feedback=not_useful").get_data(as_text=True)
    assert queue_questions(negative) == ["老板拖欠工资犯法吗"]
    # counts of the other filters follow the one chosen
    assert facets(negative)["结果"]["直接答复"] == 1
    emergency = console.get("/console/reviews?outcome=emergency").get_data(as_text=True)
    assert queue_questions(emergency) == ["山上着火了，火好大"]
    by_law = console.get("/console/reviews?law=劳动法").get_data(as_text=True)
    assert set(queue_questions(by_law)) == {"老板拖欠工资犯法吗", "老板拖欠工资咋个投诉"}
    by_topic = console.get("/console/reviews?law=工资&outcome=answered").get_data(as_text=True)
    assert len(queue_questions(by_topic)) == 2
    by_text = console.get("/console/reviews?q=咋个").get_data(as_text=True)
    assert queue_questions(by_text) == ["老板拖欠工资咋个投诉"]
    today = console.get("/console/reviews?start=2000-01-01&end=2000-01-02").get_data(as_text=True)
    assert queue_questions(today) == [] and facets(today)["结果"]["全部"] == 0


def test_the_queue_pages_fifty_at_a_time(app):
    with app.app_context():
        for n in range(53):
            db.session.add(
                Exchange(msg_key=f"m{n}", kind="text", question=f"问题{n:02d}", outcome="answered")
            )
        db.session.commit()
    console = adviser(app, "viewer")
    first = queue_questions(console.get("/console/reviews").get_data(as_text=True))
    second = queue_questions(console.get("/console/reviews?page=2").get_data(as_text=True))
    assert len(first) == 50 and len(second) == 3
    assert set(first).isdisjoint(second)


def test_a_residents_markup_is_shown_as_text(app, plain_wechat):
    ask(app, plain_wechat, SCRIPT, who=1)
    ask(app, plain_wechat, IMG, who=1)
    console = adviser(app)
    pages = [console.get("/console/reviews").get_data(as_text=True)]
    for question in (SCRIPT, IMG):
        pages.append(
            console.get(f"/console/reviews/{exchange_id(app, question)}").get_data(as_text=True)
        )
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[2]


def test_a_phone_number_is_masked_in_the_queue_the_page_and_both_exports(app, plain_wechat):
    ask(app, plain_wechat, f"我电话{PHONE}，老板拖欠工资", who=1)
    console = adviser(app)
    queue = console.get("/console/reviews").get_data(as_text=True)
    page = console.get(f"/console/reviews/{exchange_id(app, '我电话138****5678，老板拖欠工资')}")
    csv_text = console.get("/console/reviews/export?fmt=csv").get_data().decode("utf-8-sig")
    xlsx = console.get("/console/reviews/export?fmt=xlsx").get_data()
    cells = [str(c.value) for row in openpyxl.load_workbook(io.BytesIO(xlsx)).active for c in row]
    for text in (queue, page.get_data(as_text=True), csv_text, " ".join(cells)):
        assert PHONE not in text
        assert "138****5678" in text


def test_the_context_shows_the_same_residents_exchanges_in_this_account_only(app, plain_wechat):
    for n in range(8):
        ask(app, plain_wechat, f"第{n}个问题：老板拖欠工资", who=1)
    ask(app, plain_wechat, "别人的问题：老板拖欠工资", who=2)
    console = adviser(app)
    html = console.get(f"/console/reviews/{exchange_id(app, '第7个问题：老板拖欠工资')}")
    html = html.get_data(as_text=True)
    assert all(f"第{n}个问题" in html for n in range(2, 8))
    assert "第1个问题" not in html and "别人的问题" not in html
    assert WAGES in html and "t-labor-050-wages" in html  # what it cited, and matches now


# -- verdicts and permissions ---------------------------------------------------------------


def test_an_adviser_records_a_verdict(app, plain_wechat):
    ask(app, plain_wechat, "老板拖欠工资咋个投诉")
    ex = exchange_id(app, "老板拖欠工资咋个投诉")
    console = adviser(app)
    page = f"/console/reviews/{ex}"
    response = console_post(
        console, page, {"verdict": "partly", "note": "还应说劳动仲裁<b>时效</b>"}, page=page
    )
    assert response.status_code == 302
    with app.app_context():
        review = db.session.scalar(select(Review))
        assert (review.exchange_id, review.verdict) == (ex, "partly")
        assert review.reviewer == "adviser甲（adviser）"
        assert db.session.scalar(
            select(AuditEvent.action).where(AuditEvent.target == f"exchange:{ex}")
        )
    html = console.get(page).get_data(as_text=True)
    assert "部分正确" in html and "&lt;b&gt;时效&lt;/b&gt;" in html
    counts = facets(console.get("/console/reviews").get_data(as_text=True))
    assert counts["审核"] == {"全部": 1, "未审核": 0, "已审核": 1}
    assert console_post(console, page, {"verdict": "maybe"}, page=page).status_code == 400


def test_a_viewer_reads_but_may_not_judge_or_correct_and_staff_may_not_correct(app, plain_wechat):
    ask(app, plain_wechat, "老板拖欠工资咋个投诉")
    ex = exchange_id(app, "老板拖欠工资咋个投诉")
    viewer = adviser(app, "viewer")
    assert viewer.get("/console/reviews").status_code == 200
    page = f"/console/reviews/{ex}"
    html = viewer.get(page).get_data(as_text=True)
    assert "记录评价" not in html and "用这一条回答" not in html
    assert console_post(viewer, page, {"verdict": "wrong"}, page=page).status_code == 403
    fix = {"snippet_id": "t-labor-015-child-labour"}
    assert console_post(viewer, f"{page}/correct", fix, page=page).status_code == 403
    assert viewer.get("/console/reviews/export?fmt=csv").status_code == 200
    staff = adviser(app, "staff")
    assert staff.get(page).status_code == 200
    assert console_post(staff, f"{page}/correct", fix, page=page).status_code == 403
    assert console_post(staff, page, {"verdict": "wrong"}, page=page).status_code == 403
    assert staff.get("/console/reviews/export?fmt=csv").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(Review)) is None
        assert db.session.scalar(select(Correction)) is None


def test_another_accounts_exchange_is_not_found(app, plain_wechat, other_account):
    console = adviser(app)
    page = f"/console/reviews/{other_account}"
    assert console.get(page).status_code == 404
    assert console_post(console, page, {"verdict": "wrong"}).status_code == 404
    fix = {"snippet_id": "t-labor-015-child-labour"}
    assert console_post(console, f"{page}/correct", fix).status_code == 404
    assert "乙镇的问题" not in console.get("/console/reviews").get_data(as_text=True)


def test_forms_without_the_token_are_refused(app, plain_wechat):
    ask(app, plain_wechat, UNANSWERED)
    ex = exchange_id(app, UNANSWERED)
    console = adviser(app)
    fix = {"snippet_id": "t-labor-015-child-labour"}
    assert console.post(f"/console/reviews/{ex}/correct", data=fix).status_code == 400
    assert console.post(f"/console/reviews/{ex}", data={"verdict": "wrong"}).status_code == 400


# -- corrections ----------------------------------------------------------------------------


def correct(console, app, question: str, snippet_id: str):
    page = f"/console/reviews/{exchange_id(app, question)}"
    return console_post(console, f"{page}/correct", {"snippet_id": snippet_id}, page=page)


def revert(console, app, question: str):
    with app.app_context():
        row = db.session.scalar(select(Correction).order_by(Correction.id.desc()))
    page = f"/console/reviews/{exchange_id(app, question)}"
    return console_post(console, f"{page}/corrections/{row.id}/revert", page=page)


def test_a_correction_changes_the_next_reply_and_a_revert_restores_it(app, plain_wechat):
    before = ask(app, plain_wechat, UNANSWERED, who=1)
    assert CHILD_LABOUR not in before and "还没有可靠的答案" in before
    console = adviser(app)
    assert correct(console, app, UNANSWERED, "t-labor-015-child-labour").status_code == 302

    reply = ask(app, plain_wechat, UNANSWERED, who=2)
    assert CHILD_LABOUR in reply and CHILD_LABOUR_QUOTE in reply
    # the same question written a little differently is the same question
    assert CHILD_LABOUR in ask(
        app, plain_wechat, "娃儿在厂里头做工 老板说他年紀小不给工钱！", who=3
    )
    assert CHILD_LABOUR not in ask(app, plain_wechat, "老板拖欠工资咋个投诉", who=4)
    with app.app_context():
        row = db.session.scalar(
            select(Exchange)
            .where(Exchange.openid_hash.is_not(None))
            .order_by(Exchange.id)
            .offset(1)
            .limit(1)
        )
        assert row.outcome == "answered" and row.citations[0]["correction"] == 1
        first = db.session.scalar(select(Correction))
        assert first.author == "adviser甲（adviser）" and first.before == [{"outcome": "no_answer"}]

    page = console.get(f"/console/reviews/{exchange_id(app, UNANSWERED)}").get_data(as_text=True)
    assert "生效中" in page and "撤销" in page and CHILD_LABOUR in page
    assert revert(console, app, UNANSWERED).status_code == 302
    assert ask(app, plain_wechat, UNANSWERED, who=5) == before
    with app.app_context():
        rows = db.session.scalars(select(Correction).order_by(Correction.id)).all()
        assert [r.snippet_id for r in rows] == ["t-labor-015-child-labour", None]
        assert rows[1].before[0]["correction"] == rows[0].id
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert "correction.record" in actions and "correction.revert" in actions
    page = console.get(f"/console/reviews/{exchange_id(app, UNANSWERED)}").get_data(as_text=True)
    assert "撤销：由机器人自己回答" in page and "生效中" not in page


def test_a_second_correction_and_its_revert_go_back_to_the_first(app, plain_wechat):
    ask(app, plain_wechat, UNANSWERED)
    console = adviser(app)
    correct(console, app, UNANSWERED, "t-labor-015-child-labour")
    correct(console, app, UNANSWERED, "t-labor-050-wages")
    assert WAGES in ask(app, plain_wechat, UNANSWERED, who=2)
    revert(console, app, UNANSWERED)
    assert CHILD_LABOUR in ask(app, plain_wechat, UNANSWERED, who=3)
    # an unknown snippet, or the one in effect again, is refused with a reason
    html = console.get(f"/console/reviews/{exchange_id(app, UNANSWERED)}")
    assert correct(console, app, UNANSWERED, "no-such-snippet").status_code == 302
    assert "没有编号为" in console.get(html.request.path).get_data(as_text=True)
    with app.app_context():
        assert len(db.session.scalars(select(Correction)).all()) == 3


def test_a_correction_reaches_another_worker_sharing_the_database(tmp_path, plain_wechat):
    first = make_app(tmp_path)
    second = make_app(tmp_path, CORRECTIONS_CHECK_SECONDS=0.2)  # same database, own memory
    before = ask(second, plain_wechat, UNANSWERED, who=1)
    assert CHILD_LABOUR not in before
    console = adviser(first)
    assert correct(console, first, UNANSWERED, "t-labor-015-child-labour").status_code == 302
    time.sleep(0.25)
    assert CHILD_LABOUR in ask(second, plain_wechat, UNANSWERED, who=2)
    assert revert(console, first, UNANSWERED).status_code == 302
    time.sleep(0.25)
    assert ask(second, plain_wechat, UNANSWERED, who=3) == before


def test_with_the_database_down_a_worker_keeps_the_corrections_it_knows(tmp_path, plain_wechat):
    app = make_app(tmp_path, CORRECTIONS_CHECK_SECONDS=0)
    ask(app, plain_wechat, UNANSWERED)
    correct(adviser(app), app, UNANSWERED, "t-labor-015-child-labour")
    assert CHILD_LABOUR in ask(app, plain_wechat, UNANSWERED, who=2)
    outage = Outage(app)
    outage.start()
    try:
        started = time.monotonic()
        assert CHILD_LABOUR in ask(app, plain_wechat, UNANSWERED, who=3)
        assert time.monotonic() - started < 3
    finally:
        outage.end()


def test_questions_are_keyed_without_punctuation_spaces_numbers_or_traditional_forms():
    key = corrections.normalise("老板拖欠工资，咋个整？我电话13812345678")
    assert key == corrections.normalise("老板 拖欠工資咋个整!我电话138****5678")
    assert PHONE not in key
    assert len(corrections.normalise("问" * 500)) <= corrections.KEY_MAX


def test_a_corrected_question_joins_the_snippets_phrasings_and_helps_other_wordings(
    app, plain_wechat
):
    """The correction answers the question itself; its phrasing, written into the content
    file, lets the ranking find the snippet for the same thing said in other words."""
    labor = Path(app.config["CONTENT_DIR"]) / "laws" / "labor.toml"
    original = labor.read_bytes()
    other_wording = "厂里老板说娃儿年纪小不给工钱"
    assert corrections.normalise(other_wording) != corrections.normalise(UNANSWERED)
    assert CHILD_LABOUR not in ask(app, plain_wechat, other_wording, who=1)
    ask(app, plain_wechat, f"我电话{PHONE}，{UNANSWERED}", who=2)
    question = mask(f"我电话{PHONE}，{UNANSWERED}")  # as the log keeps it
    console = adviser(app)
    correct(console, app, question, "t-labor-015-child-labour")

    def phrasings(snippet_id: str) -> list[str]:
        data = tomllib.loads(labor.read_text(encoding="utf-8"))
        return next(s["questions"] for s in data["snippet"] if s["id"] == snippet_id)

    joined = phrasings("t-labor-015-child-labour")[-1]
    assert joined == question and PHONE not in joined
    assert CHILD_LABOUR in ask(app, plain_wechat, other_wording, who=3)
    page = console.get("/console/snippets/t-labor-015-child-labour").get_data(as_text=True)
    assert "更正时加入群众问法" in page and "adviser甲（adviser）" in page

    # reverted: the bot answers by itself, the file is as it was, byte for byte
    revert(console, app, question)
    assert labor.read_bytes() == original

    # corrected again, then to another snippet: the question moves with it
    correct(console, app, question, "t-labor-015-child-labour")
    correct(console, app, question, "t-labor-050-wages")
    assert joined not in phrasings("t-labor-015-child-labour")
    assert phrasings("t-labor-050-wages")[-1] == joined
    # that one reverted: back to the first snippet, and the phrasing with it
    revert(console, app, question)
    assert phrasings("t-labor-015-child-labour")[-1] == joined
    assert joined not in phrasings("t-labor-050-wages")
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert actions.count("snippet.phrasing") == 4 and actions.count("snippet.revert") == 3


def test_the_cli_prints_corrections_not_in_the_files_and_marks_them_exported(app, plain_wechat):
    """Corrections whose question could not be written here (made on another host, say)."""
    with app.app_context():
        for question in (UNANSWERED, "十四岁能去饭店洗碗不"):
            corrections.record(
                account_id=1,
                question=question,
                snippet_id="t-labor-015-child-labour",
                author="adviser甲（adviser）",
            )
    runner = app.test_cli_runner()
    result = runner.invoke(args=["content", "corrections"])
    assert result.exit_code == 0, result.output
    assert 'id = "t-labor-015-child-labour"' in result.output and "labor.toml" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("  ")]
    pasted = tomllib.loads("questions = [\n" + "\n".join(lines) + "\n]")
    assert pasted["questions"] == [UNANSWERED, "十四岁能去饭店洗碗不"]
    with app.app_context():
        assert all(r.exported_at for r in db.session.scalars(select(Correction)))
    again = runner.invoke(args=["content", "corrections"])
    assert UNANSWERED not in again.output and "没有新的更正" in again.output
    # withdrawn after it was exported: named for removal
    ask(app, plain_wechat, "十四岁能去饭店洗碗不")
    revert(adviser(app), app, "十四岁能去饭店洗碗不")
    removal = runner.invoke(args=["content", "corrections"]).output
    assert "删掉" in removal and "十四岁能去饭店洗碗不" in removal


# -- export ---------------------------------------------------------------------------------


def test_exports_hold_this_accounts_masked_log_and_are_audited(app, plain_wechat, other_account):
    ask(app, plain_wechat, f"我电话{PHONE}，老板拖欠工资", who=1)
    ask(app, plain_wechat, '=HYPERLINK("http://example.invalid","点我")', who=2)
    console = adviser(app, "viewer")

    response = console.get("/console/reviews/export?fmt=csv&start=&end=")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows[0][:4] == ["编号", "时间（北京时间）", "类型", "群众的问题"]
    questions = [r[3] for r in rows[1:]]
    assert questions == [
        "我电话138****5678，老板拖欠工资",
        '\'=HYPERLINK("http://example.invalid","点我")',
    ]
    assert WAGES in rows[1][7]

    response = console.get("/console/reviews/export?fmt=xlsx")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    table = [[c.value for c in row] for row in sheet.iter_rows()]
    assert table[0][3] == "群众的问题" and len(table) == 3
    assert table[1][3] == "我电话138****5678，老板拖欠工资"
    assert sheet.cell(row=3, column=4).data_type == "s"  # text, not a formula
    assert not any("乙镇" in str(v) for row in table for v in row)

    empty = console.get("/console/reviews/export?fmt=csv&start=2000-01-01&end=2000-01-31")
    assert len(list(csv.reader(io.StringIO(empty.get_data().decode("utf-8-sig"))))) == 1
    assert console.get("/console/reviews/export?fmt=pdf").status_code == 302
    with app.app_context():
        audited = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "log.export").order_by(AuditEvent.id)
        ).all()
    assert [a.target for a in audited] == ["csv", "xlsx", "csv"]
    assert audited[0].actor == "viewer甲（viewer）" and audited[0].account_id == 1


def test_the_offices_public_number_stays_readable_and_hazards_have_chinese_names(
    tmp_path, plain_wechat
):
    app = make_app(tmp_path, JUSTICE_OFFICE_PHONE="0871-65123456")
    reply = ask(app, plain_wechat, "老板拖欠工资咋个投诉，我电话13912345678")
    assert "0871-65123456" in reply  # what the resident saw
    ask(app, plain_wechat, "我老公拿刀要砍我", who=2)
    client = adviser(app)
    page = client.get(
        f"/console/reviews/{exchange_id(app, '老板拖欠工资咋个投诉，我电话139****5678')}"
    )
    shown = page.get_data(as_text=True)
    assert "0871-65123456" in shown and "0871-****3456" not in shown
    assert "13912345678" not in shown
    queue = client.get("/console/reviews?outcome=emergency").get_data(as_text=True)
    assert "紧急：" in queue and re.search(r"紧急：[\u4e00-\u9fff]", queue)
