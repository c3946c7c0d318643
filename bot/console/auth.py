"""Sign-in (Flask-Login), the account being worked on, and permission checks for views."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import Flask, abort, flash, g, redirect, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required
from sqlalchemy import select

from bot import accounts, users
from bot.extensions import db
from bot.models import DEFAULT_ACCOUNT_ID, User

F = TypeVar("F", bound=Callable[..., Any])


class Person(UserMixin):
    """The signed-in user as Flask-Login holds them: the row and their roles per account."""

    def __init__(self, row: User, roles: dict[int, str]):
        self.row, self.roles = row, roles

    def get_id(self) -> str:
        # the hash prefix ends every session when the password changes
        return f"{self.row.id}:{self.row.password_hash[-12:]}"

    @property
    def name(self) -> str:
        return self.row.display_name

    @property
    def username(self) -> str:
        return self.row.username


def init_app(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = "console.login"
    manager.login_message = "请先登录"
    manager.session_protection = "strong"
    manager.init_app(app)
    app.config.setdefault(
        "PERMANENT_SESSION_LIFETIME", timedelta(hours=int(app.config["CONSOLE_SESSION_HOURS"]))
    )

    @manager.user_loader
    def load(user_id: str) -> Person | None:
        ident, _, stamp = user_id.partition(":")
        if not ident.isdigit():
            return None
        row = db.session.get(User, int(ident))
        if row is None or not row.active or row.password_hash[-12:] != stamp:
            return None
        return Person(row, users.roles_of(row.id))


def account_id() -> int:
    """The account being worked on: the session's choice among the user's accounts."""
    roles: dict[int, str] = current_user.roles
    chosen = session.get("account_id")
    if chosen in roles:
        return int(chosen)
    return min(roles) if roles else 0


def role() -> str | None:
    return current_user.roles.get(account_id()) if current_user.is_authenticated else None


def can(permission: str) -> bool:
    return users.may(role(), permission)


def operator() -> bool:
    """Runs the deployment: an administrator of its default account (the configured one),
    who adds the townships' accounts and sets their WeChat side."""
    return current_user.is_authenticated and current_user.roles.get(DEFAULT_ACCOUNT_ID) == "admin"


def requires(permission: str) -> Callable[[F], F]:
    """A view for signed-in users whose role in the current account has `permission`."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        @login_required
        def checked(*args: Any, **kwargs: Any) -> Any:
            if current_user.row.must_change_password:
                flash("管理员为您重置了密码：请先设置自己的新密码", "warn")
                return redirect(url_for("console.password"))
            if not can(permission):
                abort(403)
            g.account = accounts.by_id(account_id())
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return wrap


def owned(model: Any, object_id: int) -> Any:
    """The object with this id in the current account; 404 for another account's."""
    found = db.session.scalar(
        select(model).where(model.id == object_id, model.account_id == account_id())
    )
    if found is None:
        abort(404)
    return found


def actor() -> str:
    """How the signed-in user appears in histories: display name (username)."""
    return f"{current_user.name}（{current_user.username}）"
