"""The webhook: WeChat's GET verification and POSTed messages. Checks here, work in services."""

from __future__ import annotations

import hashlib
import logging

from flask import Response, current_app, request
from wechatpy.replies import create_reply
from werkzeug.exceptions import RequestEntityTooLarge

from bot import posts, qa
from bot.wechat import bp
from bot.wechat.protocol import Inbound, Refused, read, render, verify

log = logging.getLogger(__name__)

NON_TEXT_TYPES = {"image", "voice", "video", "shortvideo", "location", "link"}
SUCCESS = "success"  # WeChat's "received, no reply" (W3): stops retries, shows nothing


@bp.get("")
@bp.get("/")
def verify_server() -> Response:
    """WeChat checks the server URL once by asking us to echo `echostr`."""
    try:
        verify(current_app.config, request.args)
    except Refused as exc:
        log.warning("webhook GET refused (%s) from %s", exc.reason, request.remote_addr)
        return _plain(f"{exc.status} {exc.reason}", exc.status)
    return _plain(request.args.get("echostr", ""), 200)


@bp.post("")
@bp.post("/")
def receive() -> Response:
    """Reply to one message pushed by WeChat."""
    try:
        verify(current_app.config, request.args)
        inbound = read(current_app.config, request.args, request.get_data())
    except RequestEntityTooLarge:
        log.warning("webhook refused: body over %s bytes", current_app.config["MAX_CONTENT_LENGTH"])
        return _plain("413 body too large", 413)
    except Refused as exc:
        log.warning("webhook refused (%s) from %s", exc.reason, request.remote_addr)
        return _plain(f"{exc.status} {exc.reason}", exc.status)
    reply = dispatch(inbound)
    if not reply:
        return _plain(SUCCESS, 200)
    xml = create_reply(reply, inbound.message).render()
    return Response(render(current_app.config, inbound, xml), mimetype="application/xml")


def dispatch(inbound: Inbound) -> str:
    """Route one message by type; returns the reply text, or "" for no reply."""
    msg = inbound.message
    if msg.type == "text":
        return qa.reply_once(
            msg_key=f"msg:{msg.id}", openid=msg.source, kind="text", text=msg.content or ""
        )
    if msg.type == "voice":
        text = getattr(msg, "recognition", None) or ""
        return qa.reply_once(msg_key=f"msg:{msg.id}", openid=msg.source, kind="voice", text=text)
    if msg.type in NON_TEXT_TYPES:
        return qa.reply_once(msg_key=f"msg:{msg.id}", openid=msg.source, kind="non_text")
    if (
        inbound.raw.get("MsgType") == "event"
    ):  # also events wechatpy does not know (PUBLISHJOBFINISH)
        return _event(inbound)
    log.info("webhook: message type %r ignored", msg.type)
    return ""


def _event(inbound: Inbound) -> str:
    msg, event = inbound.message, (inbound.raw.get("Event") or "").lower()
    key = _event_key(msg.source, inbound.raw.get("CreateTime", ""), event)
    if event == "subscribe":  # also a scan of a parametric QR code by a new follower
        return qa.reply_once(msg_key=key, openid=msg.source, kind="subscribe")
    if event == "click":
        click_key = inbound.raw.get("EventKey") or ""
        return qa.reply_once(msg_key=key, openid=msg.source, kind="click", text=click_key)
    if event == "unsubscribe":
        qa.forget_resident(msg.source)
        return ""
    if event in ("masssendjobfinish", "publishjobfinish"):
        posts.record_job_finish(dict(inbound.raw))  # sent, filtered and error counts
        return ""
    log.info("webhook: event %r acknowledged", event)
    return ""


def _event_key(openid: str, create_time: str, event: str) -> str:
    """Events have no MsgId; WeChat dedupes them by sender and CreateTime (W2)."""
    digest = hashlib.sha256(f"{openid}|{create_time}|{event}".encode()).hexdigest()[:40]
    return f"ev:{digest}"


def _plain(text: str, status: int) -> Response:
    return Response(text, status=status, mimetype="text/plain")
