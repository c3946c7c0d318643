"""Residents' phone, ID and card numbers are masked in every format they type, and nothing else.

The formats are generated: random numbers, cut into random groups, joined by random separators,
in ASCII, full-width or Chinese-numeral digits, inside random Chinese text. What must hold is
what an adviser reading the log would notice: the hidden digits are gone, the kept parts are
those promised, and the words around the number are untouched.
"""

from __future__ import annotations

import io
import logging
import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.privacy import MaskingFilter, mask

EXAMPLES = settings(max_examples=200, deadline=None)
HANZI = {
    "0": "〇零○",
    "1": "一幺",
    "2": "二贰",
    "3": "三叁",
    "4": "四肆",
    "5": "五伍",
    "6": "六陆",
    "7": "七柒",
    "8": "八捌",
    "9": "九玖",
}
NUMERALS = {numeral: digit for digit, numerals in HANZI.items() for numeral in numerals}
DIGITS = set("0123456789") | set(NUMERALS)
SEPARATORS = [
    " ",
    "\u3000",
    "\xa0",
    "\t",
    "-",
    ".",
    "_",
    "/",
    "－",
    "．",
    "＿",
    "／",
    "—",
    "  ",
    " - ",
]
# Words around a number: Chinese characters that are not numerals nor units (a card followed
# by 元 is read as a list of amounts, by design), and punctuation that separates nothing.
UNITS = set("元块万千百亿年月日号个岁次天分秒米斤亩人户")
CHINESE = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5).filter(
    lambda c: c not in NUMERALS and c not in UNITS
)
WORDS = st.text(st.one_of(CHINESE, st.sampled_from("，。！？：；、")), max_size=12)
CUES = ["电话", "座机", "手机号码", "联系电话：", "打", "tel:", "TEL ", "Tel：", "拨打 "]


def digits_of(text: str) -> str:
    """The digits a reader could recover: NFKC digits and Chinese numerals, in order."""
    folded = (unicodedata.normalize("NFKC", char) for char in text)
    return "".join(NUMERALS.get(char, char) for char in folded if char in DIGITS)


def digit_strings(size: int, first: str = "0123456789") -> st.SearchStrategy[str]:
    return st.builds(
        str.__add__,
        st.sampled_from(first),
        st.text("0123456789", min_size=size - 1, max_size=size - 1),
    )


@st.composite
def written(draw: st.DrawFn, digits: str, no_cut_before: int = 2) -> str:
    """`digits` as a resident might type them: grouped, separated, full-width or in numerals.

    Groups follow the rule the scanner trusts: the first has two digits or more, the others
    three or more; no cut falls inside the first `no_cut_before` digits (an area code, or the
    start of a number after +86, which is then not the first group).
    """
    cuts, last = [], 0
    for cut in sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=5))):
        fits = cut - last >= (2 if last == 0 else 3) and len(digits) - cut >= 3
        if fits and cut >= no_cut_before:
            cuts.append(cut)
            last = cut
    groups = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    text = draw(styled(groups[0]))
    for group in groups[1:]:
        text += draw(st.sampled_from(SEPARATORS)) + draw(styled(group))
    return text


@st.composite
def styled(draw: st.DrawFn, digits: str) -> str:
    """Each digit in ASCII, full-width or a Chinese numeral: one style, or mixed."""
    styles = ["ascii", "wide", "hanzi"]
    style = draw(st.sampled_from([*styles, "mixed"]))
    out = ""
    for digit in digits:
        choice = draw(st.sampled_from(styles)) if style == "mixed" else style
        if choice == "wide":
            out += chr(ord(digit) + 0xFEE0)
        elif choice == "hanzi":
            out += draw(st.sampled_from(HANZI[digit]))
        else:
            out += digit
    return out


# --- generated numbers ---------------------------------------------------------------------

mobiles = digit_strings(10, "3456789").map(lambda rest: "1" + rest)


@EXAMPLES
@given(before=WORDS, after=WORDS, number=mobiles, data=st.data())
def test_a_mobile_keeps_its_first_3_and_last_4_digits(before, after, number, data):
    typed = data.draw(written(number))
    masked = mask(before + typed + after)
    assert masked == f"{before}{number[:3]}****{number[7:]}{after}"
    assert number not in digits_of(masked)


@EXAMPLES
@given(
    before=WORDS,
    after=WORDS,
    number=mobiles,
    prefix=st.sampled_from(["+86", "86", "0086", "＋86", "＋８６"]),
    data=st.data(),
)
def test_a_mobile_with_the_country_code_is_masked_whole(before, after, number, prefix, data):
    typed = prefix + data.draw(st.sampled_from(SEPARATORS)) + data.draw(written(number, 3))
    masked = mask(before + typed + after)
    assert masked == f"{before}+86 {number[:3]}****{number[7:]}{after}"


birth_dates = st.dates(date(1920, 1, 1), date(2024, 12, 31))
regions = digit_strings(6, "12345678")


@EXAMPLES
@given(
    before=WORDS,
    after=WORDS,
    region=regions,
    born=birth_dates,
    serial=st.text("0123456789", min_size=3, max_size=3),
    check=st.sampled_from("0123456789XxＸ"),
    data=st.data(),
)
def test_an_id_number_keeps_only_its_region_code(before, after, region, born, serial, check, data):
    number = region + born.strftime("%Y%m%d") + serial
    gap = data.draw(st.sampled_from(["", " ", "-"])) if check in "XxＸ" else ""
    typed = data.draw(written(number)) + gap + check
    masked = mask(before + typed + after)
    assert masked == f"{before}{region}{'*' * 12}{after}"
    assert digits_of(masked) == region


@EXAMPLES
@given(before=WORDS, after=WORDS, region=regions, born=birth_dates, data=st.data())
def test_an_old_15_digit_id_number_keeps_only_its_region_code(before, after, region, born, data):
    number = region + born.strftime("%y%m%d") + data.draw(digit_strings(3))
    masked = mask(before + data.draw(written(number)) + after)
    assert masked == f"{before}{region}{'*' * 9}{after}"


@st.composite
def bank_cards(draw: st.DrawFn) -> str:
    """16, 17 or 19 digits that start like a card (18-digit ones are in the table below)."""
    start = draw(st.sampled_from(["62", "4", "5", "9", "3"]))
    size = draw(st.sampled_from([16, 17, 19]))
    rest = size - len(start)
    return start + draw(st.text("0123456789", min_size=rest, max_size=rest))


@st.composite
def card_written(draw: st.DrawFn, digits: str) -> str:
    """A card as printed on it or in a bank app: in fours (the last group what is left), or 6 + rest."""
    if draw(st.booleans()):
        groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
        if len(groups[-1]) < 3:
            groups[-2:] = [groups[-2] + groups[-1]]
    else:
        groups = [digits[:6], digits[6:]]
    separator = draw(st.sampled_from(SEPARATORS))
    return separator.join(draw(styled(group)) for group in groups)


@EXAMPLES
@given(before=WORDS, after=WORDS, number=bank_cards(), data=st.data())
def test_a_bank_card_keeps_its_first_4_and_last_4_digits(before, after, number, data):
    typed = data.draw(st.one_of(card_written(number), styled(number)))
    masked = mask(before + typed + after)
    assert masked == f"{before}{number[:4]}{'*' * (len(number) - 8)}{number[-4:]}{after}"
    assert digits_of(masked) == number[:4] + number[-4:]


two_digit_areas = st.sampled_from(["010", "020", "021", "022", "023", "024", "025", "027", "029"])
three_digit_areas = digit_strings(3, "3456789").map(lambda code: "0" + code)


@st.composite
def landlines(draw: st.DrawFn) -> tuple[str, str]:
    """(area code, local number): 8 digits after 010/02x, 7 or 8 after the others."""
    if draw(st.booleans()):
        return draw(two_digit_areas), draw(digit_strings(8, "23456789"))
    return draw(three_digit_areas), draw(digit_strings(draw(st.sampled_from([7, 8])), "23456789"))


@EXAMPLES
@given(before=WORDS, after=WORDS, landline=landlines(), data=st.data())
def test_a_landline_keeps_its_area_code_and_last_4_digits(before, after, landline, data):
    area, local = landline
    if data.draw(st.booleans()):
        opening, closing = data.draw(st.sampled_from([("(", ")"), ("（", "）")]))
        typed = opening + data.draw(styled(area)) + closing + data.draw(written(local, 3))
    else:
        typed = data.draw(written(area + local, no_cut_before=len(area)))
    masked = mask(before + typed + after)
    assert masked == f"{before}{area}-{'*' * (len(local) - 4)}{local[-4:]}{after}"


@EXAMPLES
@given(
    before=WORDS,
    cue=st.sampled_from(CUES),
    local=st.sampled_from([7, 8]).flatmap(lambda size: digit_strings(size, "23456789")),
    data=st.data(),
)
def test_a_local_number_after_a_phone_cue_keeps_its_last_4_digits(before, cue, local, data):
    text = before + cue + data.draw(written(local)) + "，找王师傅"
    masked = mask(text)
    assert masked == f"{before}{cue}{'*' * (len(local) - 4)}{local[-4:]}，找王师傅"


# --- ordinary text -------------------------------------------------------------------------


def chinese_number(n: int) -> str:
    """1..9999 as a law numbers its articles: 第十二条, 第一百二十条, 第一千零八条."""
    out = ""
    for size, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit, n = divmod(n, size)
        if digit:
            out += "零一二三四五六七八九"[digit] + unit
        elif out and n and not out.endswith("零"):
            out += "零"
    return out[1:] if out.startswith("一十") else out


years = st.integers(1949, 2030)
months = st.integers(1, 12)
days = st.integers(1, 28)
ordinary = st.one_of(
    st.integers(1, 99_999_999).map(lambda n: f"{n}元"),
    st.tuples(st.integers(1, 99), st.integers(1, 9)).map(lambda t: f"{t[0]}万{t[1]}"),
    st.tuples(years, months, days).map(lambda t: f"{t[0]}年{t[1]}月{t[2]}日"),
    st.tuples(years, months, days).map(lambda t: f"{t[0]}-{t[1]:02}-{t[2]:02}"),
    st.tuples(years, months, days).map(lambda t: f"{t[0]}.{t[1]}.{t[2]}"),
    st.tuples(years, months, days).map(lambda t: f"{t[0]}/{t[1]:02}/{t[2]:02}"),
    st.integers(1, 1260).map(lambda n: f"第{n}条"),
    st.integers(1, 1260).map(lambda n: f"第{chinese_number(n)}条"),
    years.map(lambda y: "".join("〇一二三四五六七八九"[int(d)] for d in str(y)) + "年"),
    st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]}:{t[1]:02}"),
    st.lists(st.integers(1, 99), min_size=2, max_size=8).map(lambda ns: " ".join(map(str, ns))),
)


@EXAMPLES
@given(st.lists(st.tuples(WORDS, ordinary), min_size=1, max_size=6), WORDS)
def test_amounts_dates_article_numbers_and_lists_are_left_alone(parts, tail):
    text = "".join(words + item for words, item in parts) + tail
    assert mask(text) == text


@EXAMPLES
@given(st.lists(ordinary, min_size=2, max_size=6), st.sampled_from([" ", "，", "、", "\t"]))
def test_ordinary_numbers_side_by_side_do_not_glue_into_a_phone_or_card(items, joiner):
    text = joiner.join(items)
    assert mask(text) == text


@EXAMPLES
@given(WORDS, mobiles, WORDS)
def test_masking_twice_changes_nothing_more(before, number, after):
    once = mask(f"{before}电话 {number}，卡号 6222 0212 3456 7890 123{after}")
    assert mask(once) == once


# --- the formats a probe found stored in full ----------------------------------------------

PHONE = "138****5678"
FORMATS = [
    ("13812345678", PHONE),
    ("138 1234 5678", PHONE),
    ("138-1234-5678", PHONE),
    ("138.1234.5678", PHONE),
    ("138_1234_5678", PHONE),
    ("138/1234/5678", PHONE),
    ("138\t1234\t5678", PHONE),
    ("138  1234  5678", PHONE),
    ("138 - 1234 - 5678", PHONE),
    ("138·1234·5678", PHONE),
    ("138\xa01234\xa05678", PHONE),
    ("013812345678", "0" + PHONE),
    ("(138)1234-5678", PHONE),
    ("１３８１２３４５６７８", PHONE),
    ("１３８　１２３４　５６７８", PHONE),
    ("138\u30001234\u30005678", PHONE),
    ("一三八一二三四五六七八", PHONE),
    ("幺三八幺二三四五六七八", "138****5678"),
    ("一三八 〇〇〇〇 五六七八", "138****5678"),
    ("一三八零零零零五六七八", "138****5678"),
    ("+86 138 1234 5678", "+86 " + PHONE),
    ("+8613812345678", "+86 " + PHONE),
    ("86-138-1234-5678", "+86 " + PHONE),
    ("0086 13812345678", "+86 " + PHONE),
    ("＋８６　１３８１２３４５６７８", "+86 " + PHONE),
    ("(0871)65123456", "0871-****3456"),
    ("（0871）65123456", "0871-****3456"),
    ("0871-65123456", "0871-****3456"),
    ("0871 6512 3456", "0871-****3456"),
    ("０８７１－６５１２３４５６", "0871-****3456"),
    ("010-65123456", "010-****3456"),
    ("(010) 6512 3456", "010-****3456"),
    ("530102199001011234", "530102" + "*" * 12),
    ("53010219900101123X", "530102" + "*" * 12),
    ("53010219900101123x", "530102" + "*" * 12),
    ("５３０１０２１９９００１０１１２３Ｘ", "530102" + "*" * 12),
    ("530102 19900101 1234", "530102" + "*" * 12),
    ("530102 19900101 123 X", "530102" + "*" * 12),
    ("530102900101123", "530102" + "*" * 9),
    ("6222021234567890123", "6222" + "*" * 11 + "0123"),
    ("6222 0212 3456 7890", "6222********7890"),
    ("6222  0212  3456  7890", "6222********7890"),
    ("6222.0212.3456.7890", "6222********7890"),
    ("6222_0212_3456_7890", "6222********7890"),
    ("6222\t0212\t3456\t7890", "6222********7890"),
    ("６２２２　０２１２　３４５６　７８９０", "6222********7890"),
    ("622202 1234567890123", "6222" + "*" * 11 + "0123"),
    ("622202123456789012", "6222" + "*" * 10 + "9012"),  # 18 digits, no birth date: a card
]


@pytest.mark.parametrize(("typed", "expected"), FORMATS)
def test_each_format_the_probe_found_is_masked(typed, expected):
    assert mask(f"我的号是{typed}，老板欠钱") == f"我的号是{expected}，老板欠钱"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("电话 65123456", "电话 ****3456"),
        ("座机：6512-3456", "座机：****3456"),
        ("联系方式 六五一二三四五六", "联系方式 ****3456"),
        ("ＴＥＬ：6512345", "ＴＥＬ：***2345"),
        ("138 1234 5678 / 139 8765 4321", "138****5678 / 139****4321"),
        ("6222 0212 3456 7890 138 1234 5678", "6222********7890 138****5678"),
        ("2024-05-01 13812345678", "2024-05-01 138****5678"),
    ],
)
def test_cues_and_neighbours(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "欠了3个月工资共12000元，2024年5月1日开始",
        "12000000元",
        "电话费25000000元",
        "打工 25000000",
        "3万5",
        "2024-05-01",
        "2024.5.1",
        "2024年 5月",
        "第一百二十条",
        "第50条",
        "二〇二四年",
        "9:30",
        "1 2 3",
        "3 5 7 9 11 13 15 17 19 21 23 25",
        "2024-05-30 2024-06-30 2024-07-30",
        "100 200 300 400 500 600",
        "工资分别是3000 4500 5000 6000元",
        "一二三四五六七八九十",
    ],
)
def test_ordinary_text_is_unchanged(text):
    assert mask(text) == text


# --- log lines and tracebacks --------------------------------------------------------------


@pytest.fixture
def log_output():
    """A logger whose handler writes to a string, through the masking filter as in the app."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("tests.masking")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_a_number_in_an_exception_message_is_masked_in_the_traceback(log_output):
    logger, stream = log_output
    try:
        raise ValueError("cannot parse 身份证530102199001011234, phone 138 1234 5678")
    except ValueError:
        logger.exception("question %s failed", "我电话13812345678")
    printed = stream.getvalue()
    assert "ERROR question 我电话138****5678 failed" in printed
    assert "Traceback (most recent call last)" in printed
    assert "ValueError: cannot parse 身份证530102************, phone 138****5678" in printed
    for secret in ("13812345678", "530102199001011234"):
        assert secret not in digits_of(printed)


def test_a_stack_in_a_log_record_is_masked(log_output):
    logger, stream = log_output
    logger.warning("look here", stack_info=True)  # the stack shows this line: 13912345678
    printed = stream.getvalue()
    assert "Stack (most recent call last)" in printed and "139****5678" in printed
    assert "13912345678" not in printed
