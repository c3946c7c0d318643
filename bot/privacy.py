"""Masking of phone, ID-card and bank-card numbers, the openid hash, and the logging filter.

Residents type their numbers into questions ("我电话13812345678，老板欠我钱") in every way a phone
keyboard allows: grouped with spaces, dashes or dots, in full-width digits, with the ideographic
space, in Chinese numerals (一三八、幺三八), with +86 or an area code in brackets. Nothing that
stores or logs their words may keep those numbers, so everything goes through `mask()` first.

`mask()` reads the text through a "shadow": the same text with each character replaced by the
one ASCII character of its class (a digit, a separator, X, + or `#` for anything else), so that
positions stay 1:1 and the rest of the message comes back untouched. Runs of digit groups joined
by a few separators are read as numbers by their digit count and prefix, and each number found
is replaced by its canonical masked form in ASCII (`138****5678`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import unicodedata
from collections.abc import Iterator
from itertools import pairwise

from flask import Flask

# Chinese numerals as residents type a number digit by digit (幺 is how 1 is said aloud).
_NUMERALS = dict(
    zip("〇○零一幺壹二贰三叁四肆五伍六陆七柒八捌九玖", "0001112233445566778899", strict=True)
)
_SEPARATORS = frozenset(" \t-._/()")  # as NFKC leaves them: U+3000 is " ", "（" is "(", ...
_DASHES = frozenset("‐‑‒–—―−﹘·・•∙")  # dashes and dots NFKC keeps, typed between groups too
_INVISIBLE = frozenset("\u200b\u2060\ufeff")  # pasted zero-width characters
# Digit groups joined by a few separators, and an ID number's check letter X.
_RUN = re.compile(r"[0-9]+(?:[ \t\-._/()]{1,3}[0-9]+)*(?:[ \t\-._/()]{0,3}X)?")
_DIGITS = re.compile(r"[0-9]+")
_LONGEST = 19  # a bank card; nothing longer is a number we mask
_CARD_FIRST = frozenset("34569")  # Amex/JCB, Visa, Mastercard, UnionPay (62), domestic 9
_MOBILE_START = re.compile("1[3-9]")
_MOBILE_PREFIXES = {"": "", "0": "0", "86": "+86 ", "0086": "+86 "}  # shown canonically
_LENGTHS = frozenset((7, 8, 10, 11, 12, 13, 15, 16, 17, 18, 19))  # digit counts we mask
_NO_AREA = frozenset(f"01{d}" for d in "123456789")  # 010 is the only 01x area code
_CUE = re.compile(
    r"(?:电话|座机|手机|号码|联系|致电|拨打|打|热线|传真|tel|phone|call|fax|mobile)"
    r"[\s:,()\-是为号码方式给我请拨至的]{0,4}$"
)
_UNIT_AFTER = re.compile(r"\s*[元块万千百亿年月日号个岁次天分秒米斤亩%％人户]")


def mask(text: str | None) -> str:
    """Return `text` with mobile, landline, ID-card and bank-card numbers masked.

    What stays is what an adviser needs to tell numbers apart: a mobile's first 3 and last 4
    digits, a landline's area code and last 4, an ID number's region (first 6), a card's first
    4 and last 4. Everything around the numbers comes back exactly as the resident wrote it.
    """
    if not text:
        return text or ""
    shadow = text.translate(_SHADOW)
    pieces: list[str] = []
    last = 0
    for run in _RUN.finditer(shadow):
        if run.end() - run.start() < 7:  # too short for any number, the common case
            continue
        for start, end, masked in _Run(text, shadow, run).numbers():
            pieces += (text[last:start], masked)
            last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _class_of(char: str) -> str:
    """The shadow character of `char`: its digit, its separator, X, + or # for anything else."""
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) == 1 and "0" <= folded <= "9":
        return folded
    if char in _NUMERALS:
        return _NUMERALS[char]
    if folded in (" ", "\t") or char in _INVISIBLE:  # not a line break: lines are lists
        return " "
    if char in _DASHES:
        return "-"
    if folded in _SEPARATORS or folded == "+":
        return folded
    return "X" if folded in ("X", "x") else "#"


class _ShadowTable(dict[int, str]):
    """A `str.translate` table filled as characters are first seen.

    NFKC of every code point up front would cost a second at import; a message brings few new
    characters, and the table only memoises a pure function, so sharing it is safe.
    """

    def __missing__(self, code: int) -> str:
        shadow = self[code] = _class_of(chr(code))
        return shadow


_SHADOW = _ShadowTable()


_Number = tuple[int, int, str]  # start, end, masked form


class _Run:
    """Digit groups joined by short separators, in which the numbers are found.

    A run may hold several numbers ("138 1234 5678 / 139 8765 4321") or a date next to one, so
    the groups are cut where the most digits end up inside recognised numbers. Groups must have
    a sensible size to be joined (the first two digits or more, as in "86", the others three or
    more), so lists ("3 5 7 9", "11 13 15") and dates ("2024-05-30 2024-06-30") never glue into
    one number.
    """

    def __init__(self, text: str, shadow: str, run: re.Match[str]) -> None:
        self.text, self.shadow = text, shadow
        self.groups = [m.span() for m in _DIGITS.finditer(shadow, run.start(), run.end())]
        self.parts = [shadow[start:end] for start, end in self.groups]
        self.x_end = run.end() if shadow[run.end() - 1] == "X" else None

    def numbers(self) -> list[_Number]:
        """The numbers in the run, cut so that they cover the most digits."""
        count = len(self.parts)
        if count == 1:  # digits typed without separators, the common case
            number = len(self.parts[0]) in _LENGTHS and self._number(0, 0, self.parts[0], [])
            return [number] if number else []
        best = [0] * (count + 1)  # digits covered from group i on
        pick: list[tuple[int, _Number] | None] = [None] * (count + 1)
        for first in range(count - 1, -1, -1):
            best[first] = best[first + 1]
            for last, size, number in self._candidates(first):
                if size + best[last + 1] >= best[first]:  # on a tie, the longer number
                    best[first], pick[first] = size + best[last + 1], (last, number)
        return self._follow(pick)

    def _follow(self, pick: list[tuple[int, _Number] | None]) -> list[_Number]:
        numbers, first = [], 0
        while first < len(self.parts):
            if (choice := pick[first]) is None:
                first += 1
            else:
                numbers.append(choice[1])
                first = choice[0] + 1
        return numbers

    def _candidates(self, first: int) -> Iterator[tuple[int, int, _Number]]:
        """(last group, digit count, number) for each number that starts at group `first`."""
        digits, cuts = "", []
        for last in range(first, len(self.parts)):
            part = self.parts[last]
            if digits:
                if len(self.parts[first]) < 2 or len(part) < 3:  # see the class doc
                    break
                cuts.append(len(digits))
            digits += part
            size = len(digits)
            if size > _LONGEST:
                break
            if size in _LENGTHS and (number := self._number(first, last, digits, cuts)):
                yield last, size, number

    def _number(self, first: int, last: int, digits: str, cuts: list[int]) -> _Number | None:
        """The masked number made of groups `first`..`last`, if they make one.

        Amounts before a unit ("3000 4500 5000 6000元") are not a card and not a local phone.
        """
        start, end = self.groups[first][0], self.groups[last][1]
        if (
            self.x_end
            and last == len(self.groups) - 1
            and (id_card := _id_card(digits + "X", cuts))
        ):
            return start, self.x_end, id_card
        masked = (
            _mobile(digits)
            or _landline(digits, cuts)
            or _id_card(digits, cuts)
            or (not _UNIT_AFTER.match(self.text, end) and _bank_card(digits, cuts))
            or self._local(first, end, digits)
        )
        return (self._widen(first, last, masked), end, masked) if masked else None

    def _local(self, first: int, end: int, digits: str) -> str | None:
        """A 7-8 digit number without area code is a phone only when the resident says so.

        The cue is words, so only a number that starts the run can follow one.
        """
        if first or len(digits) not in (7, 8) or digits[0] in "01":
            return None
        if _UNIT_AFTER.match(self.text, end):
            return None
        start = self.groups[0][0]
        before = unicodedata.normalize("NFKC", self.text[max(0, start - 12) : start]).casefold()
        return "*" * (len(digits) - 4) + digits[-4:] if _CUE.search(before) else None

    def _widen(self, first: int, last: int, masked: str) -> int:
        """Take in the "+" of "+86" and the "(" of "(0871)", which the masked form rewrites."""
        start = self.groups[first][0]
        before = self.shadow[start - 1] if start else ""
        if before == "+" and masked.startswith("+"):
            return start - 1
        if before == "(" and last > first:
            closing = self.shadow[self.groups[first][1] : self.groups[first + 1][0]]
            return start - 1 if ")" in closing else start
        return start


def _mobile(digits: str) -> str | None:
    """A mainland mobile, bare or after +86/86/0086 or a long-distance 0: keeps 3 + 4."""
    shown = _MOBILE_PREFIXES.get(digits[:-11]) if len(digits) >= 11 else None
    number = digits[-11:]
    if shown is None or not _MOBILE_START.match(number):
        return None
    return f"{shown}{number[:3]}****{number[7:]}"


def _landline(digits: str, cuts: list[int]) -> str | None:
    """0 + area code + 7-8 digits: keeps the area code and the last 4.

    Beijing (010) and the 02x cities have two-digit codes, all others three. The area code
    must not be split across groups, so "05 01 2024 06 30" is not read as 0501-20240630.
    """
    if len(digits) < 10 or digits[0] != "0" or digits[1] == "0" or digits[:3] in _NO_AREA:
        return None
    area = 3 if digits[1] in "12" else 4
    local = digits[area:]
    if not 7 <= len(local) <= 8 or local[0] in "01" or any(0 < cut < area for cut in cuts):
        return None
    return f"{digits[:area]}-{'*' * (len(local) - 4)}{local[-4:]}"


def _id_card(digits: str, cuts: list[int]) -> str | None:
    """An 18-character (last may be X) or old 15-digit ID number: keeps the region code only.

    The birth date tells an ID from a card or from a list of numbers. 18 digits typed in one
    piece with an implausible date are still a mistyped ID, unless they start like a card.
    """
    if digits[0] == "0" or len(digits) not in (15, 18):
        return None
    if len(digits) == 15:
        return digits[:6] + "*" * 9 if _born(f"19{digits[6:12]}") else None
    if digits[-1] == "X" or _born(digits[6:14]) or not (cuts or digits[0] in _CARD_FIRST):
        return digits[:6] + "*" * 12
    return None


def _born(date: str) -> bool:
    """Whether YYYYMMDD looks like a birth date, which tells an ID number from a card."""
    if not date.isdigit():
        return False
    return date[:2] in ("18", "19", "20") and "01" <= date[4:6] <= "12" and "01" <= date[6:] <= "31"


def _bank_card(digits: str, cuts: list[int]) -> str | None:
    """16-19 digits that start like a card: keeps the first 4 and the last 4.

    Cards are grouped in fours or more (4-4-4-4-3, 6-13), never in threes like a list.
    """
    if not 16 <= len(digits) <= _LONGEST or digits[0] not in _CARD_FIRST:
        return None
    if any(end - start < 4 for start, end in pairwise([0, *cuts])):
        return None
    return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]


def openid_hash(openid: str, key: str) -> str:
    """A keyed hash, so the Q&A log links a resident's questions without storing the openid."""
    return hmac.new(key.encode(), openid.encode(), hashlib.sha256).hexdigest()


_TRACEBACKS = logging.Formatter()


class MaskingFilter(logging.Filter):
    """Masks numbers in every log record that passes through the app's handlers.

    The traceback is masked too: an exception raised on a resident's words ("bad phone
    13812345678") carries them into `exc_text`, which handlers print after the message.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_message(record)
        _mask_traceback(record)
        return True


def _mask_message(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is logged as is
        return
    masked = mask(message)
    if masked != message:
        record.msg, record.args = masked, None


def _mask_traceback(record: logging.LogRecord) -> None:
    """Format the traceback now, masked; formatters reuse `exc_text` rather than redo it."""
    if record.exc_info and not record.exc_text:
        record.exc_text = _TRACEBACKS.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask(record.exc_text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)


_FILTER = MaskingFilter()


def install_log_filter(app: Flask) -> None:
    """Attach the masking filter to every handler that Pufa's records reach.

    Logger filters do not see records propagated from child loggers, so the filter goes on the
    handlers; a root handler is added when none is configured (gunicorn adds its own only to
    its own loggers).
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    for handler in root.handlers + app.logger.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
