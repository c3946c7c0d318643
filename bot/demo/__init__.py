"""A local page that talks to the bot through the real, signed webhook: see what residents see.

Registered only when the demo is asked for (`flask --app bot demo`, or PUFA_DEMO_PAGE=1 outside
production), never by default: it can speak as any resident it names. It only names demo
residents ("o-demo-…"), so it can never read or act for a real follower. Each message is built by the WeChat
simulator exactly as the platform would push it, signed with the configured token (and
encrypted when an AES key is set), and sent through the app's own /wechat endpoint, so it
takes the same path as a resident's message.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request

from bot.wechat.simulator import Simulator

bp = Blueprint(
    "demo", __name__, url_prefix="/demo", template_folder="templates", static_folder="static"
)

DEMO_OPENID = "o-demo-resident"


def demo_openid(asked: object) -> str:
    """A demo resident's openid: several can be simulated, never a real follower."""
    suffix = "".join(ch for ch in str(asked or "") if ch.isascii() and (ch.isalnum() or ch in "-_"))
    return DEMO_OPENID if not suffix else "o-demo-" + suffix.removeprefix("o-demo-")[:40]


@bp.get("/")
def page() -> str:
    return render_template("demo/chat.html")


@bp.post("/send")
def send():
    """Send one message (text, or a subscribe/CLICK event) and return the bot's reply text."""
    data = request.get_json(silent=True) or {}
    cfg = current_app.config
    sim = Simulator(
        token=cfg["WECHAT_TOKEN"],
        app_id=cfg["WECHAT_APP_ID"],
        aes_key=cfg.get("WECHAT_AES_KEY"),
        mode="safe" if cfg.get("WECHAT_AES_KEY") else "plain",
        openid=demo_openid(data.get("openid")),
    )
    if data.get("event"):
        xml = sim.event(str(data["event"]), key=str(data.get("key", "")))
    else:
        xml = sim.text(str(data.get("text", ""))[:600])
    args, body = sim.request(xml)
    with current_app.test_client() as client:
        response = client.post("/wechat", query_string=args, data=body, content_type="text/xml")
    if response.status_code != 200:
        return jsonify(reply=f"（webhook 返回 {response.status_code}）"), 502
    return jsonify(reply=sim.reply_text(response.get_data()))
