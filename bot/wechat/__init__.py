"""Residents, through WeChat's servers: the signed webhook at /wechat."""

from flask import Blueprint

bp = Blueprint("wechat", __name__, url_prefix="/wechat")

from bot.wechat import views  # noqa: E402,F401  (registers the routes)
