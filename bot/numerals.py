"""Chinese numerals for article numbers: 50 ⇄ 五十, as laws number their articles."""

from __future__ import annotations

import re

_DIGITS = "零一二三四五六七八九"
_ARTICLE = re.compile(r"^第([零一二三四五六七八九十百千]+)条(之[一二三四五六七八九十]+)?$")


def to_chinese(n: int) -> str:
    """1 → 一, 10 → 十, 15 → 十五, 105 → 一百零五, 1260 → 一千二百六十 (as laws write them)."""
    if not 0 < n < 10000:
        raise ValueError(f"article number out of range: {n}")
    units = [(1000, "千"), (100, "百"), (10, "十")]
    out, zero = "", False
    for value, name in units:
        digit, n = divmod(n, value)
        if digit:
            if zero:
                out += "零"
            out += ("" if (value == 10 and digit == 1 and not out) else _DIGITS[digit]) + name
            zero = False
        elif out:
            zero = True
    if n:
        out += ("零" if zero else "") + _DIGITS[n]
    return out


def from_chinese(text: str) -> int:
    """五十 → 50, 一百零五 → 105, 十五 → 15."""
    total, current = 0, 0
    for ch in text:
        if ch in _DIGITS:
            current = _DIGITS.index(ch)
        elif ch in "十百千":
            total += (current or 1) * {"十": 10, "百": 100, "千": 1000}[ch]
            current = 0
        else:
            raise ValueError(f"not a Chinese numeral: {text}")
    return total + current


def is_article_label(label: str) -> bool:
    """Is `label` written as laws number articles (第五十条, 第二百七十六条之一)?"""
    m = _ARTICLE.match(label)
    return bool(m) and to_chinese(from_chinese(m.group(1))) == m.group(1)


def article_label(n: int, suffix: str = "") -> str:
    return f"第{to_chinese(n)}条{suffix}"
