"""The law base: files validated as they load, quotes exact, answers that fit, live edits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import accounts, lawbase
from bot.errors import ContentError
from bot.wechat import qa, render
from tests.factories import (
    FIXTURE_CONTENT,
    REAL_CONTENT,
    REQUIRED_LAWS,
    ROOT,
    copy_content,
    edit_content,
    flask_cli,
    make_app,
)

LAWREF = ROOT.parent / "shared" / "tools" / "lawref.py"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'summary = "工资必须',
            'summery = "工资必须',
            "snippet 't-labor-050-wages': field 'summary': missing",
        ),
        (
            'article = "第五十条"',
            'article = "第50条"',
            "field 'article': '第50条' is not like 第五十条",
        ),
        (
            'help = ["劳动保障监察", "劳动仲裁"',
            'help = ["劳动局"',
            "field 'help': unknown value '劳动局'",
        ),
        ('id = "t-labor-015-child-labour"', 'id = "t-labor-050-wages"', "duplicate id"),
        (
            'version = "2018-12-29"',
            'version = "2018-13-29"',
            "field 'version': '2018-13-29' is not a date",
        ),
        (
            'quote = "工资应当以货币形式按月支付给劳动者本人。不得克扣或者无故拖欠劳动者的工资。"',
            'quote = " "',
            "snippet 't-labor-050-wages': field 'quote': missing or empty",
        ),
        (
            'questions = ["老板拖欠工资咋个整", ',
            "questions = [",
            "field 'questions': needs at least 3",
        ),
        ("[[snippet]]", "[[snippet]\n", "not valid TOML"),
    ],
)
def test_a_broken_content_file_is_reported_with_file_snippet_and_field(
    tmp_path, old, new, expected
):
    content = copy_content(tmp_path)
    edit_content(content, old, new)
    with pytest.raises(ContentError) as caught:
        lawbase.load(content)
    message = str(caught.value)
    assert expected in message
    assert "labor.toml" in message


def test_the_content_check_command_fails_naming_the_problem(tmp_path):
    content = copy_content(tmp_path)
    edit_content(content, 'article = "第五十条"', 'article = "第五十條"')
    app = make_app(tmp_path, content=copy_content(tmp_path / "good"))
    app.config["CONTENT_DIR"] = str(content)
    result = app.test_cli_runner().invoke(args=["content", "check"])
    assert result.exit_code == 1
    assert "t-labor-050-wages" in result.output and "'article'" in result.output


def test_the_real_base_loads_and_covers_the_first_release_topics():
    base = lawbase.load(REAL_CONTENT)
    assert len(base.snippets) >= 60
    topics = {t for s in base.snippets for t in s.topics}
    for needed in (
        "工资",
        "劳动合同",
        "童工",
        "辍学",
        "安全生产",
        "森林防火",
        "土地承包",
        "婚姻",
        "借款",
    ):
        assert needed in topics, needed


@pytest.mark.skipif(not LAWREF.exists() and not os.environ.get("CI"), reason="no ../shared here")
def test_every_curated_quote_matches_the_reference_text(tmp_path):
    """Pipes `flask content export-quotes` through shared/tools/lawref.py verify."""
    env = {
        **os.environ,
        "PUFA_CONTENT_DIR": str(REAL_CONTENT),
        "PUFA_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
    }
    done = flask_cli(env, "content", "export-quotes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    exported = done.stdout
    assert len(exported.splitlines()) == len(lawbase.load(REAL_CONTENT).snippets)
    verified = subprocess.run(
        [sys.executable, str(LAWREF), "verify", "-"], input=exported, capture_output=True, text=True
    )
    last = verified.stdout.strip().splitlines()[-1]
    assert verified.returncode == 0, verified.stdout[-3000:]
    assert last.endswith(" 0 failed")


def test_every_answer_fits_one_wechat_reply(tmp_path):
    """Each snippet's full answer, with a long office line, stays under 2,048 bytes."""
    app = make_app(
        tmp_path, content=REAL_CONTENT, JUSTICE_OFFICE_ADDRESS="某某县某某镇人民政府一楼东侧第三间"
    )
    with app.app_context():
        base = lawbase.current()
        too_long = [
            s.id
            for s in base.snippets
            if len(render.snippet_text(s, base=base, office=qa.office(accounts.default())).encode())
            > 2048
        ]
    assert too_long == []


def test_a_long_reply_is_paged_behind_more(tmp_path, plain_wechat):
    app = make_app(tmp_path, REPLY_MAX_BYTES=400)
    client = app.test_client()
    first = plain_wechat.ask(client, "老板拖欠工资怎么办")
    assert len(first.encode()) <= 400 and "更多" in first
    pages = [first]
    for _ in range(10):
        page = plain_wechat.ask(client, "更多")
        if page.startswith("没有更多"):
            break
        assert len(page.encode()) <= 400
        pages.append(page)
    whole = "".join(pages)
    assert "不得克扣或者无故拖欠劳动者的工资" in whole.replace("\n", "")
    assert "12348" in whole


def test_an_edited_content_file_takes_effect_without_a_restart(tmp_path, plain_wechat, monkeypatch):
    monkeypatch.setattr(lawbase, "RELOAD_CHECK_SECONDS", 0.0)
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content=content)
    client = app.test_client()
    assert "还没有可靠的答案" in plain_wechat.ask(client, "劳动合同签了能不能不算数")
    path = content / "laws" / "labor.toml"
    path.write_text(path.read_text(encoding="utf-8") + CONTRACT_SNIPPET, encoding="utf-8")
    bump_mtime(path)
    assert "第十七条" in plain_wechat.ask(client, "劳动合同签了能不能不算数")


def test_a_broken_edit_keeps_the_last_good_base_in_service(
    tmp_path, plain_wechat, monkeypatch, caplog
):
    monkeypatch.setattr(lawbase, "RELOAD_CHECK_SECONDS", 0.0)
    content = copy_content(tmp_path)
    app = make_app(tmp_path, content=content)
    client = app.test_client()
    path = edit_content(content, 'article = "第五十条"', 'article = "五十"')
    bump_mtime(path)
    reply = plain_wechat.ask(client, "老板拖欠工资怎么办")
    assert "第五十条" in reply
    assert "content reload failed" in caplog.text and "'article'" in caplog.text
    with app.app_context():
        assert "t-labor-050-wages" in app.extensions["pufa.lawbase"].last_error


def bump_mtime(path: Path) -> None:
    later = time.time() + 5
    os.utime(path, (later, later))


CONTRACT_SNIPPET = """
[[snippet]]
id = "t-labor-017-binding"
article = "第十七条"
quote = "劳动合同依法订立即具有法律约束力，当事人必须履行劳动合同规定的义务。"
summary = "依法签的劳动合同有法律效力，双方都要照着做。"
explain = "合同签了就算数，老板和工人都要按合同办事。"
questions = ["劳动合同签了能不能不算数", "合同签了老板不认账", "签的合同有没有用"]
topics = ["劳动合同"]
audience = ["外出务工人员"]
help = ["司法所"]
review = { status = "quote-verified", by = "test fixture", on = "2026-11-25" }
"""


def test_export_quotes_prints_one_json_line_per_snippet(runner):
    result = runner.invoke(args=["content", "export-quotes"])
    records = [json.loads(line) for line in result.output.splitlines()]
    assert {r["id"] for r in records} == {s.id for s in lawbase.load(FIXTURE_CONTENT).snippets}
    assert all(set(r) >= {"id", "law", "article", "quote"} for r in records)


def test_the_base_is_broad_enough_for_the_annual_report():
    base = lawbase.load(REAL_CONTENT)
    names = {s.law.name.removeprefix("中华人民共和国") for s in base.snippets}
    assert [law for law in REQUIRED_LAWS if law not in names] == []
    assert len(base.snippets) >= 400 and len(names) >= 30
    security = [s for s in base.snippets if s.law.short == "治安管理处罚法"]
    assert security and all(s.law.version == "2025-06-27" for s in security)  # in force 2026-01-01


def test_every_snippet_carries_its_review_status():
    for s in lawbase.load(REAL_CONTENT).snippets:
        assert s.review["status"] in ("quote-verified", "adviser-reviewed") and s.review["by"], s.id
        assert len(s.questions) >= 3, s.id


def test_every_snippet_is_found_by_ten_or_more_of_residents_phrasings():
    """Residents word one question many ways: short, dialect, voice-typed, long stories."""
    base = lawbase.load(REAL_CONTENT)
    thin = [s.id for s in base.snippets if len(set(s.questions)) < 10]
    assert thin == []
    stories = [s.id for s in base.snippets if not any(len(q) >= 50 for q in s.questions)]
    assert len(stories) <= len(base.snippets) // 20  # nearly all have a long rambling one


def test_a_broken_lexicon_is_reported_and_never_goes_live(tmp_path):
    content = copy_content(tmp_path)
    (content / "lexicon.toml").write_text('[dialect]\n"遭打" = \n', encoding="utf-8")
    with pytest.raises(ContentError) as exc:
        lawbase.load(content)
    assert "lexicon.toml" in str(exc.value)
