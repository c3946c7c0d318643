"""Console pages that change the law base: a snippet's plain words, a new snippet, undo.

The changes themselves are bot/snippet_edits.py's; these views read the forms, call it with
the content the workers load, and make this worker look at the files again at once (the page
that follows, and a correction to a new snippet, need the new base; other workers look by
themselves within two seconds).
"""

from __future__ import annotations

import os
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired

from bot import corrections, fulltext, lawbase, signoffs
from bot import snippet_edits as edits
from bot.console import bp
from bot.console.auth import account_id, actor, owned, requires
from bot.console.forms import ActionForm, options
from bot.models import Correction, Exchange
from bot.privacy import mask

MESSAGES = ("text", "voice")  # what residents ask (as the review pages count them)


class ExplanationForm(FlaskForm):
    summary = StringField(
        "通俗说法（一句话直接回答群众，最多 40 个字）", validators=[DataRequired()]
    )
    explain = TextAreaField(
        "解释（群众看得懂的话：这条对他意味着什么、下一步怎么办；建议 40 到 160 个字）",
        validators=[DataRequired()],
    )
    seen = HiddenField()  # the words this form started from: a newer save is not overwritten


class NewSnippetForm(FlaskForm):
    law = StringField("法律", validators=[DataRequired()])
    article = StringField("第几条（如 第五十条 或 50）", validators=[DataRequired()])
    quote = TextAreaField(
        "法条原文（照现行文本逐字抄写；只引一部分时，几段之间用……连接；最多 240 个字）"
    )
    summary = StringField("通俗说法（一句话直接回答群众，最多 40 个字）")
    explain = TextAreaField("解释（群众看得懂的话：这条对他意味着什么、下一步怎么办）")
    questions = TextAreaField("群众的问法（一行一种，至少三种；照群众的原话，方言、错字都可以）")
    topics = StringField("话题（几个话题用逗号或顿号分开，如：工资、劳动合同）")
    audience = SelectMultipleField(
        "面向谁（可多选）",
        choices=options((a, a) for a in sorted(lawbase.AUDIENCES)),
        default=list(edits.DEFAULT_AUDIENCE),
    )
    help = SelectMultipleField("去哪里求助（可多选）", choices=[], validate_choice=False)
    slug = StringField(
        "新文件名（只在这部法律还没有内容文件时用：小写英文字母、数字和 -，如 fire-law；不填自动起名）"
    )
    exchange = HiddenField()


# -- one snippet: its page, its plain words, undo --------------------------------------------


def render_page(
    snippet: lawbase.Snippet, edit_form: ExplanationForm | None = None, status: int = 200
):
    """A snippet's page: its text, sign-off, the form to change its words and their history."""
    if edit_form is None:
        edit_form = ExplanationForm(
            formdata=None,
            summary=snippet.summary,
            explain=snippet.explain,
            seen=edits.fingerprint(snippet.summary, snippet.explain),
        )
    changes = edits.history(snippet.id)
    page = render_template(
        "console/snippets/page.html",
        s=snippet,
        state=signoffs.status(snippet, signoffs.signed()),
        form=ActionForm(),
        edit_form=edit_form,
        changes=changes,
        revertible={c.id for c in changes if edits.revertible(c, snippet)},
    )
    return page, status


@bp.post("/snippets/<snippet_id>/explanation")
@requires("reviews.correct")
def snippet_explanation(snippet_id: str):
    snippet = lawbase.current().by_id.get(snippet_id) or abort(404)
    form = ExplanationForm()
    if not form.validate():
        flash("通俗说法和解释都要填", "error")
        return render_page(snippet, form, 400)
    try:
        edits.edit_explanation(
            snippet,
            summary=form.summary.data,
            explain=form.explain.data,
            expected=form.seen.data or None,
            actor=actor(),
            account_id=account_id(),
            **_content(),
        )
    except edits.EditError as exc:
        flash(str(exc), "error")
        return render_page(snippet, form, 400)
    _look_again()
    flash("已保存，并写入了内容文件：群众两秒内就会收到新的说法", "ok")
    return redirect(url_for("console.snippet_page", snippet_id=snippet.id))


@bp.post("/snippets/changes/<int:event_id>/revert")
@requires("reviews.correct")
def snippet_revert(event_id: int):
    change = edits.get(event_id) or abort(404)
    try:
        done = edits.revert(event_id, actor=actor(), account_id=account_id(), **_content())
    except edits.EditError as exc:
        flash(str(exc), "error")
        if change.snippet_id in lawbase.current().by_id:
            return redirect(url_for("console.snippet_page", snippet_id=change.snippet_id))
        return redirect(url_for("console.snippet_list"))
    _look_again()
    if done.removed:
        flash(f"已撤销：新建的条目 {done.snippet_id} 已从内容文件里删除", "ok")
        return redirect(url_for("console.snippet_list"))
    if done.unphrasing:
        flash("已撤销：这个问法已从这一条的群众问法里去掉（更正本身不变）", "ok")
    else:
        flash("已撤销：恢复为修改前的通俗说法和解释", "ok")
    return redirect(url_for("console.snippet_page", snippet_id=done.snippet_id))


# -- a new snippet ---------------------------------------------------------------------------


@bp.get("/snippets/new")
@requires("reviews.correct")
def snippet_new():
    ex = _exchange(request.args.get("exchange", ""))
    question = request.args.get("question", "") or (mask(ex.question or "") if ex else "")
    form = NewSnippetForm(
        formdata=None,
        questions=" ".join(question.split()),
        exchange=str(ex.id) if ex else "",
        help=[edits.default_help(_offices())],
    )
    return _new_page(form)


@bp.post("/snippets/new")
@requires("reviews.correct")
def snippet_create():
    form = NewSnippetForm()
    ex = _exchange(form.exchange.data or "")
    if request.form.get("action") == "fill":
        return _fill(form)
    if not form.validate():
        flash("请选好法律、写上第几条", "error")
        return _new_page(form, 400)
    fixes = (
        ex is not None and ex.kind in MESSAGES and bool(corrections.normalise(ex.question or ""))
    )
    before = _answered_before(ex) if fixes else None
    try:
        change = edits.add_snippet(
            law_name=form.law.data,
            article=form.article.data,
            quote=form.quote.data or "",
            summary=form.summary.data or "",
            explain=form.explain.data or "",
            questions=(form.questions.data or "").splitlines(),
            topics=[form.topics.data or ""],
            audience=form.audience.data or [],
            help_offices=form.help.data or [],
            slug=form.slug.data or None,
            actor=actor(),
            account_id=account_id(),
            **_content(),
        )
    except edits.EditError as exc:
        flash(str(exc), "error")
        return _new_page(form, 400)
    _look_again()
    flash(f"新条目 {change.snippet_id} 已写入内容文件 {change.file}，群众两秒内就能问到", "ok")
    if fixes and ex is not None:
        try:
            row = corrections.record(
                account_id=ex.account_id,
                question=ex.question,
                snippet_id=change.snippet_id,
                author=actor(),
                exchange_id=ex.id,
                before=before,
            )
        except corrections.CorrectionError as exc:
            flash(f"但这个问题没能更正到新条目：{exc}", "warn")
        else:
            flash(f"问答 #{ex.id} 的问题已更正为新条目，这样问马上就回答它", "ok")
            learn(row)
    return redirect(url_for("console.snippet_page", snippet_id=change.snippet_id))


def _answered_before(ex: Exchange) -> list[dict[str, Any]] | None:
    """What the question gets before the new snippet exists (once it does, the bot may answer
    with it by itself): the correction's "before". None: the correction in effect, as usual."""
    key = corrections.normalise(ex.question or "")
    if corrections.in_effect_id(ex.account_id, key) is not None:
        return None
    return corrections.uncorrected(ex.question or "")


def _fill(form: NewSnippetForm):
    """The article's current text into the quote box (nothing is saved)."""
    full = fulltext.current()
    if full is None:
        flash("法律全文没有加载，填不了原文", "error")
        return _new_page(form, 400)
    try:
        law, label, article = edits.find_article(full, form.law.data or "", form.article.data or "")
    except edits.EditError as exc:
        flash(str(exc), "error")
        return _new_page(form, 400)
    form.law.data, form.article.data, form.quote.data = law.name, label, article.text
    if len(article.text) > lawbase.QUOTE_MAX:
        flash(
            f"这一条有 {len(article.text)} 个字，超过了 {lawbase.QUOTE_MAX} 个字："
            "请只留下和问题有关的部分，几段之间用……连接",
            "warn",
        )
    return _new_page(form)


def _new_page(form: NewSnippetForm, status: int = 200):
    full = fulltext.current()
    in_base = set(lawbase.current().laws)
    laws = sorted(full.laws.values(), key=lambda law: law.short) if full else []
    known = _offices()
    form.help.choices = options((key, f"{key}（{name}）") for key, name in known.items())
    page = render_template(
        "console/snippets/new.html",
        form=form,
        base_laws=[law for law in laws if law.name in in_base],
        other_laws=[law for law in laws if law.name not in in_base],
        has_fulltext=full is not None,
        topics=sorted({t for s in lawbase.current().snippets for t in s.topics}),
    )
    return page, status


def _exchange(value: str) -> Exchange | None:
    """The exchange a new snippet is written for, in this account (another's is a 404)."""
    value = (value or "").strip()
    return owned(Exchange, int(value)) if value.isdigit() else None


# -- the content the workers load ------------------------------------------------------------


# -- corrections teach the ranking ----------------------------------------------------------


def learn(row: Correction) -> None:
    """After a correction (or its revert): its question joins the snippet's phrasings and
    leaves those an earlier correction of the same question gave it to (a revert back to the
    bot's own answer takes it out everywhere), so that residents who ask the same thing in
    other words find the snippet too. The correction itself is already in
    effect; a file that cannot be written is said, not an error."""
    done = False
    for earlier in corrections.history(row.account_id, key=row.question_key):
        if earlier.id != row.id and earlier.snippet_id != row.snippet_id:
            done |= _forget(earlier)
    if row.snippet_id is not None:
        try:
            change = edits.add_question(
                row.snippet_id,
                row.question,
                actor=actor(),
                correction_id=row.id,
                account_id=row.account_id,
                **_content(),
            )
        except edits.EditError as exc:
            flash(f"更正已生效，但这个问法没能写进内容文件：{exc}", "warn")
        else:
            if change is not None:
                done = True
                flash(
                    f"这个问法也加进了 {change.snippet_id} 的群众问法（内容文件 {change.file}）",
                    "ok",
                )
    if done:
        _look_again()


def _forget(row: Correction) -> bool:
    change = edits.phrasing_of(row.id)
    if change is None or not edits.revertible(
        change, lawbase.current().by_id.get(change.snippet_id)
    ):
        return False
    try:
        edits.revert(change.id, actor=actor(), account_id=row.account_id, **_content())
    except edits.EditError as exc:
        flash(f"问法没能从 {change.snippet_id} 里去掉：{exc}", "warn")
        return False
    return True


def _content() -> dict[str, Any]:
    """Where the base is and what it is loaded with, as lawbase.init_app loads it: the check
    after a change is then this worker's reload, and new texts are embedded once."""
    config = current_app.config
    return {
        "content_dir": config["CONTENT_DIR"],
        "full": fulltext.current(),
        "embedder": current_app.extensions.get("pufa.embedder"),
        "cache_dir": os.path.dirname(config["EMBEDDING_CACHE"]) or None,
    }


def _offices() -> dict[str, str]:
    return edits.offices(current_app.config["CONTENT_DIR"])


def _look_again() -> None:
    """This worker reads the changed files now rather than at its next check."""
    lawbase.reload_now()
