"""Sign in and out, the home page with this month's figures, switching accounts."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from bot import accounts, users
from bot.console import bp
from bot.console.auth import Person, account_id, requires
from bot.console.forms import AccountForm, ActionForm, LoginForm
from bot.extensions import db
from bot.models import Exchange, HelpRequest, Post
from bot.posts.states import STATES, TZ

ASKED = ("text", "voice")
# What counts as a consultation (咨询人次): a question the bot answered, offered choices or
# articles for, could not answer, or that was an emergency. Greetings, thanks, feedback and
# the steps of a request for a person are not questions.
QUESTION_OUTCOMES = ("answered", "choices", "suggestions", "no_answer", "emergency", "follow_up")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = users.authenticate(form.username.data or "", form.password.data or "")
        if user is None:
            flash("用户名或密码不对", "error")
        elif not users.roles_of(user.id):
            flash("这个用户还没有分配到任何公众号，请联系管理员", "error")
        else:
            session.clear()
            session.permanent = True  # expires after CONSOLE_SESSION_HOURS
            login_user(Person(user, users.roles_of(user.id)))
            if user.must_change_password:
                flash("这是管理员给您的临时密码：请先设置自己的新密码", "warn")
                return redirect(url_for("console.password"))
            return redirect(url_for("console.home"))
    return render_template("console/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    if ActionForm().validate_on_submit():
        logout_user()
        session.clear()
    return redirect(url_for("console.login"))


@bp.post("/account")
@login_required
def switch_account():
    form = AccountForm()
    if not form.validate_on_submit() or not str(form.account_id.data).isdigit():
        abort(400)
    chosen = int(form.account_id.data)
    if chosen not in current_user.roles:
        abort(403)
    session["account_id"] = chosen
    return redirect(url_for("console.home"))


@bp.get("/")
@requires("view")
def home():
    aid = account_id()
    now = datetime.now(TZ)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    month = (Exchange.account_id == aid) & (Exchange.received_at >= start)
    asked = month & Exchange.kind.in_(ASKED) & Exchange.outcome.in_(QUESTION_OUTCOMES)
    figures = {
        "consultations": _count(select(func.count(Exchange.id)).where(asked)),
        "residents": _count(select(func.count(func.distinct(Exchange.openid_hash))).where(asked)),
        "answered": _count(
            select(func.count(Exchange.id)).where(asked, Exchange.outcome == "answered")
        ),
        "choices": _count(
            select(func.count(Exchange.id)).where(asked, Exchange.outcome == "choices")
        ),
        "unanswered": _count(
            select(func.count(Exchange.id)).where(asked, Exchange.outcome == "no_answer")
        ),
        "suggested": _count(
            select(func.count(Exchange.id)).where(asked, Exchange.outcome == "suggestions")
        ),
        "emergencies": _count(
            select(func.count(Exchange.id)).where(month, Exchange.emergency.is_not(None))
        ),
        "not_useful": _count(
            select(func.count(Exchange.id)).where(month, Exchange.feedback == "not_useful")
        ),
        "requests": _count(
            select(func.count(HelpRequest.id)).where(
                HelpRequest.account_id == aid, HelpRequest.status == "new"
            )
        ),
    }
    post_states = dict(
        db.session.execute(
            select(Post.state, func.count(Post.id))
            .where(Post.account_id == aid)
            .group_by(Post.state)
        ).all()
    )
    return render_template(
        "console/home.html",
        figures=figures,
        post_states={STATES.get(k, k): v for k, v in post_states.items()},
        month=f"{now:%Y年%m月}",
    )


@bp.app_template_filter("beijing")
def _beijing(moment: datetime | None) -> str:
    """A stored moment as staff read it: Beijing time, to the minute."""
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def _count(query) -> int:
    return int(db.session.scalar(query) or 0)


@bp.app_context_processor
def _console_context():
    """What every console page needs: the user, the account, its name, the forms' tokens."""
    if not request.blueprint == "console" or not current_user.is_authenticated:
        return {}
    from bot.console.auth import can, operator, role

    aid = account_id()
    mine = []
    for other in sorted(current_user.roles):
        try:
            mine.append((other, _label(accounts.by_id(other))))
        except accounts.AccountError:
            mine.append((other, f"账号 {other}（配置不全）"))
    return {
        "me": current_user,
        "account_label": dict(mine).get(aid, ""),
        "my_accounts": mine,
        "my_role": users.ROLES.get(role() or "", ""),
        "can": can,
        "operator": operator(),
        "account_id": aid,
        "action_form": ActionForm(),
        "account_form": AccountForm(),
    }


def _label(account: accounts.Settings) -> str:
    return account.name or account.office.name.replace("司法所", "") or account.slug
