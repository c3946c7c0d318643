"""Answers from the real law base to questions written for this test, not taken from it.

These phrasings are nowhere in content/: they check that the base and the retrieval together
find the right law for what residents actually ask, and stay honest when they cannot.
"""

from __future__ import annotations

import pytest

from bot import answering, lawbase
from tests.conftest import REAL_CONTENT

OFFICE = answering.Office("测试镇司法所 电话0871-00000000")

# question → laws any of which is a right basis (the answer, or one of the numbered choices)
OWN_QUESTIONS = {
    "包工头跑路了，我们的工钱找哪个要": ("保障农民工工资支付条例", "劳动法", "劳动合同法"),
    "厂里不给签合同干了半年了": ("劳动合同法",),
    "我家娃才14岁，想跟他舅去广东进厂": (
        "禁止使用童工规定",
        "义务教育法",
        "劳动法",
        "未成年人保护法",
    ),
    "在工地上摔断了腿，老板说不算工伤": ("工伤保险条例", "社会保险法"),
    "清明节上坟烧纸会不会被罚款": ("森林防火条例",),
    "男方家要退婚，彩礼钱能不能要回来": ("民法典",),
    "老汉八十岁了，几个儿子都不管他": ("民法典", "老年人权益保障法", "宪法"),
    "借给亲戚五万块，他赖账不还": ("民法典",),
    "邻居家盖房子挡住我家光线": ("民法典",),
    "买到假种子，玉米一颗都没结": ("种子法", "消费者权益保护法"),
    "有人让我把银行卡借给他用，给好处费": ("反电信网络诈骗法", "刑法"),
    "村里的账目不公开怎么办": ("村民委员会组织法",),
    "嫁到外村了，娘家的地被收回去了": ("农村土地承包法", "妇女权益保障法"),
    "喝了酒骑摩托被交警查了": ("道路交通安全法", "刑法"),
    "请不起律师怎么办": ("法律援助法",),
    "老公喝醉了就打我，能申请保护令吗": ("反家庭暴力法",),
}


@pytest.fixture(scope="module")
def base():
    return lawbase.load(REAL_CONTENT)


def offered_laws(result: answering.Answer, base) -> list[str]:
    if result.outcome == "answered":
        return [base.by_id[result.citations[0]["id"]].law.name]
    if result.outcome == "choices":
        return [base.by_id[i].law.name for i in result.choices]
    return []


def test_most_everyday_questions_find_the_right_law(base):
    right, wrong = [], []
    for question, laws in OWN_QUESTIONS.items():
        result = answering.answer(question, base=base, office=OFFICE)
        offered = offered_laws(result, base)
        if any(law.endswith(short) for law in offered for short in laws):
            right.append(question)
        elif result.outcome == "answered":
            wrong.append((question, offered))
    assert len(right) >= 12, f"only {len(right)} of {len(OWN_QUESTIONS)}: {right}"
    assert len(wrong) <= 1, wrong  # a confident answer from the wrong law is the worst outcome


@pytest.mark.parametrize(
    "question",
    ["今天天气怎么样", "明天赶集卖猪能卖多少钱", "红烧肉怎么做好吃", "手机怎么连不上wifi"],
)
def test_questions_outside_the_law_base_cite_nothing(base, question):
    result = answering.answer(question, base=base, office=OFFICE)
    assert result.outcome == "no_answer"
    assert "《" not in result.text and "12348" in result.text


def test_asking_for_an_article_by_number_quotes_it(base):
    for asked in ("民法典第一千零四十二条", "劳动法第50条", "《中华人民共和国劳动法》第五十条"):
        result = answering.answer(asked, base=base, office=OFFICE)
        assert result.outcome == "answered", asked
        assert result.citations[0]["citation"] in result.text


def test_every_direct_answer_starts_with_its_summary_and_quotes_the_first_citation(base):
    result = answering.answer("老板拖欠工资三个月了咋个整", base=base, office=OFFICE)
    assert result.outcome == "answered"
    snippet = base.by_id[result.citations[0]["id"]]
    assert result.text.startswith(snippet.summary)
    assert f"{snippet.citation}：\n“{snippet.quote}”" in result.text
