"""Recognises messages that describe an emergency happening now, and names the numbers to call.

An emergency reply puts the numbers on its first line, before any law: a resident typing
"山上着火了" needs 119 and 12119, not 森林防火条例. Patterns are deliberately broad; a false
alarm costs one extra line, a missed one costs much more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Emergency:
    kind: str
    numbers: tuple[str, ...]  # "110报警" … in the order to call


_RULES: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
    (
        "suicide",
        re.compile(r"不想活|活不下去|自杀|轻生|寻短见|跳楼|跳河|喝农药|吃农药|服毒|割腕"),
        ("120急救", "110报警", "12356心理援助热线"),
    ),
    (
        "forest_fire",
        re.compile(
            r"(山|林|坡|荒)[^，。,.!！?？]{0,6}(着火|起火|失火|烧起来|冒烟|火烧)|山火|森林火|火烧山"
        ),
        ("119火警", "12119森林火警"),
    ),
    (
        "fire",
        re.compile(r"着火|起火|失火|火灾|烧起来了|爆炸|煤气泄漏|燃气泄漏|天然气泄漏"),
        ("119火警",),
    ),
    (
        "missing_child",
        re.compile(
            r"(孩子|娃儿?|小孩|儿子|女儿|闺女|姑娘|小娃)[^，。,.!！?？]{0,6}"
            r"(不见了|丢了|走丢|找不到|找不着|被拐|拐走|被抱走|失踪|没回家)"
        ),
        ("110报警",),
    ),
    (
        "violence",
        re.compile(
            r"动刀|拿刀|砍人|砍我|捅人|捅我|杀人|要杀|打死|正在打|又在打|在打我|打我|打人了|"
            r"救命|绑架|抢劫|强奸|性侵|持刀|拿枪|非法拘禁|关起来不让走"
        ),
        ("110报警",),
    ),
    (
        "accident",
        re.compile(
            r"车祸|撞人了|被车撞|翻车|溺水|落水|掉河里|掉水里|塌方|垮塌|埋人|触电|昏迷|大出血"
        ),
        ("120急救", "110报警", "122交通事故报警"),
    ),
]


def detect(text: str) -> Emergency | None:
    """The first matching emergency in `text` (most life-threatening first), or None."""
    for kind, pattern, numbers in _RULES:
        if pattern.search(text):
            if kind == "violence" and re.search(r"老公|丈夫|男人|老婆|婆娘|家暴|家里人|老汉", text):
                numbers = (*numbers, "12338妇女维权热线")
            if kind == "accident" and not re.search(r"车祸|撞|翻车", text):
                numbers = tuple(n for n in numbers if not n.startswith("122"))
            return Emergency(kind, numbers)
    return None
