"""The official-account API as Pufa uses it: one client per app, errors sorted into kinds.

wechatpy 1.8.18 (the stable release) has no draft/publish wrappers and its mass-send helper
still posts the old `group_id` filter through a deprecated method, so the calls Pufa needs
(stable_token, draft/add, message/mass/sendall with `tag_id`, tags/get, material/add_material)
are made as thin calls through the client's own `post`/`get`: wechatpy still supplies the
HTTP session, the access_token parameter, errcode parsing and the refresh-and-retry on
40001/40014/42001. The 2.0 pre-release has the wrappers but is an alpha; we pin the release
instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask, current_app
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from bot import accounts, tokens
from bot.accounts import Settings
from bot.errors import PufaError

log = logging.getLogger(__name__)

# Errors worth trying again later (W19): system busy, rate limits, the network.
TRANSIENT = {-1, 45011, 45047}
# Errors that no retry fixes: staff must act. The reason is shown to them.
PERMANENT = {
    45009: "今天的接口调用次数已用完（45009），明天再发或在公众号后台清零额度",
    45028: "群发次数已用完（45028）：订阅号每天只能群发一次，服务号每人每月最多四次",
    48001: "公众号没有这个接口的权限（48001）：群发需要认证的公众号",
    40003: "收件人标识无效（40003）",
    40007: "素材编号无效（40007）：图文草稿或封面已失效",
    40050: "用户标签不存在（40050）：请在公众号后台检查标签",
    45064: "群发内容重复或不合规，被平台拦截（45064）",
    45166: "内容含有违规信息，被平台拦截（45166）",
    40125: "AppSecret 不正确（40125）",
    40164: "服务器 IP 不在公众号白名单中（40164）",
}
DUPLICATE_CLIENTMSGID = 45065  # "已经群发过了": the platform returns the first msg_id


class ApiError(PufaError):
    """A failed API call; `transient` ones are retried with backoff, others stop the post."""

    def __init__(self, code: int | None, message: str, *, transient: bool, data: Any = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.transient, self.data = code, message, transient, data

    @property
    def reason(self) -> str:
        """What staff read."""
        if self.code in PERMANENT:
            return PERMANENT[self.code]
        if self.transient:
            return f"微信接口暂时不可用（{self.code}）：{self.message}，将自动重试"
        return f"微信接口拒绝了请求（{self.code}）：{self.message}"


class SharedTokenClient(WeChatClient):
    """wechatpy's client whose access_token is the one every process shares (bot/tokens.py)."""

    def __init__(self, appid: str, secret: str, *, api_base: str, timeout: float):
        super().__init__(appid, secret, timeout=timeout, auto_retry=True)
        self.API_BASE_URL = api_base
        self._held: str | None = None

    @property
    def access_token(self) -> str:
        token = tokens.current(self.appid)
        if token is None:
            token = tokens.refresh(self.appid, self._stable_token)
        self._held = token
        self.session.set(self.access_token_key, token)
        return token

    def fetch_access_token(self) -> dict[str, Any]:
        """wechatpy calls this when WeChat refused our token (40001/40014/42001)."""
        token = tokens.refresh(self.appid, self._stable_token, refused=self._held)
        self._held = token
        self.session.set(self.access_token_key, token)
        return {"access_token": token}

    def _stable_token(self, force_refresh: bool) -> tuple[str, int]:
        """POST /cgi-bin/stable_token: the same token until it expires, unless forced (W18)."""
        body = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret,
            "force_refresh": force_refresh,
        }
        try:
            res = self._http.post(
                self.API_BASE_URL + "stable_token", json=body, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ApiError(None, f"network: {type(exc).__name__}", transient=True) from None
        if res.status_code >= 500:
            raise ApiError(None, f"HTTP {res.status_code}", transient=True)
        data = res.json()
        if data.get("errcode"):
            code = int(data["errcode"])
            raise ApiError(code, data.get("errmsg", ""), transient=code in TRANSIENT)
        log.info("fetched a stable access token (force_refresh=%s)", force_refresh)
        return data["access_token"], int(data.get("expires_in", 7200))


def call(client: SharedTokenClient, method: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
    """One API call, its failures sorted into transient and permanent ApiErrors."""
    try:
        return getattr(client, method)(endpoint, **kwargs)
    except ApiError:
        raise
    except WeChatClientException as exc:
        if exc.errcode is None:  # HTTP error status from WeChat's side
            status = exc.response.status_code if exc.response is not None else None
            raise ApiError(
                None, f"HTTP {status}", transient=status is None or status >= 500
            ) from None
        code = int(exc.errcode)
        data = _json(exc.response)
        raise ApiError(code, str(exc.errmsg), transient=code in TRANSIENT, data=data) from None
    except requests.RequestException as exc:  # timeouts, refused connections
        raise ApiError(None, f"network: {type(exc).__name__}", transient=True) from None


def _json(response: Any) -> Any:
    try:
        return response.json()
    except Exception:
        return None


@dataclass(frozen=True)
class Sent:
    msg_id: str
    msg_data_id: str | None
    duplicate: bool  # WeChat said 45065: this clientmsgid was sent before


def send_to_tag(
    client: SharedTokenClient, *, tag_id: int | None, message: dict[str, Any], clientmsgid: str
) -> Sent:
    """message/mass/sendall by tag (tag_id None: to all followers), deduplicated by clientmsgid."""
    data = {
        "filter": {
            "is_to_all": tag_id is None,
            **({"tag_id": tag_id} if tag_id is not None else {}),
        },
        "send_ignore_reprint": 0,
        "clientmsgid": clientmsgid,
        **message,
    }
    try:
        result = call(client, "post", "message/mass/sendall", data=data)
    except ApiError as exc:
        if (
            exc.code == DUPLICATE_CLIENTMSGID
            and isinstance(exc.data, dict)
            and exc.data.get("msg_id")
        ):
            return Sent(str(exc.data["msg_id"]), _str(exc.data.get("msg_data_id")), duplicate=True)
        raise
    return Sent(str(result["msg_id"]), _str(result.get("msg_data_id")), duplicate=False)


def send_text(client: SharedTokenClient, *, openid: str, text: str) -> None:
    """message/custom/send: a text to one follower, within WeChat's 48-hour window (W9)."""
    data = {"touser": openid, "msgtype": "text", "text": {"content": text}}
    call(client, "post", "message/custom/send", data=data)


def add_draft(
    client: SharedTokenClient,
    *,
    title: str,
    html: str,
    digest: str | None,
    author: str | None,
    thumb_media_id: str | None,
) -> str:
    """draft/add: an article must be a draft before it can be mass-sent as mpnews (W12)."""
    article = {
        "title": title,
        "content": html,
        "digest": digest or "",
        "author": author or "",
        "thumb_media_id": thumb_media_id or "",
        "need_open_comment": 0,
    }
    return call(client, "post", "draft/add", data={"articles": [article]})["media_id"]


def add_image(client: SharedTokenClient, *, data: bytes, mimetype: str) -> str:
    """material/add_material?type=image: a permanent image, as an article's cover must be.

    draft/add takes only a permanent material's media_id as `thumb_media_id` (W12); images
    may be JPG or PNG up to 10 MB. The bytes (not a stream) go in, so wechatpy's retry after
    a token refresh sends them again whole.
    """
    name = "cover.png" if mimetype == "image/png" else "cover.jpg"  # ASCII: no RFC 2231 names
    result = call(
        client,
        "post",
        "material/add_material",
        params={"type": "image"},
        files={"media": (name, data, mimetype)},
    )
    return str(result["media_id"])


def tags(client: SharedTokenClient) -> dict[str, int]:
    """The account's user tags by name (tags/get)."""
    return {t["name"]: int(t["id"]) for t in call(client, "get", "tags/get").get("tags", [])}


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def init_app(app: Flask) -> None:
    app.extensions["pufa.wechat_clients"] = {}


def client(account: Settings | None = None) -> SharedTokenClient:
    """The account's client (the default account's without one), made on first use: workers
    that never publish never make one. Clients are kept per AppID; the token is shared."""
    account = account or accounts.default()
    held: dict[str, SharedTokenClient] = current_app.extensions["pufa.wechat_clients"]
    made = held.get(account.app_id)
    if made is None or made.secret != account.app_secret:
        if not account.app_secret:
            what = (
                "PUFA_WECHAT_APP_SECRET" if account.is_default else f"{account.slug} 的 AppSecret"
            )
            raise ApiError(None, f"{what} is not set", transient=False)
        cfg = current_app.config
        made = held[account.app_id] = SharedTokenClient(
            account.app_id,
            account.app_secret,
            api_base=cfg["WECHAT_API_BASE"],
            timeout=float(cfg["WECHAT_API_TIMEOUT"]),
        )
    return made
