"""Administrators add users to their account and set their roles."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, login_user
from sqlalchemy import select

from bot import users
from bot.console import bp
from bot.console.auth import Person, account_id, actor, requires
from bot.console.forms import ActionForm, PasswordForm, UserForm
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
    return _page(form)


def _page(form: UserForm, *, temporary: tuple[str, str] | None = None):
    members = db.session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id())
        .order_by(User.username)
    ).all()
    mine = {user.id for user, _ in members if users.administers(current_user.roles, user.id)}
    return render_template(
        "console/users.html",
        form=form,
        members=members,
        roles=users.ROLES,
        manageable=mine - {current_user.row.id},
        temporary=temporary,
    )


def _member(user_id: int) -> User:
    """A user of this account whom the signed-in admin may manage (never themselves)."""
    member = db.session.scalar(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(User.id == user_id, Membership.account_id == account_id())
    )
    if member is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    if member.id == current_user.row.id or not users.administers(current_user.roles, member.id):
        abort(403)  # the page offers no button for these
    return member


@bp.post("/users/<int:user_id>/<any(disable, enable):action>")
@requires("users.manage")
def user_active(user_id: int, action: str):
    """An admin stops (or allows again) a user of their account; never themselves, nor
    someone who also belongs to an account they do not administer."""
    member = _member(user_id)
    users.set_active(member, action == "enable", actor=actor(), account_id=account_id())
    flash(f"已{'恢复' if action == 'enable' else '停用'} {member.username}", "ok")
    return redirect(url_for("console.user_list"))


@bp.post("/users/<int:user_id>/reset")
@requires("users.manage")
def user_reset(user_id: int):
    """A temporary password for a user who forgot theirs, shown to the admin once (never
    stored or sent anywhere); with it the user can only set a new one."""
    member = _member(user_id)
    temporary = users.reset_password(member, actor=actor(), account_id=account_id())
    response = _page(UserForm(formdata=None), temporary=(member.username, temporary))
    return response, 200, {"Cache-Control": "no-store"}


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    """Any signed-in user changes their own password; their other sessions end."""
    form = PasswordForm()
    if form.validate_on_submit():
        if form.new.data != form.again.data:
            flash("两次输入的新密码不一样", "error")
        else:
            try:
                users.change_password(
                    current_user.row, current=form.current.data or "", new=form.new.data or ""
                )
            except users.UserError as exc:
                flash(str(exc), "error")
            else:
                login_user(Person(current_user.row, current_user.roles))  # this session stays
                flash("密码已修改；其他地方的登录已失效", "ok")
                return redirect(url_for("console.home"))
    return render_template("console/password.html", form=form)
