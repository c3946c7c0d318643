"""Stands in for WeChat's servers: builds pushed messages exactly as the platform signs them.

Used by the demo page, the tests and bench/ (the platform itself cannot be reached from a
laptop or CI). It follows the documented protocol (shared/WECHAT.md W5, W6): `signature` =
sha1 of the sorted token, timestamp and nonce; with encryption, the body carries `<Encrypt>`
and the URL `encrypt_type=aes` and `msg_signature` = sha1 of the sorted token, timestamp,
nonce and ciphertext. Compatible mode keeps the plaintext fields beside `<Encrypt>`.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto

MODES = ("plain", "compatible", "safe")
_msg_ids = itertools.count(int(time.time()) * 1000)


def sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass
class Simulator:
    token: str
    app_id: str
    aes_key: str | None = None
    mode: str = "plain"
    openid: str = "o-resident-0001"
    account: str = "gh_pufa"
    clock: Any = field(default=time.time)  # tests move the clock to make stale requests

    # -- inbound messages ---------------------------------------------------------------

    def text(self, content: str, *, msg_id: int | None = None, openid: str | None = None) -> str:
        mid = next(_msg_ids) if msg_id is None else msg_id
        body = f"<MsgType>{cdata('text')}</MsgType><Content>{cdata(content)}</Content>"
        return self._xml(body + f"<MsgId>{mid}</MsgId>", openid)

    def voice(self, recognition: str | None, *, msg_id: int | None = None) -> str:
        mid = next(_msg_ids) if msg_id is None else msg_id
        body = f"<MsgType>{cdata('voice')}</MsgType><MediaId>{cdata('media-1')}</MediaId>"
        body += f"<Format>{cdata('amr')}</Format>"
        if recognition is not None:
            body += f"<Recognition>{cdata(recognition)}</Recognition>"
        return self._xml(body + f"<MsgId>{mid}</MsgId>", None)

    def image(self, *, msg_id: int | None = None) -> str:
        mid = next(_msg_ids) if msg_id is None else msg_id
        body = f"<MsgType>{cdata('image')}</MsgType><PicUrl>{cdata('http://example.invalid/a.jpg')}</PicUrl>"
        return self._xml(body + f"<MediaId>{cdata('m')}</MediaId><MsgId>{mid}</MsgId>", None)

    def location(self, *, msg_id: int | None = None) -> str:
        mid = next(_msg_ids) if msg_id is None else msg_id
        body = f"<MsgType>{cdata('location')}</MsgType><Location_X>25.04</Location_X>"
        body += f"<Location_Y>102.7</Location_Y><Scale>15</Scale><Label>{cdata('某村')}</Label>"
        return self._xml(body + f"<MsgId>{mid}</MsgId>", None)

    def event(
        self,
        event: str,
        *,
        key: str = "",
        create_time: int | None = None,
        openid: str | None = None,
    ) -> str:
        body = f"<MsgType>{cdata('event')}</MsgType><Event>{cdata(event)}</Event>"
        if key:
            body += f"<EventKey>{cdata(key)}</EventKey>"
        return self._xml(body, openid, create_time)

    def _xml(self, body: str, openid: str | None, create_time: int | None = None) -> str:
        ct = int(self.clock()) if create_time is None else create_time
        return (
            f"<xml><ToUserName>{cdata(self.account)}</ToUserName>"
            f"<FromUserName>{cdata(openid or self.openid)}</FromUserName>"
            f"<CreateTime>{ct}</CreateTime>{body}</xml>"
        )

    # -- the HTTP request WeChat would make -----------------------------------------------

    def request(self, xml: str, *, mode: str | None = None) -> tuple[dict[str, str], bytes]:
        """Query arguments and body for POST /wechat, signed (and encrypted) for `mode`."""
        mode = mode or self.mode
        timestamp, nonce = str(int(self.clock())), secrets.token_hex(5)
        args = {
            "signature": sha1_sorted(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": self.openid,
        }
        if mode == "plain":
            return args, xml.encode()
        encrypt = _encrypt_only(self._crypto(), xml, nonce, timestamp)
        args.update(
            encrypt_type="aes", msg_signature=sha1_sorted(self.token, timestamp, nonce, encrypt)
        )
        if mode == "safe":
            inner = f"<ToUserName>{cdata(self.account)}</ToUserName>"
        else:  # compatible: the plaintext fields stay beside the ciphertext
            inner = xml[len("<xml>") : -len("</xml>")]
        return args, f"<xml>{inner}<Encrypt>{cdata(encrypt)}</Encrypt></xml>".encode()

    def reply_text(self, body: bytes | str) -> str:
        """The text a resident sees for a webhook response body ('' for 'success')."""
        body = body.decode() if isinstance(body, bytes) else body
        if body in ("", "success"):
            return ""
        if "<Encrypt>" in body:
            fields = xmltodict.parse(body)["xml"]
            body = self._crypto().decrypt_message(
                body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
            )
        return parse_message(body).content

    def _crypto(self) -> WeChatCrypto:
        if not self.aes_key:
            raise ValueError("this mode needs an EncodingAESKey")
        return WeChatCrypto(self.token, self.aes_key, self.app_id)


def _encrypt_only(crypto: WeChatCrypto, xml: str, nonce: str, timestamp: str) -> str:
    """The `<Encrypt>` value wechatpy produces for `xml` (it wraps it in reply XML)."""
    return xmltodict.parse(crypto.encrypt_message(xml, nonce, timestamp))["xml"]["Encrypt"]


def new_aes_key() -> str:
    """A random 43-character EncodingAESKey, as the platform generates."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(43))
