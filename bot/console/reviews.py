"""Console pages for advisers: the review queue, one exchange in context, corrections, export.

Everything is within the account being worked on: the queue lists its residents' messages,
an exchange of another account is a 404, and an export holds this account's log only. The
log is masked when it is written; what leaves here is masked again (phone, ID and bank-card
numbers) in case an older row was not.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import Text, cast, exists, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from bot import accounts, answering, corrections, lawbase, search, users
from bot.console import bp
from bot.console.auth import account_id, actor, owned, requires
from bot.console.forms import ActionForm, CorrectionForm, ExportForm, VerdictForm
from bot.console.snippet_edits import learn
from bot.extensions import db
from bot.models import Correction, Exchange, Review
from bot.posts.states import TZ
from bot.privacy import mask

PER_PAGE = 50
AROUND = 5  # the same resident's exchanges shown before and after one
CANDIDATES = 3
MESSAGES = ("text", "voice")  # what residents ask; events and menu clicks are not reviewed
# The queue's outcome filters; "emergency" is any message the detector flagged.
OUTCOMES = {
    "no_answer": "未能答复",
    "choices": "给了选项",
    "suggestions": "全文推荐",
    "emergency": "紧急求助",
    "answered": "直接答复",
}
OUTCOME_LABELS = {
    **OUTCOMES,
    "emergency": "紧急",
    "fulltext": "法条原文",
    "follow_up": "追问",
    "feedback": "反馈",
    "greeting": "问候",
    "thanks": "致谢",
    "who": "问身份",
    "human": "找人工",
    "more": "更多",
    "non_text": "非文字",
    "limited": "限流",
    "failed": "出错",
    "pending": "处理中",
    "request": "求助",
}
EMERGENCIES = {  # bot/emergency.py's hazards, as the console names them
    "suicide": "轻生",
    "forest_fire": "山火",
    "house_fire": "房屋起火",
    "poisoning": "中毒",
    "scam_in_progress": "正在被骗",
    "kidnap_extortion": "绑架勒索",
    "child_missing": "孩子走失",
    "sexual_assault": "性侵",
    "robbery": "抢劫",
    "domestic_violence": "家暴",
    "violence": "暴力伤人",
    "drowning": "溺水",
    "electrocution": "触电",
    "landslide_flood": "山洪滑坡",
    "traffic": "交通事故",
    "animal": "动物咬伤",
    "fall": "摔伤坠落",
    "child_hurt": "孩子受伤",
    "sudden_illness": "急病",
    "other": "其他危险",
}


def hazard(kind: str | None) -> str:
    return EMERGENCIES.get(kind or "", kind or "")


def masked_reply(text: str | None, account: accounts.Settings) -> str:
    """A reply as advisers read it: residents' numbers masked again, the office's own public
    numbers (shown in every answer) left as residents saw them."""
    public = [n for n in (account.office.phone, *(c.phone for c in account.help_channels)) if n]
    held = text or ""
    for i, number in enumerate(public):
        held = held.replace(number, f"\x00{chr(65 + i)}\x00")
    held = mask(held)
    for i, number in enumerate(public):
        held = held.replace(f"\x00{chr(65 + i)}\x00", number)
    return held


FEEDBACK = {"useful": "有用", "not_useful": "没用"}
VERDICTS = {"correct": "回答正确", "partly": "部分正确", "wrong": "回答错误"}
REVIEWED = {"no": "未审核", "yes": "已审核"}
KINDS = {
    "text": "文字",
    "voice": "语音",
    "click": "菜单",
    "subscribe": "关注",
    "scan": "扫码",
    "non_text": "图片等",
}
FILTERS = ("outcome", "feedback", "reviewed", "start", "end", "law", "q")
EXPORT_COLUMNS = (
    "编号",
    "时间（北京时间）",
    "类型",
    "群众的问题",
    "回复",
    "结果",
    "紧急情况",
    "引用法条",
    "群众反馈",
    "顾问评价",
    "耗时（毫秒）",
)


# -- the queue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterLink:
    label: str
    count: int
    href: str
    active: bool


@bp.get("/reviews")
@requires("view")
def review_queue():
    args = _filter_args()
    stmt = (
        select(Exchange)
        .where(*_conditions(args))
        .order_by(Exchange.received_at.desc(), Exchange.id.desc())
    )
    page = db.paginate(stmt, page=_page(), per_page=PER_PAGE, error_out=False)
    verdicts = _verdicts([e.id for e in page.items])
    return render_template(
        "console/reviews/queue.html",
        page=page,
        rows=[(e, shown(e), verdicts.get(e.id)) for e in page.items],
        facets=_facets(args),
        args=args,
        link=lambda **changes: _queue_url(args, **changes),
        export_form=ExportForm(formdata=None, meta={"csrf": False}),
        hints=_hints(),
        mask=mask,
        mask_reply=lambda text: masked_reply(text, g.account),
        hazard=hazard,
        labels=OUTCOME_LABELS,
        feedback=FEEDBACK,
        verdicts=VERDICTS,
    )


def _filter_args() -> dict[str, str]:
    args = {k: request.args.get(k, "").strip()[:100] for k in FILTERS}
    for name in ("start", "end"):
        if args[name] and _day(args[name]) is None:
            flash("日期请写成 2026-01-31 这样", "error")
            args[name] = ""
    return {k: v for k, v in args.items() if v}


def _page() -> int:
    raw = request.args.get("page", "1")
    return max(int(raw), 1) if raw.isdigit() and len(raw) < 7 else 1


def _conditions(args: dict[str, str], *, skip: str = "") -> list[ColumnElement[bool]]:
    """The current account's residents' messages, narrowed by every filter but `skip`."""
    where: list[ColumnElement[bool]] = [
        Exchange.account_id == account_id(),
        Exchange.kind.in_(MESSAGES),
        # the steps of a request for a person ("大寨村", "不留") are followed up under 群众求助
        Exchange.outcome != "request",
    ]
    outcome = args.get("outcome") if skip != "outcome" else None
    if outcome == "emergency":
        where.append(Exchange.emergency.is_not(None))
    elif outcome in OUTCOMES:
        where.append(Exchange.outcome == outcome)
    feedback = args.get("feedback") if skip != "feedback" else None
    if feedback in FEEDBACK:
        where.append(Exchange.feedback == feedback)
    reviewed = args.get("reviewed") if skip != "reviewed" else None
    if reviewed in REVIEWED:
        judged = exists().where(Review.exchange_id == Exchange.id)
        where.append(judged if reviewed == "yes" else ~judged)
    where += _between(_day(args.get("start", "")), _day(args.get("end", "")))
    if args.get("law"):
        where.append(_cites(args["law"]))
    if args.get("q"):
        where.append(Exchange.question.contains(args["q"], autoescape=True))
    return where


def _between(start: date | None, end: date | None) -> list[ColumnElement[bool]]:
    """Received on these Beijing days, both included."""
    where = []
    if start is not None:
        where.append(Exchange.received_at >= _midnight(start))
    if end is not None:
        where.append(Exchange.received_at < _midnight(end + timedelta(days=1)))
    return where


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=TZ).astimezone(UTC)


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _cites(term: str) -> ColumnElement[bool]:
    """Exchanges whose citations name `term` (a law, an article) or cite a snippet of that
    topic. Citations are JSON: matched as stored, with non-ASCII escaped as json writes it."""
    stored = cast(Exchange.citations, Text)
    found = [stored.contains(json.dumps(term)[1:-1], autoescape=True)]
    ids = [s.id for s in lawbase.current().snippets if term in s.topics][:100]
    found += [stored.contains(json.dumps(sid), autoescape=True) for sid in ids]
    return or_(*found)


def _facets(args: dict[str, str]) -> dict[str, list[FilterLink]]:
    """Each filter's choices with how many messages each would list (given the others)."""

    def group(name: str, choices: dict[str, str]) -> list[FilterLink]:
        links = [
            FilterLink(
                "全部",
                _count(_conditions(args, skip=name)),
                _queue_url(args, **{name: None}),
                name not in args,
            )
        ]
        for value, label in choices.items():
            narrowed = _conditions({**args, name: value})
            links.append(
                FilterLink(
                    label,
                    _count(narrowed),
                    _queue_url(args, **{name: value}),
                    args.get(name) == value,
                )
            )
        return links

    return {
        "结果": group("outcome", OUTCOMES),
        "群众反馈": group("feedback", {"not_useful": "说“没用”"}),
        "审核": group("reviewed", REVIEWED),
    }


def _count(where: list[ColumnElement[bool]]) -> int:
    return int(db.session.scalar(select(func.count(Exchange.id)).where(*where)) or 0)


def _queue_url(args: dict[str, str], **changes: str | None) -> str:
    """The queue with these filters changed (None drops one); back to the first page."""
    merged = {**args, **changes}
    return url_for("console.review_queue", **{k: v for k, v in merged.items() if v})


def _verdicts(ids: list[int]) -> dict[int, Review]:
    """The latest verdict of each of these exchanges."""
    if not ids:
        return {}
    rows = db.session.scalars(
        select(Review)
        .where(Review.account_id == account_id(), Review.exchange_id.in_(ids))
        .order_by(Review.id)
    )
    return {r.exchange_id: r for r in rows}


def _hints() -> list[str]:
    """Topics and laws the filter box suggests."""
    base = lawbase.current()
    topics = sorted({t for s in base.snippets for t in s.topics})
    return topics + sorted({s.law.short or s.law.name for s in base.snippets})


def shown(exchange: Exchange) -> list[str]:
    """The articles the resident was shown: the answer, the choices or the suggestions.

    The log also keeps candidates that were not shown (with their scores); those are for the
    exchange page, not for the queue."""
    cited = [c for c in exchange.citations or [] if isinstance(c, dict) and c.get("citation")]
    if exchange.outcome in ("answered", "follow_up", "fulltext", "more"):
        picked = cited[:1]
    elif exchange.outcome == "choices":
        picked = cited[:CANDIDATES]
    elif exchange.outcome == "suggestions":
        picked = [c for c in cited if c.get("source") == "fulltext"]
    else:
        picked = []
    return list(dict.fromkeys(c["citation"] for c in picked))


# -- one exchange ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    snippet: Any  # lawbase.Snippet
    score: float | None
    detail: str


@bp.get("/reviews/<int:exchange_id>")
@requires("view")
def review_exchange(exchange_id: int):
    ex = owned(Exchange, exchange_id)
    return _exchange_page(ex, VerdictForm(), CorrectionForm())


def _exchange_page(ex: Exchange, verdict_form: VerdictForm, correction_form: CorrectionForm):
    aid = account_id()
    key = corrections.normalise(ex.question or "")
    asked = ex.kind in MESSAGES and bool(key)
    now, candidates = _matched_now(ex.question) if asked else (None, [])
    history = corrections.history(aid, key=key, exchange_id=ex.id) if asked else []
    reviews = db.session.scalars(
        select(Review)
        .where(Review.account_id == aid, Review.exchange_id == ex.id)
        .order_by(Review.id.desc())
    ).all()
    return render_template(
        "console/reviews/exchange.html",
        ex=ex,
        before=_around(ex, earlier=True),
        after=_around(ex, earlier=False),
        cited=[c for c in ex.citations or [] if isinstance(c, dict)],
        shown=shown(ex),
        asked=asked,
        now=now,
        candidates=candidates,
        history=history,
        in_effect=corrections.in_effect_id(aid, key) if asked else None,
        reviews=reviews,
        verdict_form=verdict_form,
        correction_form=correction_form,
        snippets=lawbase.current().snippets,
        cite=corrections.cited,
        mask=mask,
        mask_reply=lambda text: masked_reply(text, g.account),
        hazard=hazard,
        labels=OUTCOME_LABELS,
        kinds=KINDS,
        feedback=FEEDBACK,
        verdicts=VERDICTS,
    )


def _around(ex: Exchange, *, earlier: bool) -> list[Exchange]:
    """The same resident's exchanges just before or after this one, in this account."""
    if not ex.openid_hash:
        return []  # the resident unsubscribed: nothing links their messages any more
    stmt = select(Exchange).where(
        Exchange.account_id == ex.account_id,
        Exchange.openid_hash == ex.openid_hash,
        Exchange.id < ex.id if earlier else Exchange.id > ex.id,
    )
    stmt = stmt.order_by(Exchange.id.desc() if earlier else Exchange.id).limit(AROUND)
    rows = list(db.session.scalars(stmt))
    return rows[::-1] if earlier else rows


def _matched_now(question: str) -> tuple[answering.Answer, list[Candidate]]:
    """What the bot answers to this question now, by itself (corrections aside), and its
    best snippets with their scores (read from the answer's logged candidates)."""
    ctx = answering.context()
    ans = answering.answer(question, ctx)
    picked: list[Candidate] = []
    for c in ans.citations:
        snippet = ctx.base.by_id.get(str(c.get("id")))
        if snippet is None or any(p.snippet.id == snippet.id for p in picked):
            continue
        picked.append(Candidate(snippet, c.get("score"), _detail(c)))
    if not picked:  # an article asked by number, or not a legal question: rank anyway
        qvec = ctx.embedder.query(search.normalise(question)) if ctx.embedder else None
        for snippet, cand in ctx.base.rank(question, qvec, k=CANDIDATES):
            logged = {
                "cosine": round(cand.cosine, 3),
                "bm25": round(cand.lexical.score, 3) if cand.lexical else None,
            }
            picked.append(Candidate(snippet, round(cand.fused, 4), _detail(logged)))
    return ans, picked[:CANDIDATES]


def _detail(c: dict[str, Any]) -> str:
    parts = []
    if c.get("confidence") is not None:
        parts.append(f"把握 {c['confidence']:.0%}")
    if c.get("cosine"):
        parts.append(f"语义 {c['cosine']:.3f}")
    if c.get("bm25") is not None:
        parts.append(f"词语 {c['bm25']:.2f}")
    return "，".join(parts)


@bp.post("/reviews/<int:exchange_id>")
@requires("reviews.judge")
def review_verdict(exchange_id: int):
    ex = owned(Exchange, exchange_id)
    form = VerdictForm()
    if not form.validate_on_submit():
        flash("请选择评价", "error")
        return _exchange_page(ex, form, CorrectionForm()), 400
    note = (form.note.data or "").strip() or None
    db.session.add(
        Review(
            account_id=ex.account_id,
            exchange_id=ex.id,
            reviewer=actor(),
            verdict=form.verdict.data,
            note=note,
        )
    )
    users.audit(
        actor(),
        "review.verdict",
        account_id=ex.account_id,
        target=f"exchange:{ex.id}",
        detail=form.verdict.data,
    )
    db.session.commit()
    flash(f"已记录评价：{VERDICTS[form.verdict.data]}", "ok")
    return redirect(url_for("console.review_exchange", exchange_id=ex.id))


@bp.post("/reviews/<int:exchange_id>/correct")
@requires("reviews.correct")
def review_correct(exchange_id: int):
    ex = owned(Exchange, exchange_id)
    form = CorrectionForm()
    if not form.validate_on_submit():
        flash("请选择或填写正确的法条条目", "error")
        return _exchange_page(ex, VerdictForm(), form), 400
    if ex.kind not in MESSAGES or not corrections.normalise(ex.question or ""):
        flash("这条消息不是群众的提问，不能更正", "error")
        return redirect(url_for("console.review_exchange", exchange_id=ex.id))
    try:
        row = corrections.record(
            account_id=ex.account_id,
            question=ex.question,
            snippet_id=form.snippet_id.data or "",
            author=actor(),
            exchange_id=ex.id,
        )
    except corrections.CorrectionError as exc:
        flash(str(exc), "error")
    else:
        flash(f"已更正：以后群众这样问，回答 {corrections.cited(row.snippet_id)}", "ok")
        learn(row)
    return redirect(url_for("console.review_exchange", exchange_id=ex.id))


@bp.post("/reviews/<int:exchange_id>/corrections/<int:correction_id>/revert")
@requires("reviews.correct")
def review_revert(exchange_id: int, correction_id: int):
    ex = owned(Exchange, exchange_id)
    correction = owned(Correction, correction_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        row = corrections.revert(correction=correction, author=actor())
    except corrections.CorrectionError as exc:
        flash(str(exc), "error")
    else:
        now = corrections.cited(row.snippet_id) or "机器人自己的回答"
        flash(f"已撤销更正，这个问题恢复为：{now}", "ok")
        learn(row)
    return redirect(url_for("console.review_exchange", exchange_id=ex.id))


# -- export ---------------------------------------------------------------------------------


@bp.get("/reviews/export")
@requires("log.export")
def review_export():
    form = ExportForm(formdata=request.args, meta={"csrf": False}, fmt="csv")
    if not form.validate():
        flash("导出条件不对：日期请写成 2026-01-31 这样，格式选 CSV 或 Excel", "error")
        return redirect(url_for("console.review_queue"))
    start, end, fmt = form.start.data, form.end.data, form.fmt.data
    if start and end and start > end:
        flash("导出的开始日期晚于结束日期", "error")
        return redirect(url_for("console.review_queue"))
    rows = list(export_rows(account_id(), start=start, end=end))
    body = _xlsx(rows) if fmt == "xlsx" else _csv(rows)
    users.audit(
        actor(),
        "log.export",
        account_id=account_id(),
        target=fmt,
        detail=f"{start or '最早'} 至 {end or '今天'}，{len(rows)} 条",
    )
    db.session.commit()
    name = f"pufa-log-{start or 'all'}-{end or 'now'}.{fmt}"
    mimetype = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if fmt == "xlsx"
        else "text/csv; charset=utf-8"
    )
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def export_rows(aid: int, *, start: date | None, end: date | None) -> Iterator[list[Any]]:
    """The account's log between two Beijing days (both included), masked, as table rows."""
    where = [Exchange.account_id == aid, *_between(start, end)]
    exchanges = db.session.scalars(select(Exchange).where(*where).order_by(Exchange.id)).all()
    verdicts = {
        r.exchange_id: r
        for r in db.session.scalars(
            select(Review).where(Review.account_id == aid).order_by(Review.id)
        )
    }
    for ex in exchanges:
        verdict = verdicts.get(ex.id)
        yield [
            ex.id,
            ex.received_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S"),
            KINDS.get(ex.kind, ex.kind),
            mask(ex.question),
            masked_reply(ex.reply, accounts.by_id(aid)),
            OUTCOME_LABELS.get(ex.outcome, ex.outcome),
            hazard(ex.emergency),
            "、".join(shown(ex)),
            FEEDBACK.get(ex.feedback or "", ""),
            VERDICTS.get(verdict.verdict, verdict.verdict) if verdict else "",
            ex.latency_ms if ex.latency_ms is not None else "",
        ]


def _cell(value: Any) -> Any:
    """A resident's text that a spreadsheet would run as a formula (=, +, -, @) is quoted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM: Excel reads it as UTF-8


def _xlsx(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook(write_only=True)
    sheet = book.create_sheet("问答记录")
    sheet.append(list(EXPORT_COLUMNS))
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
                cell.data_type = "s"  # text as text, never a formula
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
