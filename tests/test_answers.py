"""Answers from the real law base and the real models, to questions written for this test.

These phrasings are nowhere in content/ or bench/eval/: they check that the base, both
rankers, the confidence model and the emergency model together do what residents need.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from bot import answering, search
from tests.factories import REAL_CONTENT, make_app
from tests.helpers import ask

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
    "老板拖欠工资咋个整": ("劳动法", "保障农民工工资支付条例", "劳动合同法"),
    "孩子不想读书了能去打工吗": ("义务教育法", "禁止使用童工规定", "劳动法", "未成年人保护法"),
    "我男人三天两头打我，想离婚": ("民法典", "反家庭暴力法"),
}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("answers"), content=REAL_CONTENT, module_scoped=True)
    with app.app_context():
        yield answering.context()


def offered_laws(result) -> list[str]:
    if result.snippet is not None:
        return [result.snippet.law.name]
    return [s.law.name for s in result.options]


def test_most_everyday_questions_find_the_right_law(ctx):
    right, wrong = [], []
    for question, laws in OWN_QUESTIONS.items():
        result = ask(question, ctx=ctx)
        offered = offered_laws(result)
        if offered and any(offered[0].endswith(short) for short in laws):
            right.append(question)
        elif result.outcome == "answered":
            wrong.append((question, offered))
    assert len(right) >= 16, f"only {len(right)} of {len(OWN_QUESTIONS)}: {wrong}"
    assert len(wrong) <= 1, wrong  # a confident answer from the wrong law is the worst outcome


def test_the_readme_examples_are_answered_directly(ctx):
    wages = ask("老板拖欠工资咋个整", ctx=ctx)
    assert wages.outcome == "answered" and "工资" in wages.snippet.summary
    assert wages.emergency is None
    school = ask("孩子不想读书了能去打工吗", ctx=ctx)
    assert school.outcome in ("answered", "choices")
    assert offered_laws(school)[0].endswith(("义务教育法", "禁止使用童工规定", "劳动法"))


def test_domestic_violence_is_never_answered_with_farmland(ctx):
    result = ask("老公喝醉了就打我，能申请保护令吗", ctx=ctx)
    assert result.outcome in ("answered", "choices")
    assert offered_laws(result)[0].endswith("反家庭暴力法")
    assert "撂荒" not in result.text


@pytest.mark.parametrize(
    "question",
    [
        "今天天气怎么样",
        "红烧肉怎么做好吃",
        "手机怎么连不上wifi",
        "你们这里卖不卖化肥",
        # everyday errands and law-ish words in other senses: still nothing to cite
        "微信上咋个发红包给我孙子",
        "手机银行咋个查余额",
        "电视剧里头那个律师最后打赢官司没得",
    ],
)
def test_questions_outside_the_law_cite_nothing(ctx, question):
    result = ask(question, ctx=ctx)
    assert result.outcome == "no_answer"
    assert "《" not in result.text and "12348" in result.text


def test_asking_for_an_article_by_number_quotes_it(ctx):
    for asked in ("民法典第一千零四十二条", "劳动法第50条", "《中华人民共和国劳动法》第五十条"):
        result = ask(asked, ctx=ctx)
        assert result.outcome == "answered", asked
        assert result.snippet.citation in result.text


def test_a_direct_answer_starts_with_its_summary_and_quotes_its_article(ctx):
    result = ask("老板拖欠工资三个月了咋个整", ctx=ctx)
    assert result.outcome == "answered"
    snippet = result.snippet
    assert result.text.startswith(snippet.summary)
    assert f"{snippet.citation}：\n“{snippet.quote}”" in result.text


def test_traditional_characters_and_full_width_forms_are_understood(ctx):
    simple = ask("老板拖欠工资咋个整", ctx=ctx)
    traditional = ask("老闆拖欠工資咋個整", ctx=ctx)
    assert traditional.outcome == "answered"
    assert traditional.snippet.citation == simple.snippet.citation


def test_several_questions_in_one_message_answer_one_and_offer_the_rest(ctx):
    result = ask("老板拖欠了三个月工资不给咋个办？还有离婚了娃儿的抚养费男方该给好多", ctx=ctx)
    if result.outcome == "answered":
        assert result.others and "您还问到" in result.text
        offered = [result.snippet, *result.others]
    else:
        assert result.outcome == "choices"
        offered = result.options
    assert any(s.law.short in ("劳动法", "劳动合同法", "保障农民工工资支付条例") for s in offered)
    assert any("抚养" in s.quote for s in offered)


# -- emergencies: phrasings written for this test, not taken from bench/eval ------------------

EMERGENCIES = {
    "我妈吃了山上采的野菌子，现在肚子痛得在床上打滚": "120",
    "娃儿下午出去耍到现在天都黑了还没回来，电话也打不通": "110",
    "有个自称公安局的打电话说我卡涉嫌洗钱，叫我把钱转到安全账户，我正准备去银行": "96110",
    "我老倌喝醉了拿起柴刀在院坝里追着我砍": "110",
    "对面坡上的火越烧越大，快烧到我们寨子了": "119",
    "隔壁大爷在田里干活突然倒下去了，喊不应": "120",
    "有辆三轮车翻到沟里了人压在下面": "120",
    "我真的不想活了，药都买好了": "120",
    # asked as "whom do I call": the asking is no distance from the danger
    "发现山上冒烟了找哪个": "12119",
    "屋头煤气味好重 我妈晕在厨房了 打哪个电话": "120",
    "娃娃掉进鱼塘了捞起来没得气了咋个整": "120",
    # danger inside a legal question: farewell words, a transfer about to be made
    "我不想拖累屋头了 我买的保险受益人写的我娃 我走了他拿得到钱不": "120",
    "那个自称公安的喊我把存款转到他给的账户 我现在就在银行柜台 格是真的": "110",
}
NOT_EMERGENCIES = [
    "前年遭人打断了手，现在还能告他不",
    "山火烧了我家林子找哪个赔",
    "喝农药自杀的保险公司赔不赔",
    "冬天烤火咋个防止煤气中毒",
    "气死我了，老板又扣我工资",
    "上个月出车祸对方全责，误工费咋个算",
    "去年山上冒烟烧了一片林子 后来查出来是哪个烧的 要赔好多",
    "司法所电话是多少",
    "看电视剧里头有人遭绑架 吓得我一晚上没睡着",
]


@pytest.mark.parametrize(("question", "number"), EMERGENCIES.items())
def test_indirect_emergencies_get_the_numbers_first(ctx, question, number):
    result = ask(question, ctx=ctx)
    assert result.emergency is not None, question
    first_line = result.text.splitlines()[0]
    assert number in first_line
    if result.emergency.firm:  # then a law only if it is a confident answer, never guesses
        assert result.outcome in ("answered", "no_answer")
        assert "请回复数字查看" not in result.text


@pytest.mark.parametrize("question", NOT_EMERGENCIES)
def test_the_same_words_about_the_past_or_the_law_raise_no_alarm(ctx, question):
    result = ask(question, ctx=ctx)
    assert result.emergency is None or not result.emergency.firm, question
    assert not result.text.startswith("🚨")


def test_maybe_an_emergency_gets_one_line_of_numbers_and_the_answer_unchanged(ctx):
    """Below the firm alarm the hazard is a guess: the numbers are offered in one line, with
    no safety advice for a danger nobody described, and the answer follows as it would."""
    from bot import emergency
    from bot.wechat import render

    plain = answering.answer("老板拖欠工资咋个整", ctx)
    assert plain.emergency is None
    maybe = replace(
        plain, emergency=emergency.Emergency("domestic_violence", ("110报警",), 0.2, False)
    )
    text = render.answer_text(maybe, base=ctx.base, office="测试镇司法所")
    expected = render.answer_text(plain, base=ctx.base, office="测试镇司法所")
    assert text == "⚠️如果现在有人有危险，请立即拨打：110报警\n\n" + expected
    assert render.SAFETY["domestic_violence"] not in text
    firm = replace(maybe, emergency=replace(maybe.emergency, firm=True, probability=0.9))
    assert render.SAFETY["domestic_violence"] in render.answer_text(
        firm, base=ctx.base, office="测试镇司法所"
    )


def test_an_emergency_reply_does_not_depend_on_retrieval(ctx):
    """No embedding model, no confidence model, no snippet matched: the numbers still come."""
    bare = answering.Context(base=ctx.base, detector=ctx.detector)
    result = ask("救命 他拿着刀在砸我家门", ctx=bare)
    assert result.text.startswith("🚨") and "110" in result.text.splitlines()[0]


# -- beyond the curated base -------------------------------------------------------------------


def test_a_question_beyond_the_base_gets_possibly_related_articles_never_an_answer(ctx):
    if ctx.articles_index is None:
        pytest.skip("no full-text vectors shipped in content/embeddings")
    result = ask("兵役法规定义务兵要服几年役", ctx=ctx)  # no snippet quotes 兵役法
    assert result.outcome == "suggestions", result.outcome
    assert 1 <= len(result.suggestions) <= 3
    assert "尚未经法律顾问解释" in result.text and "12348" in result.text
    assert "1. 《中华人民共和国兵役法》第二十六条" in result.text  # of the law it names
    assert not result.text.startswith("《")  # never presented as the answer


def test_suggestions_are_offered_only_to_a_message_that_reads_like_a_legal_question(ctx):
    """The full text matches almost anything ("护照在哪里办" finds 护照法): its articles go
    only to messages the domain gate scores at least at its suggestions bar."""
    if ctx.articles_index is None or ctx.domain is None:
        pytest.skip("no full-text vectors shipped in content/embeddings")
    question = "家里老人去世了必须火化吗 能不能土葬"  # no snippet on funerals
    qvec = ctx.embedder.query(search.normalise(question))
    score = ctx.domain.score(qvec, ctx.base.semantic.questions)
    assert ctx.domain.passes(score)
    strict, lenient = copy.copy(ctx.domain), copy.copy(ctx.domain)
    strict.suggest_at, lenient.suggest_at = score + 0.01, score - 0.01
    strict, lenient = replace(ctx, domain=strict), replace(ctx, domain=lenient)
    refused = answering.answer(question, strict)
    assert refused.outcome == "no_answer" and not refused.suggestions
    assert answering.answer(question, lenient).outcome == "suggestions"


def test_a_message_that_names_a_law_is_a_legal_question_however_far_from_the_base(ctx):
    """The domain gate learnt legal questions from the snippets' phrasings; a question about
    a law no snippet quotes reads unlike them, but naming that law settles it."""
    if ctx.articles_index is None:
        pytest.skip("no full-text vectors shipped in content/embeddings")
    named = ask("献血法规定多大年纪可以献血", ctx=ctx)
    assert named.outcome == "suggestions"
    assert all(s.article.law == "中华人民共和国献血法" for s in named.suggestions)
    # a law the base covers is no such sign: the campaign is not a legal question
    campaign = ask("民法典宣传月村里搞啥子活动", ctx=ctx)
    assert campaign.outcome == "no_answer" and not campaign.suggestions
    # a two-character name is an everyday word too: no citations for a school poster
    poster = ask("宪法宣传日的手抄报咋个排版好看 娃儿急得哭", ctx=ctx)
    assert poster.outcome == "no_answer" and not poster.suggestions and not poster.options


def test_a_long_rambling_story_still_finds_its_law(ctx):
    # over three times what one message may send to the model: squeezed, not cut blind
    story = (
        "我跟你说嘛，我在外头鞋厂做了三年多了，一直是计件的，老板从来不给我们买社保，"
        "前两个月又说生意不好工资要等到过年才发，我现在想辞职回来带娃娃，"
        "他说辞职就不给最后一个月的工资，这个到底咋个办嘛"
    )
    result = ask(story, ctx=ctx)
    assert result.outcome in ("answered", "choices")
    laws = offered_laws(result)
    assert laws[0].removeprefix("中华人民共和国") in (
        "劳动法",
        "劳动合同法",
        "保障农民工工资支付条例",
        "社会保险法",
    ), laws
