"""The official accounts a deployment serves: the operator adds townships' accounts and sets
their WeChat side; a township's own administrator keeps its 司法所 and help channels current.

The operator is an administrator of the default account (the configured one, whose settings
stay in the deployment's configuration). Secrets are never typed here: an account names the
environment variables that hold them, and the page says whether this process can read them.
"""

from __future__ import annotations

import re
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from bot import accounts, users
from bot.console import bp
from bot.console.auth import actor, operator, requires
from bot.console.forms import AccountSettingsForm
from bot.extensions import db
from bot.models import DEFAULT_ACCOUNT_ID, Account

_SEPARATORS = re.compile(r"\s*[,，;；]\s*")


@bp.route("/accounts", methods=["GET", "POST"])
@requires("view")
def account_list():
    if not operator():
        abort(403)
    form = AccountSettingsForm()
    if form.validate_on_submit():
        try:
            row = accounts.create(
                slug=(form.slug.data or "").strip(), **_fields(form), commit=False
            )
        except accounts.AccountError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            # one change: the account, its first administrator (whoever adds it, so they can
            # add its users) and the record of both
            users.grant(
                current_user.row, account_id=row.id, role="admin", actor=actor(), commit=False
            )
            users.audit(actor(), "account.create", account_id=row.id, target=row.slug)
            db.session.commit()
            flash(
                f"已添加账号 {row.name}：在公众号后台把服务器地址设为 …/wechat/{row.slug}，"
                f"并在服务器上设置环境变量 {row.token_env}",
                "ok",
            )
            return redirect(url_for("console.account_edit", account_ref=row.id))
    elif form.is_submitted():
        flash("请把账号名称等必填项填好", "error")
    return render_template("console/accounts.html", rows=_rows(), form=form)


@bp.route("/accounts/<int:account_ref>", methods=["GET", "POST"])
@requires("view")
def account_edit(account_ref: int):
    row = db.session.get(Account, account_ref) or abort(404)
    full = operator()
    if not full and current_user.roles.get(row.id) != "admin":
        abort(403 if row.id in current_user.roles else 404)
    if row.id == DEFAULT_ACCOUNT_ID:
        return render_template("console/account.html", row=row, form=None, full=full, **_state(row))
    form = AccountSettingsForm(obj=row)  # what a township admin's form leaves out stays
    if request.method != "POST":
        form.help_channels.data = _channels_text(row.help_channels)
    elif form.validate_on_submit():
        changes = _fields(form)
        if not full:
            changes = {k: v for k, v in changes.items() if k in accounts.TOWNSHIP_FIELDS}
        try:
            accounts.update(row, **changes)
        except accounts.AccountError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            users.audit(actor(), "account.update", account_id=row.id, target=row.slug,
                        detail="、".join(sorted(changes)))  # fmt: skip
            db.session.commit()
            flash("已保存：各工作进程一分钟内用上新的设置", "ok")
            return redirect(url_for("console.account_edit", account_ref=row.id))
    else:
        flash("请把账号名称等必填项填好", "error")
    return render_template("console/account.html", row=row, form=form, full=full, **_state(row))


def _fields(form: AccountSettingsForm) -> dict[str, Any]:
    names = [n for n in accounts.EDITABLE if n not in ("calendar_file", "help_channels")]
    fields: dict[str, Any] = {n: getattr(form, n).data for n in names}
    fields["help_channels"] = _parse_channels(form.help_channels.data or "")
    return fields


def _parse_channels(text: str) -> list[dict[str, str | None]]:
    """ "村调解委员会，0871-1234567，村委会二楼" per line → [{"name", "phone", "address"}]."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = _SEPARATORS.split(line.strip(), maxsplit=2) + [None, None]
        out.append({"name": parts[0], "phone": parts[1] or None, "address": parts[2] or None})
    return out


def _channels_text(channels: list[dict[str, Any]] | None) -> str:
    return "\n".join(
        "，".join(str(c.get(k) or "") for k in ("name", "phone", "address")).rstrip("，")
        for c in channels or []
    )


def _state(row: Account) -> dict[str, Any]:
    """Whether this process can serve the account, and what the operator must set."""
    if row.id == DEFAULT_ACCOUNT_ID:
        return {"missing": [], "settings": accounts.default(), "path": "/wechat"}
    return {
        "missing": accounts.missing_secrets(row),
        "settings": None,
        "path": f"/wechat/{row.slug}",
    }


def _rows() -> list[dict[str, Any]]:
    rows = db.session.scalars(db.select(Account).order_by(Account.id)).all()
    return [{"row": row, **_state(row)} for row in rows]
