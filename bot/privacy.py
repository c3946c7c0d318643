"""Masking of phone, ID-card and bank-card numbers, the openid hash, and the logging filter.

Residents type their numbers into questions ("我电话13812345678，老板欠我钱"). Nothing that
stores or logs their words may keep those numbers, so everything goes through `mask()` first.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

from flask import Flask

# Order matters: the longer ID-card and bank-card runs are masked before the 11-digit phone.
_ID_CARD = re.compile(
    r"(?<![0-9])([1-9][0-9]{5})(?:19|20)[0-9]{2}[01][0-9][0-3][0-9][0-9]{3}[0-9Xx](?![0-9])"
)
_CARD = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){11,18}(?![0-9])")  # 12-19 digits
_MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])(0[0-9]{2,3}-?)[0-9]{3,4}([0-9]{4})(?![0-9])")


def mask(text: str | None) -> str:
    """Return `text` with ID-card, bank-card, mobile and landline numbers masked."""
    if not text:
        return text or ""
    text = _ID_CARD.sub(lambda m: m.group(1) + "********" + "****", text)
    text = _CARD.sub(_mask_card, text)
    text = _MOBILE.sub(r"\1****\2", text)
    return _LANDLINE.sub(r"\1****\2", text)


def _mask_card(m: re.Match[str]) -> str:
    digits = re.sub(r"[^0-9]", "", m.group(0))
    return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]


def openid_hash(openid: str, key: str) -> str:
    """A keyed hash, so the Q&A log links a resident's questions without storing the openid."""
    return hmac.new(key.encode(), openid.encode(), hashlib.sha256).hexdigest()


class MaskingFilter(logging.Filter):
    """Masks numbers in every log record that passes through the app's handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logged as is
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


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
