"""Every sentence residents read, in one place, in Simplified Chinese: Answer → reply text.

Services return data (`bot.answering.Answer`); only this module words it for the residents'
channel. Nothing a resident wrote is echoed back, so there is nothing here to escape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.answering import Answer
    from bot.emergency import Emergency
    from bot.lawbase import LawBase, Snippet

WELCOME = (
    "您好，欢迎关注！这里是乡镇普法小助手。\n"
    "遇到法律上的烦心事，直接打字问我就行，比如：\n"
    "· 老板拖欠工资咋个整\n"
    "· 孩子不想读书了能去打工吗\n"
    "· 离婚了彩礼要退吗\n"
    "我会告诉您法律怎么规定（原文引用法条）、用大白话讲清楚，并告诉您去哪里找人帮忙。\n"
    "也可以点下方菜单按主题查看。\n"
    "需要真人帮助：{office}；12348公共法律服务热线（免费）。\n"
    "遇到打架、火灾、有人受伤等紧急情况，请先拨打110、119、120！"
)

NON_TEXT = (
    "抱歉，我目前只能看懂文字和语音转成的文字。\n"
    "请用文字把您的问题告诉我，比如“老板拖欠工资怎么办”。\n"
    "需要真人帮助：12348公共法律服务热线，或到{office}咨询。"
)

VOICE_UNRECOGNISED = "抱歉，这条语音没能识别出文字。请再说一遍，或者直接打字告诉我您的问题。"

EMPTY = "请把您想问的事用一句话告诉我，比如“土地承包到期了怎么办”。"

NO_ANSWER = (
    "抱歉，这个问题普法知识库里还没有可靠的答案。为免误导您，这里不引用法条。\n"
    "建议您：\n"
    "· 拨打12348公共法律服务热线（免费咨询）\n"
    "· 到{office}当面咨询\n"
    "也可以换个说法，说清楚是什么事，比如“老板拖欠工资”“离婚孩子归谁”。"
)

FALLBACK = (
    "抱歉，系统刚才出了点问题，没能给您查到答案。\n"
    "请稍后再试，或拨打12348公共法律服务热线，也可到{office}咨询。"
)

FULLTEXT = (
    "📖{citation}（现行文本，{version}版）：\n“{quote}”\n\n"
    "💡这一条的大白话解释还没有写好，已记录下来请法律顾问补充。"
    "想知道它和您的事有什么关系，可以直接描述您遇到的情况再问我。"
)
NO_SUCH_ARTICLE = (
    "《{law}》没有{label}（这部法律共{count}条）。请核对一下条号，或者直接说您遇到的事。"
)
NOT_COLLECTED = (
    "{citation}：这部法规的全文还没有收录，暂时只能回答关于它的常见问题。您可以直接说遇到了什么事。"
)
ARTICLE_WITHHELD = "{citation}：我们这里暂时没有核对过的现行文本（{why}），为免误导，不引用旧条文。"

CHOICES_HEAD = "您问的可能是下面几件事，请回复数字查看："
CHOICES_TAIL = "都不是？可以换个说法再问，或拨打12348。"
CHOICE_EXPIRED = "这个数字对应的选项已过期，请把您的问题再说一遍。"
MORE_TAIL = "（内容较长，回复“更多”查看余下部分）"
NO_MORE = "没有更多内容了。还有别的问题，直接打字问我。"

EMERGENCY = "🚨紧急情况请立即拨打：{numbers}"
EMERGENCY_MAYBE = "⚠️如果现在有人有危险，请立即拨打：{numbers}"
# One line of first aid or safety per hazard, under the numbers (standard public advice).
SAFETY = {
    "suicide": "请不要让他一个人待着，收走农药、绳子、刀具等危险物品，陪着他等救护车。",
    "poisoning": "把吃剩的菌子、农药瓶或药盒带上一起去医院；煤气中毒先开窗通风、把人移到外面，不要开关电器。",
    "forest_fire": "不要上山扑火，往山下、逆风、没有草木的地方撤，报警时说清在哪座山、哪个村。",
    "house_fire": "先把人带出来，不要回去拿东西；煤气着火先关阀门，用湿毛巾捂住口鼻、弯腰走。",
    "scam_in_progress": "马上挂断电话，不要转账、不要说验证码、不要开屏幕共享；公安不会要求把钱转到“安全账户”。",
    "kidnap_extortion": "不要独自去交钱，记下对方电话、车牌和说的话，立即报警。",
    "child_missing": "马上报警，不用等24小时；说清孩子穿什么衣服、最后在哪里出现，同时发动亲戚邻居分头找。",
    "sexual_assault": "先到安全的地方，报警；不要洗澡、不要换掉衣服，保留证据。",
    "robbery": "先保证人身安全，不要硬拼，记住对方样子和逃跑方向，立即报警。",
    "domestic_violence": "先到安全的地方（邻居家、村委会），带上孩子；报警后可以申请人身安全保护令。",
    "violence": "先躲到安全的地方，不要上前硬拼，报警时说清在哪个村、几个人、有没有刀。",
    "drowning": "不会水不要贸然下水，喊人帮忙，找竹竿、绳子、救生圈递过去。",
    "electrocution": "先拉闸断电，不要直接用手去拉触电的人，用干木棍挑开电线。",
    "landslide_flood": "马上往高处、远离山坡和河沟的地方撤，不要回屋拿东西。",
    "traffic": "打开双闪、放好警示牌，不要随便挪动伤员，保护好现场。",
    "animal": "被蛇咬伤不要跑动，不要用嘴吸，记住蛇的样子，尽快送医院；被狗咬伤用清水冲洗伤口15分钟后去打疫苗。",
    "fall": "不要随便搬动摔伤的人，特别是伤到头、脖子、腰的，等救护车来。",
    "child_hurt": "先止血、保护好孩子，送医院；孩子被人打伤的，报警并保留伤情照片。",
    "sudden_illness": "让病人平躺、保持呼吸通畅，不要喂水喂药；会心肺复苏的可以先做。",
}
EMERGENCY_NO_LAW = (
    "请先保护好自己和家人的安全，拨通电话后说清楚在哪个村、发生了什么。\n"
    "事后需要法律帮助：12348公共法律服务热线（免费），或到{office}。"
)
HELP_HEAD = "☎️找人帮忙（普法参考，不代替律师意见）："
SUGGESTIONS_HEAD = (
    "这个问题普法知识库里还没有法律顾问写好的解答。按您的说法，下面这些法条可能相关"
    "（系统检索，尚未经法律顾问解释，不一定适用于您的情况），回复数字查看原文："
)
SUGGESTIONS_TAIL = "拿不准的，请拨打12348公共法律服务热线（免费），或到{office}当面咨询。"
OTHERS_HEAD = "您还问到（回复数字查看）："
SLOW_DOWN = (
    "您发消息太快了，请过一两分钟再问，我会接着回答。\n"
    "有危险请马上打电话：报警110，火警119，急救120。\n"
    "需要真人帮助：{office}；12348公共法律服务热线（免费）。"
)
GREETING = (
    "您好！我是乡镇普法小助手，遇到法律上的事可以直接打字问我，比如“老板拖欠工资咋个整”。\n"
    "需要真人帮助：{office}；12348公共法律服务热线（免费）。"
)
THANKS = "不客气！还有别的事随时问我。觉得回答有用，可以回复“有用”；不对的话回复“没用”，我们会请法律顾问改进。"
WHO_AM_I = (
    "我是本乡镇普法公众号的自动回复小助手，按法律原文回答常见法律问题，并告诉您找谁帮忙。"
    "我不是律师，复杂的事请找真人：{office}；12348公共法律服务热线（免费）。"
)
HUMAN = (
    "需要找人当面帮忙，可以：\n"
    "· {office}\n"
    "· 12348公共法律服务热线（免费，法律咨询）\n"
    "· 经济困难请不起律师的，可以到县法律援助中心申请法律援助\n"
    "· 邻里、家庭纠纷可以找村（社区）人民调解委员会调解\n"
    "情况紧急请直接拨打110。"
)
# A request for a person (bot/requests.py): three short questions, then what happens next.
REQUEST_START = {
    "person": HUMAN + "\n\n也可以让工作人员打电话给您，回答三个小问题就行（随时回复“取消”结束）。",
    "mediation": "好的，帮您申请人民调解（免费）。回答三个小问题就行，随时回复“取消”结束。",
    "legal_aid": (
        "好的，帮您登记法律援助（经济困难请不起律师的，可以免费得到律师帮助）。"
        "回答三个小问题就行，随时回复“取消”结束。"
    ),
}
REQUEST_ASK = {
    "about": "① 是什么事？用一两句话说说就行。",
    "village": "② 您是哪个村（社区）的？",
    "phone": "③ 留个电话，工作人员好打给您（手机、座机都行）。不想留请回复“不留”。",
}
REQUEST_PHONE_AGAIN = (
    "这个号码好像不太对，请再发一次，比如 13812345678 或 0871-62345678。不想留请回复“不留”。"
)
REQUEST_KINDS = {"person": "找人帮忙", "mediation": "调解", "legal_aid": "法律援助"}
REQUEST_SAVED = (
    "好的，您的求助（{kind}）已经记下了。\n"
    "工作人员会在工作日内打您留的电话（{phone}）联系您，请留意接听。\n"
    "也可以直接联系：{office}\n"
    "着急的事请拨打12348公共法律服务热线（免费）；有危险请马上拨打110、119、120。"
)
REQUEST_SAVED_NO_PHONE = (
    "好的，您的求助（{kind}）已经记下了。您没有留电话，有进展会在您下次给我发消息时告诉您；"
    "也可以在工作日直接联系：{office}\n"
    "着急的事请拨打12348公共法律服务热线（免费）；有危险请马上拨打110、119、120。"
)
REQUEST_NOT_SAVED = (
    "抱歉，系统刚才出了点问题，没能记下您的求助。请直接联系：{office}\n"
    "或拨打12348公共法律服务热线（免费）。"
)
REQUEST_CANCELLED = "好的，已经取消了，什么也没有记下。有事随时找我，或直接联系：{office}"
REQUEST_PAUSED = "（刚才的求助先放一放。安全了再接着回答：{ask}不需要了请回复“取消”。）"
REQUEST_PROGRESS = "您的求助（{kind}）已有进展：{status}"
REQUEST_STATUSES = {
    "contacted": "已联系",
    "mediated": "已调解",
    "referred": "已转交",
    "closed": "已办结",
}
FEEDBACK_THANKS = "谢谢您的反馈！我们记下了，会请法律顾问看一看。"
FEEDBACK_SORRY = (
    "抱歉没帮上忙，我们记下了，会请法律顾问改进这条回答。\n"
    "您可以换个说法再问，或拨打12348公共法律服务热线，也可到{office}当面咨询。"
)
WHICH_OFFICE = "关于刚才说的事，可以找：\n{help}"
ABOUT_TOPIC = "关于刚才说的事：\n"
EXPLAIN_HEAD = "💡说明："
MENU_HEAD = "【{topic}】常见问题，回复数字查看："
MENU_UNKNOWN = "这个菜单暂时没有内容。您可以直接打字提问。"

# Menu CLICK keys → topic tags of the snippet base (deploy/menu.json creates the buttons).
MENU_TOPICS = {
    "TOPIC_WAGES": ("工资劳动", ("工资", "劳动合同", "工伤", "劳动争议", "社保")),
    "TOPIC_SCHOOL": ("孩子上学", ("辍学", "童工", "未成年人", "家庭教育")),
    "TOPIC_FAMILY": ("婚姻家庭", ("婚姻", "离婚", "彩礼", "赡养", "继承", "家暴", "监护")),
    "TOPIC_LAND": ("土地房屋", ("土地承包", "宅基地", "土地征收", "相邻关系")),
    "TOPIC_SAFETY": ("安全防火", ("安全生产", "森林防火", "消防", "交通安全", "应急")),
    "TOPIC_MONEY": ("借钱消费", ("借款", "担保", "合同", "消费", "农资", "诈骗")),
}
MENU_HELP_KEY = "HELP_CONTACT"


def office_line(name: str, phone: str | None, address: str | None, hours: str | None) -> str:
    parts = [name]
    if phone:
        parts.append(f"电话{phone}")
    if address:
        parts.append(f"地址：{address}")
    if hours:
        parts.append(f"（{hours}）")
    return " ".join(parts)


def help_lines(items: Iterable[tuple[str, str | None]]) -> str:
    return "\n".join(f"· {name}{' ' + phone if phone else ''}" for name, phone in items)


def maybe_in_danger(alarm: Emergency, reply: str) -> str:
    """A reply to someone who may be in danger: one line of numbers, then the reply as it is
    (no safety advice for a hazard that is only a guess)."""
    return EMERGENCY_MAYBE.format(numbers="、".join(alarm.numbers)) + "\n\n" + reply


def answer_text(ans: Answer, *, base: LawBase, office: str, lead: str = "") -> str:
    """The whole reply to one answered message: emergency numbers first, always; `lead`
    opens the answer itself ("关于刚才说的事：")."""
    body = lead + _body(ans, base=base, office=office)
    alarm = ans.emergency
    if alarm is None:
        return body
    if not alarm.firm:
        return maybe_in_danger(alarm, body)
    first = EMERGENCY.format(numbers="、".join(alarm.numbers))
    tip = SAFETY.get(alarm.kind)
    if tip:
        first += "\n" + tip
    if ans.outcome == "no_answer" and ans.asked is None:  # no law to add: safety, then people
        body = EMERGENCY_NO_LAW.format(office=office)
    return first + "\n\n" + body


def _body(ans: Answer, *, base: LawBase, office: str) -> str:
    if ans.asked is not None and ans.snippet is None:
        return article_text(ans, office=office)
    if ans.outcome == "answered" and ans.snippet is not None:
        text = snippet_text(ans.snippet, base=base, office=office)
        if ans.others:
            lines = [OTHERS_HEAD]
            lines += [
                f"{n}. {s.summary}（{s.law.short}{s.article}）" for n, s in enumerate(ans.others, 1)
            ]
            text += "\n\n" + "\n".join(lines)
        return text
    if ans.outcome == "choices":
        return choices_text(ans.options)
    if ans.outcome == "suggestions":
        lines = [SUGGESTIONS_HEAD]
        for n, s in enumerate(ans.suggestions, start=1):
            gist = s.article.text.replace("\n", "")
            gist = gist if len(gist) <= 36 else gist[:36] + "……"
            lines.append(f"{n}. {s.citation}：{gist}")
        lines.append(SUGGESTIONS_TAIL.format(office=office))
        return "\n".join(lines)
    return NO_ANSWER.format(office=office)


def snippet_text(snippet: Snippet, *, base: LawBase, office: str) -> str:
    """One snippet in full: direct answer, exact quote, plain words, where to go."""
    return (
        f"{snippet.summary}\n\n"
        f"📖{snippet.citation}：\n“{snippet.quote}”\n\n"
        f"{EXPLAIN_HEAD}{snippet.explain}\n\n"
        f"{HELP_HEAD}\n{help_text(snippet, base=base, office=office)}"
    )


def article_text(ans: Answer, *, office: str) -> str:
    """An article asked for by number (or picked from suggestions) that has no snippet."""
    wanted = ans.asked
    assert wanted is not None
    citation = f"《{wanted.law}》{wanted.label}"
    tail = f"{HELP_HEAD}\n· {office}\n· 12348公共法律服务热线（免费）"
    if wanted.article is not None and wanted.law_text is not None:
        body = FULLTEXT.format(
            citation=citation, version=wanted.law_text.version, quote=wanted.article.text
        )
    elif wanted.missing and wanted.law_text is not None:
        count = len(wanted.law_text.articles)
        body = NO_SUCH_ARTICLE.format(law=wanted.law, label=wanted.label, count=count)
    elif not wanted.collected:
        body = NOT_COLLECTED.format(citation=citation)
    else:
        body = ARTICLE_WITHHELD.format(citation=citation, why=wanted.withheld or "")
    return f"{body}\n\n{tail}"


def choices_text(options: list[Snippet]) -> str:
    lines = [CHOICES_HEAD]
    for number, s in enumerate(options, start=1):
        lines.append(f"{number}. {s.summary}（{s.law.short}{s.article}）")
    lines.append(CHOICES_TAIL)
    return "\n".join(lines)


def help_text(snippet: Snippet, *, base: LawBase, office: str) -> str:
    """The offices a snippet names (two at most), the township's 司法所, and 12348."""
    items: list[tuple[str, str | None]] = []
    for key in snippet.help:
        if key == "司法所":
            continue  # the township's own office is listed with its details below
        o = base.offices[key]
        items.append((o.name, o.phone if o.phone and o.phone not in o.name else None))
    items = items[:2]
    lines = [help_lines(items)] if items else []
    lines.append(f"· {office}")
    if not any("12348" in name for name, _ in items):
        lines.append("· 12348公共法律服务热线（免费）")
    return "\n".join(lines)
