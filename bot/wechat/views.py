"""The webhook: WeChat's GET verification and POSTed messages. Checks here, work in services."""

from __future__ import annotations

import hashlib
import logging

from flask import Response, current_app, request
from wechatpy.replies import create_reply
from werkzeug.exceptions import RequestEntityTooLarge

from bot import accounts, posts
from bot.accounts import Settings
from bot.wechat import bp, nonces, qa
from bot.wechat.protocol import Inbound, Refused, read, render, verify

log = logging.getLogger(__name__)

NON_TEXT_TYPES = {"image", "voice", "video", "shortvideo", "location", "link"}
SUCCESS = "success"  # WeChat's "received, no reply" (W3): stops retries, shows nothing


@bp.get("")
@bp.get("/")
@bp.get("/<slug>")
def verify_server(slug: str = accounts.DEFAULT_SLUG) -> Response:
    """WeChat checks the server URL once by asking us to echo `echostr`."""
    try:
        account = _account(slug)
        verify(account.protocol(current_app.config), request.args)
    except Refused as exc:
        log.warning("webhook GET refused (%s) from %s", exc.reason, request.remote_addr)
        return _plain(f"{exc.status} {exc.reason}", exc.status)
    return _plain(request.args.get("echostr", ""), 200)


@bp.post("")
@bp.post("/")
@bp.post("/<slug>")
def receive(slug: str = accounts.DEFAULT_SLUG) -> Response:
    """Reply to one message pushed by WeChat to one of the deployment's accounts."""
    cfg = current_app.config
    try:
        account = _account(slug)
        protocol = account.protocol(cfg)
        verify(protocol, request.args)
        inbound = read(protocol, request.args, _body(int(cfg["MAX_CONTENT_LENGTH"])))
        _addressed_to(account, inbound)
        if not nonces.first_use(inbound, 2 * int(cfg["WECHAT_MAX_CLOCK_SKEW"]), account):
            raise Refused(403, "nonce already used with another message")
    except RequestEntityTooLarge:
        log.warning("webhook refused: body over %s bytes", cfg["MAX_CONTENT_LENGTH"])
        return _plain("413 body too large", 413)
    except Refused as exc:
        log.warning("webhook refused (%s) from %s", exc.reason, request.remote_addr)
        return _plain(f"{exc.status} {exc.reason}", exc.status)
    reply = dispatch(inbound, account)
    if not reply:
        return _plain(SUCCESS, 200)
    xml = create_reply(reply, inbound.message).render()
    return Response(render(protocol, inbound, xml), mimetype="application/xml")


def _account(slug: str) -> Settings:
    """The account a request is for; 404 for none, 503 while it cannot be resolved (WeChat
    retries, and the next try may find the database back)."""
    try:
        account = accounts.by_slug(slug)
    except accounts.AccountError as exc:
        log.error("webhook: account %r cannot be served: %s", slug, exc)
        raise Refused(503, "account unavailable") from None
    if account is None:
        raise Refused(404, "no such account")
    return account


def _addressed_to(account: Settings, inbound: Inbound) -> None:
    """A message for another official account (ToUserName is its original id, gh_…) is not
    ours to answer; checked when the account's original id is configured."""
    to = str(inbound.raw.get("ToUserName") or "")
    if account.original_id and to != account.original_id:
        raise Refused(403, "message addressed to another account")


def _body(limit: int) -> bytes:
    """The body, or 413. A chunked body has no Content-Length to refuse up front, and
    Werkzeug cuts it at the limit; a body that fills the limit is taken as over it."""
    body = request.get_data(cache=True)
    if len(body) >= limit:
        raise RequestEntityTooLarge()
    return body


def dispatch(inbound: Inbound, account: Settings) -> str:
    """Route one message by type; returns the reply text, or "" for no reply."""
    msg = inbound.message
    if msg.type == "text":
        return qa.reply_once(
            account=account,
            msg_key=account.scoped(_message_key(inbound)),
            openid=msg.source,
            kind="text",
            text=msg.content or "",
        )
    if msg.type == "voice":
        return qa.reply_once(
            account=account,
            msg_key=account.scoped(_message_key(inbound)),
            openid=msg.source,
            kind="voice",
            text=getattr(msg, "recognition", None) or "",
        )
    if msg.type in NON_TEXT_TYPES:
        return qa.reply_once(
            account=account,
            msg_key=account.scoped(_message_key(inbound)),
            openid=msg.source,
            kind="non_text",
        )
    if (
        inbound.raw.get("MsgType") == "event"
    ):  # also events wechatpy does not know (PUBLISHJOBFINISH)
        return _event(inbound, account)
    log.info("webhook: message type %r ignored", msg.type)
    return ""


def _event(inbound: Inbound, account: Settings) -> str:
    msg, event = inbound.message, (inbound.raw.get("Event") or "").lower()
    event_key = str(inbound.raw.get("EventKey") or "")
    handler = EVENTS.get(event)
    if handler is None:
        log.info("webhook: event %r acknowledged", event)
        return ""
    key = _event_key(msg.source, inbound.raw.get("CreateTime", ""), event, event_key)
    return handler(inbound, account, account.scoped(key), event_key)


def _subscribe(inbound: Inbound, account: Settings, key: str, event_key: str) -> str:
    """A follow, also by scanning a parametric QR code (EventKey "qrscene_<scene>")."""
    scene = event_key.removeprefix("qrscene_")[:64] or None
    return qa.reply_once(
        account=account, msg_key=key, openid=inbound.message.source, kind="subscribe", scene=scene
    )


def _scan(inbound: Inbound, account: Settings, key: str, event_key: str) -> str:
    """A follower scans a parametric QR code (a village's poster): greet, record the scene."""
    scene = event_key[:64] or None
    return qa.reply_once(
        account=account, msg_key=key, openid=inbound.message.source, kind="scan", scene=scene
    )


def _click(inbound: Inbound, account: Settings, key: str, event_key: str) -> str:
    return qa.reply_once(
        account=account, msg_key=key, openid=inbound.message.source, kind="click", text=event_key
    )


def _unsubscribe(inbound: Inbound, account: Settings, key: str, event_key: str) -> str:
    qa.forget_resident(inbound.message.source, account)
    return ""


def _job_finish(inbound: Inbound, account: Settings, key: str, event_key: str) -> str:
    posts.record_job_finish(dict(inbound.raw), account_id=account.id)  # sent, filtered, errors
    return ""


EVENTS = {
    "subscribe": _subscribe,
    # wechatpy rewrites a follow through a QR code to "subscribe_scan" and strips "qrscene_"
    "subscribe_scan": _subscribe,
    "scan": _scan,
    "click": _click,
    "unsubscribe": _unsubscribe,
    "masssendjobfinish": _job_finish,
    "publishjobfinish": _job_finish,
}


def _message_key(inbound: Inbound) -> str:
    """WeChat's retries repeat the MsgId (W2). A message without a usable one is keyed by its
    sender, time and whole content, so it is never answered with another resident's reply."""
    msg_id = str(inbound.raw.get("MsgId") or "").strip()
    if msg_id.isdigit() and int(msg_id) > 0:
        return f"msg:{msg_id}"
    fields = "|".join(f"{k}={v}" for k, v in sorted(inbound.raw.items()) if k != "MsgId")
    return "nomsg:" + hashlib.sha256(fields.encode()).hexdigest()[:40]


def _event_key(openid: str, create_time: str, event: str, event_key: str = "") -> str:
    """Events have no MsgId: WeChat's retries repeat sender, CreateTime and EventKey (W2).

    EventKey is part of the key, so two different menu clicks within one second are two
    messages, while a retry of one click is still answered once.
    """
    raw = f"{openid}|{create_time}|{event}|{event_key}"
    digest = hashlib.sha256(raw.encode()).hexdigest()[:40]
    return f"ev:{digest}"


def _plain(text: str, status: int) -> Response:
    return Response(text, status=status, mimetype="text/plain")
