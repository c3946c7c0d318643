"""Every sentence residents read, in one place, in Simplified Chinese."""

from __future__ import annotations

from collections.abc import Iterable

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
EMERGENCY_NO_LAW = (
    "请先保护好自己和家人的安全，拨通电话后说清楚在哪个村、发生了什么。\n"
    "事后需要法律帮助：12348公共法律服务热线（免费），或到{office}。"
)
HELP_HEAD = "☎️找人帮忙（普法参考，不代替律师意见）："
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
