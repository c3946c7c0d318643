"""The official-account server protocol: signatures, replay window, AES modes, safe parsing.

Follows wechatpy's examples/echo-encrypted flow. Plaintext mode signs with `signature`;
compatible and safe modes add `encrypt_type=aes` and `msg_signature`, and decryption must use
`msg_signature` (shared/WECHAT.md W5, W6). While an EncodingAESKey is being rotated WeChat may
still use the old one, so decryption falls back to the previous key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature


class Refused(Exception):
    """A request WeChat did not send, or that cannot be read; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Inbound:
    message: Any  # a wechatpy message or event
    raw: Mapping[str, Any]  # the parsed fields, for CreateTime and the rest
    encrypted: bool
    nonce: str
    timestamp: str


def verify(config: Mapping[str, Any], args: Mapping[str, str], *, now: float | None = None) -> None:
    """Check `signature` and the replay window; raise Refused(403) otherwise."""
    signature, timestamp, nonce = args.get("signature"), args.get("timestamp"), args.get("nonce")
    if not (signature and timestamp and nonce):
        raise Refused(403, "signature, timestamp or nonce missing")
    try:
        check_signature(config["WECHAT_TOKEN"], signature, timestamp, nonce)
    except InvalidSignatureException:
        raise Refused(403, "bad signature") from None
    try:
        skew = abs((now or time.time()) - int(timestamp))
    except ValueError:
        raise Refused(403, "timestamp is not a number") from None
    if skew > int(config["WECHAT_MAX_CLOCK_SKEW"]):
        raise Refused(403, f"timestamp {skew:.0f}s off (replay window)")


def read(config: Mapping[str, Any], args: Mapping[str, str], body: bytes) -> Inbound:
    """Decrypt (when `encrypt_type=aes`) and parse one pushed message."""
    if not body.strip():
        raise Refused(400, "empty body")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise Refused(400, "DTDs and entities are not accepted")
    encrypted = args.get("encrypt_type") == "aes"
    if not encrypted and config["WECHAT_ENCRYPTION"] == "safe":
        raise Refused(403, "plaintext refused: the account is in safe mode")
    xml = _decrypt(config, args, body) if encrypted else body
    try:
        message = parse_message(xml)
        raw = message._data  # wechatpy keeps every field of the XML here
    except Exception as exc:  # ExpatError, KeyError on foreign XML, decode errors
        raise Refused(400, f"unreadable XML ({type(exc).__name__})") from None
    _check_fields(raw)
    return Inbound(message, raw, encrypted, args.get("nonce", ""), args.get("timestamp", ""))


REQUIRED = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
TEXTUAL = ("Content", "MsgId", "Event", "EventKey", "Recognition", "MediaId")


def _check_fields(raw: Mapping[str, Any]) -> None:
    """Signed is not well-formed: each field Pufa reads appears once, as text.

    Reports such as PUBLISHJOBFINISH legitimately nest elements; only the fields read here
    are checked.
    """
    for name in REQUIRED:
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise Refused(400, f"{name} missing or repeated")
    for name in TEXTUAL:
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise Refused(400, f"{name} repeated or nested")


def _decrypt(config: Mapping[str, Any], args: Mapping[str, str], body: bytes) -> bytes:
    keys = [k for k in (config.get("WECHAT_AES_KEY"), config.get("WECHAT_AES_KEY_PREVIOUS")) if k]
    if not keys:
        raise Refused(400, "encrypted message but PUFA_WECHAT_AES_KEY is not set")
    msg_signature = args.get("msg_signature")
    if not msg_signature:
        raise Refused(403, "msg_signature missing")
    last: Refused | None = None
    for key in keys:
        crypto = WeChatCrypto(config["WECHAT_TOKEN"], key, config["WECHAT_APP_ID"])
        try:
            plain = crypto.decrypt_message(body, msg_signature, args["timestamp"], args["nonce"])
            return plain.encode() if isinstance(plain, str) else plain
        except InvalidSignatureException:
            raise Refused(403, "bad msg_signature") from None
        except InvalidAppIdException:
            last = Refused(403, "message is for another AppID")
        except Exception as exc:  # wrong key, padding, base64, missing <Encrypt>
            last = Refused(400, f"cannot decrypt ({type(exc).__name__})")
    assert last is not None
    raise last


def render(config: Mapping[str, Any], inbound: Inbound, reply_xml: str) -> str:
    """Encrypt the reply when the message came encrypted, as WeChat expects."""
    if not inbound.encrypted:
        return reply_xml
    crypto = WeChatCrypto(config["WECHAT_TOKEN"], config["WECHAT_AES_KEY"], config["WECHAT_APP_ID"])
    return crypto.encrypt_message(reply_xml, inbound.nonce, inbound.timestamp)
