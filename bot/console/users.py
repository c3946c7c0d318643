"""Administrators add users to their account and set their roles."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from sqlalchemy import select

from bot import users
from bot.console import bp
from bot.console.auth import account_id, actor, requires
from bot.console.forms import UserForm
from bot.extensions import db
from bot.models import Membership, User


@bp.route("/users", methods=["GET", "POST"])
@requires("users.manage")
def user_list():
    form = UserForm()
    if form.validate_on_submit():
        try:
            users.create(
                username=form.username.data or "",
                display_name=form.display_name.data or "",
                password=form.password.data or "",
                role=form.role.data or "",
                account_id=account_id(),
                actor=actor(),
            )
        except users.UserError as exc:
            flash(str(exc), "error")
        else:
            flash(f"已添加用户 {form.username.data}", "ok")
            return redirect(url_for("console.user_list"))
    members = db.session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id())
        .order_by(User.username)
    ).all()
    return render_template("console/users.html", form=form, members=members, roles=users.ROLES)
