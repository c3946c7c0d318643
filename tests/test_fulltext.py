"""The full-text tier: every article of the national laws, cleaned, checked and quotable."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot import articles, fulltext, lawbase
from bot.errors import ContentError
from bot.extensions import db
from bot.models import Exchange
from tests.factories import (
    REAL_CONTENT,
    REQUIRED_LAWS,
    ROOT,
    copy_content,
    edit_content,
    make_app,
)
from tests.helpers import ask

REFERENCE = ROOT.parent / "shared" / "law-reference" / "laws.jsonl"
# Every national law the base must cover (regulations are not in the full-text package).
CORE_LAWS = [law for law in REQUIRED_LAWS if not law.endswith(("条例", "规定"))]


@pytest.fixture(scope="module")
def full():
    return fulltext.load()


def test_part_and_chapter_headings_are_cut_from_article_ends(full):
    text = full.law("民法典").articles["第二百零四条"].text
    assert text == "期间的计算方法依照本法的规定，但是法律另有规定或者当事人另有约定的除外。"
    assert len(full.cleaned["heading cut"]) >= 30
    for where in full.cleaned["heading cut"]:
        law, label = where.split("第", 1)
        assert "编" not in full.laws[law].articles["第" + label].text.splitlines()[-1][:6]


def test_an_annex_appended_to_the_last_article_is_cut(full):
    assert full.law("国旗法").articles["第二十四条"].text == "本法自1990年10月1日起施行。"


def test_the_rural_land_contract_law_is_in_force_despite_the_package_status(full):
    law = full.law("农村土地承包法")
    assert law is not None and law.version == "2018-12-29" and law.note
    assert len(law.articles) == 70


def test_criminal_law_articles_rewritten_in_2023_are_never_quoted_from_the_2020_text(full):
    law = full.law("刑法")
    assert law.version == "2020-12-26"
    assert set(law.withheld) == {
        "第一百六十五条",
        "第一百六十六条",
        "第一百六十九条",
        "第三百八十七条",
        "第三百九十条",
        "第三百九十一条",
        "第三百九十三条",
    }
    result = ask("刑法第一百六十六条", base=lawbase.load(REAL_CONTENT), full=full)
    assert result.outcome == "no_answer" and "不引用旧条文" in result.text
    assert law.articles["第一百六十六条"].text[:10] not in result.text


def test_articles_whose_neighbour_was_lost_are_withheld(full):
    eco = full.law("生态环境法典")
    assert "第一千一百一十九条" in eco.withheld and "第一千二百条" in eco.withheld


def test_stray_spaces_from_pdf_extraction_are_removed(full):
    eco = full.law("生态环境法典")
    assert not any("、 " in a.text or " 2026" in a.text for a in eco.articles.values())


@pytest.mark.skipif(not REFERENCE.exists(), reason="no ../shared/law-reference here")
def test_cleaned_texts_equal_the_reference_texts_article_by_article(full):
    same, different = 0, []
    with open(REFERENCE, encoding="utf-8") as f:
        for line in f:
            ref = json.loads(line)
            law = full.laws.get(ref["law"])
            if law is None or law.version != ref["version"] or ref["article"] in law.withheld:
                continue
            article = law.articles.get(ref["article"])
            if article is not None and fulltext.fold(article.text) == fulltext.fold(ref["text"]):
                same += 1
            else:
                different.append(ref["law"] + ref["article"])
    assert different == [] and same > 7000


@pytest.mark.parametrize("short", CORE_LAWS)
def test_every_article_of_the_core_laws_can_be_asked_for_by_number(full, short):
    base = lawbase.load(REAL_CONTENT)
    law = full.law(short)
    assert law is not None, short
    for label, article in law.articles.items():
        if label in law.withheld:
            continue
        result = ask(f"{short}{label}", base=base, full=full)
        assert result.outcome in ("answered", "fulltext"), (short, label)
        if result.outcome == "fulltext":
            assert f"“{article.text}”" in result.text
        else:  # a curated snippet: its quote is exact, and it is the article asked for
            assert f"《{law.name}》{label}" in result.text


@pytest.mark.parametrize(
    ("asked", "law", "label"),
    [
        ("劳动法第50条", "中华人民共和国劳动法", "第五十条"),
        ("请问民法典的第一千零四十二条", "中华人民共和国民法典", "第一千零四十二条"),
        ("《中华人民共和国刑法》第二百七十六条之一", "中华人民共和国刑法", "第二百七十六条之一"),
        ("道交法51条咋个说", "中华人民共和国道路交通安全法", "第五十一条"),
    ],
)
def test_article_numbers_are_read_however_residents_write_them(full, asked, law, label):
    found = articles.asked(asked, base=lawbase.load(REAL_CONTENT), full=full)
    assert (found.law, found.label) == (law, label)


def test_an_article_that_does_not_exist_is_said_not_to(full):
    result = ask("劳动法第五百条", base=lawbase.load(REAL_CONTENT), full=full)
    assert "没有第五百条" in result.text and "107" in result.text and "“" not in result.text


def test_a_full_text_answer_is_logged_as_a_gap_for_advisers(tmp_path, plain_wechat):
    app = make_app(tmp_path, content=REAL_CONTENT)
    reply = plain_wechat.ask(app.test_client(), "消防法第十条")
    assert "大白话解释还没有写好" in reply
    with app.app_context():
        row = db.session.scalar(select(Exchange))
    assert row.outcome == "fulltext"
    assert row.citations == [{"citation": "《中华人民共和国消防法》第十条", "source": "fulltext"}]


# -- content check against the current text ------------------------------------------------


def broken(tmp_path, old: str, new: str):
    content = copy_content(tmp_path)
    edit_content(content, old, new)
    return content


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "不得克扣或者无故拖欠劳动者的工资。",
            "不得克扣或者拖欠劳动者的工资。",
            "field 'quote': does not match the current text",
        ),
        ('article = "第五十条"', 'article = "第五百条"', "has no 第五百条"),
        ('law = "中华人民共和国劳动法"', 'law = "中华人民共和国劳工法"', "unknown law"),
        ('version = "2018-12-29"', 'version = "2009-08-27"', "outdated version 2009-08-27"),
    ],
)
def test_content_check_refuses_quotes_that_are_not_the_current_law(
    tmp_path, full, old, new, expected
):
    with pytest.raises(ContentError) as caught:
        lawbase.load(broken(tmp_path, old, new), full=full)
    assert expected in str(caught.value) and "t-labor-050-wages" in str(caught.value)


def test_content_check_command_reports_quotes_checked(runner):
    result = runner.invoke(args=["content", "check"])
    assert result.exit_code == 0
    assert "match their current text" in result.output


def test_a_reload_reaches_a_second_worker_and_a_bad_quote_never_goes_live(
    tmp_path, plain_wechat, monkeypatch
):
    monkeypatch.setattr(lawbase, "RELOAD_CHECK_SECONDS", 0.0)
    content = copy_content(tmp_path)
    workers = [make_app(tmp_path, content=content) for _ in range(2)]
    path = content / "laws" / "labor.toml"
    original = path.read_text(encoding="utf-8")
    path.write_text(
        original.replace("工资必须按月用钱发给本人", "工钱每个月都要用现钱发到本人手上"),
        encoding="utf-8",
    )
    _touch(path)
    for worker in workers:
        assert "工钱每个月都要用现钱发到本人手上" in plain_wechat.ask(
            worker.test_client(), "老板拖欠工资"
        )
    path.write_text(original.replace("不得克扣或者无故拖欠", "不得克扣或者拖欠"), encoding="utf-8")
    _touch(path, later=20)
    for worker in workers:
        reply = plain_wechat.ask(worker.test_client(), "老板拖欠工资")
        assert "不得克扣或者无故拖欠劳动者的工资" in reply  # the last good base still serves


def _touch(path, later: float = 10) -> None:
    import os
    import time

    t = time.time() + later
    os.utime(path, (t, t))


def test_the_cleaned_full_text_is_kept_on_disk_for_the_next_start(tmp_path):
    from bot import fulltext as ft

    stale = tmp_path / "fulltext-000000000000000000000000.pickle"
    stale.write_bytes(b"an earlier version")
    first = ft._from_disk(str(ft.package_database()), str(tmp_path))
    [kept] = list(tmp_path.glob("fulltext-*.pickle"))
    assert kept != stale and kept.stat().st_mode & 0o777 == 0o600
    again = ft._from_disk(str(ft.package_database()), str(tmp_path))
    assert again is not first  # read back from the file
    law = "中华人民共和国劳动法"
    assert again.law(law).articles["第五十条"] == first.law(law).articles["第五十条"]
    assert len(again.laws) == len(first.laws) and again.cleaned == first.cleaned
