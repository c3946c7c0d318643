"""A stand-in for WeChat's official-account API, for tests and the demo (python -m bot.wechat.fakeapi).

The platform cannot be reached from a laptop or CI, so this small server implements the
endpoints Pufa calls, following their documented behaviour (shared/WECHAT.md):
- POST stable_token: the same token until it expires; force_refresh issues a new one (W18);
  GET token: the legacy call, which rotates and invalidates the previous token (W17);
- GET tags/get; POST draft/add (returns a media_id); POST material/add_material?type=image
  (a permanent image, JPG or PNG up to 10 MB: an article's cover; returns a media_id);
- POST message/mass/sendall: filter.tag_id or is_to_all, text or mpnews; `clientmsgid`
  dedupes: a second send with the same id gets 45065 and the first msg_id (W10); a
  subscription account (the default of `flask --app bot demo`) gets one mass send a day
  (Beijing time): the next gets 45028, as WeChat answers. A service account's limit (four a
  month per follower) is not modelled;
- any call with a stale token gets 40001.
It records every call, and can be told to fail: POST /_fake/faults with
{"endpoint": "message/mass/sendall", "errcode": -1, "times": 2} (or "status": 502, or
"delay": 3.0 seconds); GET /_fake/calls (a readable page in a browser, JSON otherwise);
POST /_fake/reset; POST /_fake/expire-token.
"""

from __future__ import annotations

import argparse
import itertools
import secrets
import threading
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, jsonify, render_template_string, request

BEIJING = ZoneInfo("Asia/Shanghai")

IMAGE_LIMIT = 10 * 1024 * 1024  # a permanent image material
DEFAULT_TAGS = {"学生家长": 100, "企业": 101, "农户": 102, "外出务工人员": 103, "村组干部": 104}


class FakeWeChat:
    """The platform's state: tokens, tags, drafts, sends, calls and injected faults."""

    def __init__(
        self,
        appid: str,
        secret: str,
        tags: dict[str, int] | None = None,
        account_type: str = "service",
    ):
        self.appid, self.secret = appid, secret
        self.account_type = account_type  # "subscription": one mass send a day (W10)
        self.tags = dict(DEFAULT_TAGS if tags is None else tags)
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.token, self.token_expires = None, 0.0
            self.valid_tokens: set[str] = set()
            self.calls: list[dict[str, Any]] = []
            self.faults: list[dict[str, Any]] = []
            self.sends: dict[str, dict[str, Any]] = {}  # clientmsgid → the send
            self.drafts: dict[str, Any] = {}
            self.materials: dict[str, dict[str, Any]] = {}  # media_id → the uploaded image
            self.accepted: dict[str, int] = {}  # clientmsgid → sends carried out (1, or a bug)
            self.refused: list[dict[str, Any]] = []  # sends refused for the daily quota
            self.custom: list[dict[str, Any]] = []  # customer-service messages delivered
            self.window_closed: set[str] = set()  # openids past their 48-hour window (W9)
            self.injected: dict[str, int] = {}  # kind of fault → how many fired
            self.token_fetches = {"stable": 0, "stable_forced": 0, "legacy": 0}
            self.ids = itertools.count(1000000001)

    def fault_for(self, endpoint: str) -> dict[str, Any] | None:
        with self.lock:
            self.faults = [f for f in self.faults if f.get("times", 1) > 0]
            for fault in self.faults:
                if fault.get("endpoint") in (endpoint, None, "*") and fault.get("times", 1) > 0:
                    fault["times"] = fault.get("times", 1) - 1
                    return dict(fault)
        return None

    def new_token(self) -> str:
        self.token = "tok-" + secrets.token_hex(16)
        self.token_expires = time.time() + 7200
        self.valid_tokens.add(self.token)
        return self.token


def create_fake_api(fake: FakeWeChat) -> Flask:
    app = Flask("fake-wechat")

    @app.before_request
    def record_and_fail():
        endpoint = request.path.removeprefix("/cgi-bin/")
        if request.path.startswith("/_fake/"):
            return None
        body = request.get_json(force=True, silent=True)
        with fake.lock:
            fake.calls.append(
                {"endpoint": endpoint, "args": dict(request.args), "json": body, "at": time.time()}
            )
        fault = fake.fault_for(endpoint)
        if fault is None:
            return None
        kind = (
            "delay"
            if fault.get("delay")
            else "status"
            if fault.get("status")
            else f"errcode {fault.get('errcode')}"
        )
        with fake.lock:
            fake.injected[kind] = fake.injected.get(kind, 0) + 1
        if fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if fault.get("status"):
            return f"fake HTTP {fault['status']}", int(fault["status"])
        if fault.get("errcode") is not None:
            return jsonify(errcode=int(fault["errcode"]), errmsg=fault.get("errmsg", "injected"))
        return None

    @app.after_request
    def record_answer(response):
        if not request.path.startswith("/_fake/") and response.is_json:
            with fake.lock:
                for call in reversed(fake.calls):
                    if (
                        call["endpoint"] == request.path.removeprefix("/cgi-bin/")
                        and "errcode" not in call
                    ):
                        call["errcode"] = (response.get_json() or {}).get("errcode", 0)
                        break
        return response

    def token_ok() -> bool:
        return request.args.get("access_token") in fake.valid_tokens

    @app.post("/cgi-bin/stable_token")
    def stable_token():
        data = request.get_json(force=True)
        if data.get("appid") != fake.appid or data.get("secret") != fake.secret:
            return jsonify(errcode=40125, errmsg="invalid appsecret")
        with fake.lock:
            if data.get("force_refresh"):
                fake.token_fetches["stable_forced"] += 1
                fake.valid_tokens.clear()
                fake.new_token()
            else:
                fake.token_fetches["stable"] += 1
                if fake.token is None or fake.token_expires < time.time():
                    fake.new_token()
            return jsonify(
                access_token=fake.token, expires_in=int(fake.token_expires - time.time())
            )

    @app.get("/cgi-bin/token")
    def legacy_token():
        with fake.lock:
            fake.token_fetches["legacy"] += 1
            fake.valid_tokens.clear()  # a new /token invalidates the old one (W17)
            return jsonify(access_token=fake.new_token(), expires_in=7200)

    @app.get("/cgi-bin/tags/get")
    def tags_get():
        if not token_ok():
            return jsonify(errcode=40001, errmsg="invalid credential")
        return jsonify(tags=[{"id": i, "name": n, "count": 10} for n, i in fake.tags.items()])

    @app.post("/cgi-bin/draft/add")
    def draft_add():
        if not token_ok():
            return jsonify(errcode=40001, errmsg="invalid credential")
        media_id = "draft-" + secrets.token_hex(8)
        with fake.lock:
            fake.drafts[media_id] = request.get_json(force=True)
        return jsonify(media_id=media_id)

    @app.post("/cgi-bin/material/add_material")
    def add_material():
        if not token_ok():
            return jsonify(errcode=40001, errmsg="invalid credential")
        media = request.files.get("media")
        if request.args.get("type") != "image" or media is None:
            return jsonify(errcode=40004, errmsg="invalid media type")
        data = media.read()
        if not data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
            return jsonify(errcode=40113, errmsg="unsupported file type")
        if len(data) > IMAGE_LIMIT:
            return jsonify(errcode=40009, errmsg="invalid image size")
        media_id = "image-" + secrets.token_hex(8)
        with fake.lock:
            fake.materials[media_id] = {"filename": media.filename, "size": len(data)}
        return jsonify(media_id=media_id, url=f"http://mmbiz.qpic.cn/fake/{media_id}/0")

    @app.post("/cgi-bin/message/custom/send")
    def custom_send():
        """A customer-service message: only within 48 h of the resident's last message (W9)."""
        if not token_ok():
            return jsonify(errcode=40001, errmsg="invalid credential")
        data = request.get_json(force=True)
        if data.get("touser") in fake.window_closed:
            return jsonify(
                errcode=45015, errmsg="response out of time limit or subscription is canceled"
            )
        with fake.lock:
            fake.custom.append({"data": data, "at": time.time()})
        return jsonify(errcode=0, errmsg="ok")

    @app.post("/cgi-bin/message/mass/sendall")
    def sendall():
        if not token_ok():
            return jsonify(errcode=40001, errmsg="invalid credential")
        data = request.get_json(force=True)
        flt = data.get("filter", {})
        if not flt.get("is_to_all") and flt.get("tag_id") not in fake.tags.values():
            return jsonify(errcode=40050, errmsg="invalid tag id")
        if data.get("msgtype") == "mpnews" and data["mpnews"].get("media_id") not in fake.drafts:
            return jsonify(errcode=40007, errmsg="invalid media_id")
        key = data.get("clientmsgid")
        with fake.lock:
            if key and key in fake.sends:
                first = fake.sends[key]
                return jsonify(
                    errcode=45065,
                    errmsg="clientmsgid exist",
                    msg_id=first["msg_id"],
                    msg_data_id=first["msg_data_id"],
                )
            if fake.account_type == "subscription" and _sent_today(fake):
                fake.refused.append({"data": data, "at": time.time(), "errcode": 45028})
                return jsonify(errcode=45028, errmsg="has no masssend quota")
            msg_id = next(fake.ids)
            fake.accepted[key or f"anon-{msg_id}"] = (
                fake.accepted.get(key or f"anon-{msg_id}", 0) + 1
            )
            fake.sends[key or f"anon-{msg_id}"] = {
                "msg_id": msg_id,
                "msg_data_id": msg_id + 7,
                "data": data,
                "at": time.time(),
            }
        return jsonify(
            errcode=0, errmsg="send job submission success", msg_id=msg_id, msg_data_id=msg_id + 7
        )

    @app.post("/_fake/faults")
    def add_fault():
        with fake.lock:
            fake.faults.append(request.get_json(force=True))
        return jsonify(ok=True)

    @app.get("/_fake/calls")
    def calls():
        with fake.lock:
            if request.accept_mimetypes.best_match(["application/json", "text/html"]) == (
                "text/html"
            ):
                return render_template_string(SENT_PAGE, rows=_rows(fake), fake=fake)
            return jsonify(calls=fake.calls, sends=fake.sends, token_fetches=fake.token_fetches)

    @app.post("/_fake/reset")
    def reset():
        fake.reset()
        return jsonify(ok=True)

    @app.post("/_fake/expire-token")
    def expire():
        with fake.lock:
            fake.valid_tokens.clear()
            fake.token, fake.token_expires = None, 0.0
        return jsonify(ok=True)

    return app


def _sent_today(fake: FakeWeChat) -> bool:
    today = datetime.now(BEIJING).date()
    return any(
        datetime.fromtimestamp(x["at"], BEIJING).date() == today for x in fake.sends.values()
    )


def _rows(fake: FakeWeChat) -> list[dict[str, str]]:
    """What was sent and refused, newest first, as people read it (no JSON, no escapes)."""
    names = {i: n for n, i in fake.tags.items()}
    rows = []
    for result, items in (
        ("已提交群发", fake.sends.values()),
        ("被拒绝：今天已群发过", fake.refused),
    ):
        for item in items:
            data = item["data"]
            flt = data.get("filter", {})
            who = (
                "全体"
                if flt.get("is_to_all")
                else names.get(flt.get("tag_id"), str(flt.get("tag_id")))
            )
            if data.get("msgtype") == "mpnews":
                article = (fake.drafts.get(data["mpnews"].get("media_id")) or {}).get(
                    "articles", [{}]
                )[0]
                kind, title = "图文", article.get("title", "")
                text = article.get("digest") or ""
            else:
                kind, title, text = "文字", "", data.get("text", {}).get("content", "")
            rows.append(
                {
                    "at": datetime.fromtimestamp(item["at"], BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                    "who": who,
                    "kind": kind,
                    "title": title,
                    "text": text,
                    "result": f"{result}（msg_id {item['msg_id']}）"
                    if "msg_id" in item
                    else result,
                }
            )
    return sorted(rows, key=lambda r: r["at"], reverse=True)


SENT_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>模拟微信接口：群发记录</title>
<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:.4em;
vertical-align:top}table{border-collapse:collapse}pre{white-space:pre-wrap;margin:0}</style>
</head><body>
<h1>模拟微信接口：群发记录</h1>
<p>账号类型：{{ "订阅号（每天只能群发 1 次）" if fake.account_type == "subscription"
  else "服务号" }}。这里不是真的微信：内容没有发给任何人。</p>
{% if rows %}<table><tr><th>时间（北京）</th><th>发给</th><th>类型</th><th>标题</th>
<th>内容</th><th>结果</th></tr>
{% for r in rows %}<tr><td>{{ r.at }}</td><td>{{ r.who }}</td><td>{{ r.kind }}</td>
<td>{{ r.title }}</td><td><pre>{{ r.text }}</pre></td><td>{{ r.result }}</td></tr>
{% endfor %}</table>{% else %}<p>还没有群发。</p>{% endif %}
</body></html>
"""


def main() -> None:
    parser = argparse.ArgumentParser(description="Stand-in WeChat API for the Pufa demo")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--appid", default="wxpufademo000000")
    parser.add_argument("--secret", default="pufa-demo-secret")
    args = parser.parse_args()
    fake = FakeWeChat(args.appid, args.secret, account_type="subscription")
    print(f"fake WeChat API on http://127.0.0.1:{args.port}/cgi-bin/ (appid {args.appid})")
    create_fake_api(fake).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
