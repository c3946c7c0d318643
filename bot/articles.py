"""Finds the article a resident asks for by number: "劳动法第五十条", "民法典1042条".

A curated snippet for that article wins (it has plain words); otherwise the full-text tier
quotes the current article exactly; an article the full text must not quote (superseded,
damaged in the source) or that does not exist is said to be so, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.fulltext import Article, FullText, LawText
from bot.lawbase import LawBase, Snippet
from bot.numerals import article_label, from_chinese
from bot.search import normalise

_NUMBER = re.compile(
    r"第?\s*([0-9]{1,4}|[零一二三四五六七八九十百千]{1,8})\s*条(之[一二三四五六七八九十])?"
)
# Names residents and officials use that are not simply the name without 中华人民共和国.
ALIASES = {
    "道交法": "中华人民共和国道路交通安全法",
    "治安法": "中华人民共和国治安管理处罚法",
    "治安处罚法": "中华人民共和国治安管理处罚法",
    "民诉法": "中华人民共和国民事诉讼法",
    "刑诉法": "中华人民共和国刑事诉讼法",
    "未保法": "中华人民共和国未成年人保护法",
    "消法": "中华人民共和国消费者权益保护法",
    "消保法": "中华人民共和国消费者权益保护法",
    "个保法": "中华人民共和国个人信息保护法",
    "反诈法": "中华人民共和国反电信网络诈骗法",
    "反家暴法": "中华人民共和国反家庭暴力法",
    "安全生产法": "中华人民共和国安全生产法",
    "土地承包法": "中华人民共和国农村土地承包法",
    "村委会组织法": "中华人民共和国村民委员会组织法",
}


@dataclass(frozen=True)
class Asked:
    law: str  # full name
    label: str  # 第五十条
    snippet: Snippet | None = None
    article: Article | None = None
    law_text: LawText | None = None
    withheld: str | None = None  # why the full text is not quoted
    missing: bool = False  # the law has no such article
    collected: bool = True  # False: a regulation whose full text Pufa does not have


def asked(text: str, *, base: LawBase, full: FullText | None) -> Asked | None:
    """The article `text` asks for by number, resolved; None when it names no known law."""
    if "条" not in text:
        return None  # most messages: no article number, nothing to look up
    text = normalise(text).replace(" ", "").replace("《", "").replace("》", "")
    names = _names(base, full)
    for m in _NUMBER.finditer(text):
        law = _law_before(text[: m.start()].rstrip("的"), names)
        if law is None:
            continue
        number = m.group(1)
        n = int(number) if number.isdigit() else from_chinese(number)
        if not 0 < n < 10000:
            return None
        return resolve(law, article_label(n, m.group(2) or ""), base=base, full=full)
    return None


def resolve(law: str, label: str, *, base: LawBase, full: FullText | None) -> Asked:
    for s in base.snippets:
        if s.law.name == law and s.article == label:
            return Asked(law, label, snippet=s)
    law_text = full.laws.get(law) if full else None
    if law_text is None:
        return Asked(law, label, collected=False)
    if label in law_text.withheld:
        return Asked(law, label, law_text=law_text, withheld=law_text.withheld[label])
    article = law_text.articles.get(label)
    if article is None:
        return Asked(law, label, law_text=law_text, missing=True)
    return Asked(law, label, article=article, law_text=law_text)


def named_law(text: str, *, full: FullText | None) -> str | None:
    """The law of the full text a message names ("献血法规定多大可以献血"), by a name of three
    characters or more (two-character names such as 宪法 are everyday words too: "宪法宣传日的
    手抄报"); the longest name wins (劳动合同法 over 劳动法)."""
    candidates = [*(full.names if full else ()), *ALIASES.items()]
    found = [(n, law) for n, law in candidates if len(n) >= 3 and n in text]
    return max(found, key=lambda f: len(f[0]))[1] if found else None


def _names(base: LawBase, full: FullText | None) -> dict[str, str]:
    names: dict[str, str] = {}
    for law in full.laws.values() if full else ():
        names[law.name] = law.name
        names[law.short] = law.name
    for s in base.snippets:
        names[s.law.name] = s.law.name
        names[s.law.short] = s.law.name
        names[s.law.name.removeprefix("中华人民共和国")] = s.law.name
    names.update(ALIASES)
    return names


def _law_before(prefix: str, names: dict[str, str]) -> str | None:
    """The longest known law name that ends right where the article number begins."""
    for size in range(min(len(prefix), 30), 1, -1):
        law = names.get(prefix[-size:])
        if law is not None:
            return law
    return None
