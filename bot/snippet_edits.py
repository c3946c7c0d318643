"""Advisers change the law base from the console: a snippet's plain words, or a new snippet.

content/laws/*.toml stay the source of truth. Every change is a targeted text edit of one file
(as bot/signoffs.py does), so the rest of the file keeps its formatting and the change is a
small git diff the office reviews and commits. A change is made one at a time (an exclusive
flock on the content's laws/ directory, across threads and workers), written atomically (a
temporary file in the same directory, then os.replace) and checked twice: the edited file
must parse to exactly the intended data, and the whole base must load as every worker will
load it. Otherwise the file is put back as it was, with its old mtime, so no worker reloads
for nothing. Workers pick a change up by themselves: each compares the files' signatures
every RELOAD_CHECK_SECONDS (2 s) and reloads.

A new snippet's quote is checked word for word against the current text of its article
(bot/fulltext), so only laws in the full text (法律 and the 宪法) can get one here.

Every change is an AuditEvent (`snippet.edit`, `snippet.add`, `snippet.revert`) whose detail is
JSON with the state before and after it; `revert` puts the state before back and is itself an
event, so the history says who changed what, when, and who undid it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot import corrections, lawbase, users
from bot.errors import ContentError, PufaError
from bot.extensions import db

# The full text's own folding and fragment separator, so that the hint names the same
# difference quote_matches (and `flask content check`) finds.
from bot.fulltext import ELLIPSIS, Article, FullText, LawText, fold, quote_matches
from bot.models import AuditEvent, Correction
from bot.numerals import article_label, from_chinese, is_article_label
from bot.posts.states import TZ

EDIT, ADD, REVERT = "snippet.edit", "snippet.add", "snippet.revert"
PHRASING = "snippet.phrasing"  # a corrected question joins the snippet's phrasings
ACTIONS = (EDIT, ADD, REVERT, PHRASING)
EXPLAIN_MAX = 400  # as bot/lawbase.py checks
MIN_QUESTIONS = 3
LOCK_SECONDS = 30.0
DEFAULT_AUDIENCE = ("全体",)
DEFAULT_HELP = ("司法所", "法律援助")  # the first of these the offices file has
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")
_ARTICLE = re.compile(
    r"^第?\s*([0-9]{1,4}|[零一二三四五六七八九十百千]{1,8})\s*条?\s*(之[一二三四五六七八九十]+)?$"
)
_SPLIT = re.compile(r"[,，、;；\s]+")
_SHOWN = str.maketrans(",.;:?!()", "，。；：？！（）")


class EditError(PufaError):
    """A change that cannot be made as asked; the message is for people."""


@dataclass(frozen=True)
class Change:
    """One change of the base as its audit event records it."""

    id: int
    action: str
    snippet_id: str
    file: str  # its file's name in content/laws/
    actor: str
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reverts: int | None = None  # the change this one undid

    @property
    def words(self) -> bool:
        """A change of the summary and the explanation (not a snippet added or removed)."""
        return bool(self.before and self.after and "summary" in self.after)

    @property
    def added(self) -> bool:
        return self.before is None and bool(self.after and "block" in self.after)

    @property
    def removed(self) -> bool:
        return self.after is None and bool(self.before and "block" in self.before)

    @property
    def phrasing(self) -> bool:
        """A resident's question added to the snippet's phrasings (`after["question"]`)."""
        return self.action == PHRASING and bool(self.after and self.after.get("question"))

    @property
    def unphrasing(self) -> bool:
        """The undoing of a phrasing: the question taken out again (`before["question"]`)."""
        return self.action == REVERT and bool(self.before and self.before.get("question"))


# -- editing a snippet's plain words -------------------------------------------------------


def fingerprint(summary: str, explain: str) -> str:
    """What a page showed, so that a save over someone else's newer words is refused."""
    return hashlib.sha256(json.dumps([summary, explain]).encode()).hexdigest()[:16]


def edit_explanation(
    snippet: lawbase.Snippet,
    *,
    summary: str,
    explain: str,
    actor: str,
    content_dir: str | os.PathLike[str],
    expected: str | None = None,
    account_id: int | None = None,
    full: FullText | None = None,
    embedder: Any = None,
    cache_dir: str | None = None,
) -> Change:
    """Rewrite the snippet's `summary` and `explain` lines; nothing else in its file changes.

    `expected` is the fingerprint of the words the adviser started from; `full`, `embedder`
    and `cache_dir` are those the workers load the base with (the check is then their load).
    """
    after = {"summary": _line(summary), "explain": _paragraphs(explain)}
    _check_words(after["summary"], after["explain"])
    loader = _loader(content_dir, full, embedder, cache_dir)
    with _locked(content_dir):
        path = _locate(content_dir, snippet.id, Path(snippet.law.file).name)
        text = _read(path)
        now = _words(text, snippet.id)
        if expected and fingerprint(now["summary"], now["explain"]) != expected:
            raise EditError("这一条刚被别人改过了，请刷新页面，看过最新的内容再改")
        if now == after:
            raise EditError("通俗说法和解释都没有变化")
        new, raw = _set_words(text, snippet.id, after)
        _verify(text, new, lambda data: _entry(data, snippet.id).update(after))
        before = {**now, "raw": raw}
        detail = {"snippet": snippet.id, "file": path.name, "before": before, "after": after}
        row = _apply(path, text, new, loader, actor, EDIT, snippet.id, account_id, detail)
    return _change(row)


def _words(text: str, snippet_id: str) -> dict[str, str]:
    entry = _entry(tomllib.loads(text), snippet_id)
    return {"summary": str(entry["summary"]).strip(), "explain": str(entry["explain"]).strip()}


def _set_words(
    text: str, snippet_id: str, values: dict[str, str], raw: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """The text with these keys' lines of one snippet replaced, and the lines they replaced.

    `raw` gives the exact lines to write back (a revert restores the file byte for byte)."""
    nl = _newline(text)
    lines = text.split(nl)
    start, end = _block(lines, snippet_id)
    spans = {}
    for key in values:
        found = [i for i in range(start, end) if re.match(rf"{key}\s*=", lines[i])]
        if len(found) != 1:
            raise EditError(f"内容文件里这一条的 {key} 不是一行能找到的，请技术人员手工修改")
        spans[key] = (found[0], _value_end(lines, found[0], key, end))
    old = {key: nl.join(lines[i:j]) for key, (i, j) in spans.items()}
    for key, (i, j) in sorted(spans.items(), key=lambda kv: -kv[1][0]):
        line = (raw or {}).get(key) or _assignment(key, values[key], inline=j - i == 1)
        lines[i:j] = re.split(r"\r?\n", line)
    return nl.join(lines), old


# -- a corrected question joins the snippet's phrasings -------------------------------------


def add_question(
    snippet_id: str,
    question: str,
    *,
    actor: str,
    content_dir: str | os.PathLike[str],
    correction_id: int | None = None,
    account_id: int | None = None,
    full: FullText | None = None,
    embedder: Any = None,
    cache_dir: str | None = None,
) -> Change | None:
    """Append a resident's (masked) question to the snippet's `questions`, so that the
    ranking itself learns it: a correction answers this exact question at once; its
    phrasing helps the next resident who asks it in other words. None: already there."""
    asked = _line(question)
    key = corrections.normalise(asked)
    if not key:
        raise EditError("这条消息没有可以加入问法的问题")
    loader = _loader(content_dir, full, embedder, cache_dir)
    with _locked(content_dir):
        path = _locate(content_dir, snippet_id)
        text = _read(path)
        now = _questions(text, snippet_id)
        if key in {corrections.normalise(q) for q in now}:
            return None
        after = [*now, asked]
        new, raw = _set_words(text, snippet_id, {"questions": after})
        _verify(text, new, lambda data: _entry(data, snippet_id).update(questions=after))
        detail = {
            "snippet": snippet_id,
            "file": path.name,
            "before": {"raw": raw},
            "after": {"question": asked, "correction": correction_id},
        }
        row = _apply(path, text, new, loader, actor, PHRASING, snippet_id, account_id, detail)
    return _change(row)


def phrasing_of(correction_id: int) -> Change | None:
    """The phrasing a correction added (the newest, if it was added more than once)."""
    rows = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == PHRASING, AuditEvent.detail.contains('"correction": '))
        .order_by(AuditEvent.id.desc())
    )
    for row in rows:
        change = _change(row)
        if change.after and change.after.get("correction") == correction_id:
            return change
    return None


def _questions(text: str, snippet_id: str) -> list[str]:
    return [str(q) for q in _entry(tomllib.loads(text), snippet_id).get("questions", [])]


def _take_question(
    path: Path, change: Change, loader: Callable[[], object], actor: str, account_id: int | None
) -> AuditEvent:
    """Undo a phrasing: the question leaves the list; the others stay as they are now (a
    later phrasing is kept). Byte for byte when nothing else changed since. Under the lock."""
    sid, asked = change.snippet_id, str((change.after or {}).get("question", ""))
    text = _read(path)
    now = _questions(text, sid)
    if asked not in now:
        raise EditError("这个问法已经不在这一条里了")
    rest = [q for q in now if q != asked]
    if len(rest) < MIN_QUESTIONS:
        raise EditError(f"这一条至少要留 {MIN_QUESTIONS} 种问法，这个问法不能去掉")
    raw = (change.before or {}).get("raw") if now[-1] == asked else None
    new, old = _set_words(text, sid, {"questions": rest}, raw=raw)
    _verify(text, new, lambda data: _entry(data, sid).update(questions=rest))
    detail = {
        "snippet": sid,
        "file": path.name,
        "reverts": change.id,
        "before": {"question": asked, "raw": old},
        "after": {},
    }
    return _apply(path, text, new, loader, actor, REVERT, sid, account_id, detail)


# -- a new snippet -------------------------------------------------------------------------


def add_snippet(
    *,
    law_name: str,
    article: str,
    quote: str,
    summary: str,
    explain: str,
    questions: Sequence[str],
    topics: Sequence[str],
    actor: str,
    content_dir: str | os.PathLike[str],
    audience: Sequence[str] = DEFAULT_AUDIENCE,
    help_offices: Sequence[str] = (),
    slug: str | None = None,
    account_id: int | None = None,
    full: FullText | None = None,
    embedder: Any = None,
    cache_dir: str | None = None,
    today: date | None = None,
) -> Change:
    """Append a `[[snippet]]` to the law's file (a new file if the law has none), its quote
    verified against the article's current text, its review `quote-verified` by `actor`."""
    if full is None:
        raise EditError("法律全文没有加载，核对不了原文，现在不能新建条目")
    law, label, current = find_article(full, law_name, article)
    quote = _paragraphs(quote)
    if not quote:
        raise EditError("请填写法条原文（可以点“从法律原文填入”）")
    if len(quote) > lawbase.QUOTE_MAX:
        raise EditError(
            f"原文最多 {lawbase.QUOTE_MAX} 个字，现在是 {len(quote)} 个字："
            "只留下和问题有关的部分，几段之间用……连接"
        )
    difference = quote_difference(quote, current.text)
    if difference is not None:
        raise EditError(
            f"原文和《{law.name}》{label}的现行文本（{law.version} 版）对不上：{difference}。"
            "请照现行文本逐字抄写，或点“从法律原文填入”"
        )
    summary, explain = _line(summary), _paragraphs(explain)
    _check_words(summary, explain)
    asked = _unique(_line(q) for q in questions)
    if len(asked) < MIN_QUESTIONS:
        raise EditError(f"群众的问法至少写 {MIN_QUESTIONS} 种，一行一种（现在 {len(asked)} 种）")
    tags = _unique(t for x in topics for t in _SPLIT.split(x))
    if not tags:
        raise EditError("请至少写一个话题，如：工资")
    people = _unique(_line(a) for a in audience) or list(DEFAULT_AUDIENCE)
    unknown = [a for a in people if a not in lawbase.AUDIENCES]
    if unknown:
        raise EditError(f"面向的人群只能从这些里选：{'、'.join(sorted(lawbase.AUDIENCES))}")
    known = offices(content_dir)
    helpers = _unique(_line(h) for h in help_offices) or [default_help(known)]
    if any(h not in known for h in helpers):
        raise EditError(f"求助的地方只能从这些里选：{'、'.join(known)}")
    if slug is not None and slug.strip() and not SLUG.match(slug.strip()):
        raise EditError("新文件名只能用小写英文字母、数字和 -，2 到 40 个字符，如 fire-law")
    day = (today or datetime.now(TZ).date()).isoformat()
    entry: dict[str, Any] = {
        "id": "",
        "article": label,
        "quote": quote,
        "summary": summary,
        "explain": explain,
        "questions": asked,
        "topics": tags,
        "audience": people,
        "help": helpers,
        "review": {"status": "quote-verified", "by": _line(actor), "on": day},
    }
    loader = _loader(content_dir, full, embedder, cache_dir)
    with _locked(content_dir):
        files = _law_files(content_dir)
        path = _file_for(law, label, files, content_dir, (slug or "").strip())
        entry["id"] = _new_id(path.stem, label, {i for data in files.values() for i in _ids(data)})
        old = _read(path) if path.exists() else None
        nl = _newline(old or "")
        block = nl.join(_render(entry))
        if old is None:
            header = _header(law, actor=_line(actor), day=day)
            new = nl.join(header) + nl + nl + block + nl
        else:
            new = old.rstrip("\r\n") + nl + nl + block + nl

        def expected(data: dict[str, Any]) -> None:
            if old is None:
                data.update(tomllib.loads("\n".join(header)))
            data.setdefault("snippet", []).append(entry)

        _verify(old or "", new, expected)
        detail = {
            "snippet": entry["id"],
            "file": path.name,
            "new_file": old is None,
            "before": None,
            "after": {"block": block, "citation": f"《{law.name}》{label}"},
        }
        row = _apply(path, old, new, loader, actor, ADD, entry["id"], account_id, detail)
    return _change(row)


def find_article(full: FullText, law_name: str, article: str) -> tuple[LawText, str, Article]:
    """The law, the article's label (第五十条) and its current text; EditError if not quotable."""
    law = full.law(_line(law_name))
    if law is None:
        raise EditError(
            f"法律全文里没有《{_line(law_name)}》：这里只能为现行的法律新建条目（行政法规等不在全文里）"
        )
    label = article_number(article)
    if label in law.withheld:
        raise EditError(
            f"《{law.name}》{label}在法律全文数据里有问题（{law.withheld[label]}），这里核对不了，"
            "请联系技术人员"
        )
    found = law.articles.get(label)
    if found is None:
        raise EditError(f"《{law.name}》（{law.version} 版）没有{label}")
    return law, label, found


def article_number(text: str) -> str:
    """第五十条 from "第五十条", "50", "第50条" or "五十"; 第二百七十六条之一 stays as it is."""
    m = _ARTICLE.match(_line(text).replace(" ", ""))
    if m is None:
        raise EditError(f"“{_line(text)}”不是条文序号：请写成 第五十条 或 50")
    number = m.group(1)
    try:
        n = int(number) if number.isdigit() else from_chinese(number)
        label = article_label(n, m.group(2) or "")
    except ValueError:
        raise EditError(f"“{_line(text)}”不是条文序号：请写成 第五十条 或 50") from None
    if not is_article_label(label):
        raise EditError(f"“{_line(text)}”不是条文序号：请写成 第五十条 或 50")
    return label


def quote_difference(quote: str, text: str) -> str | None:
    """Where the quote first leaves the article's text, in words for an adviser; None if the
    quote is word for word in it (the same rule as `flask content check`)."""
    if quote_matches(quote, text):
        return None
    body, start = fold(text), 0
    for fragment in ELLIPSIS.split(quote):
        wanted = fold(fragment)
        if not wanted:
            continue
        found = body.find(wanted, start)
        if found >= 0:
            start = found + len(wanted)
            continue
        size = next((n for n in range(len(wanted), 0, -1) if wanted[:n] in body[start:]), 0)
        if size == 0:
            return f"“{_shown(wanted[:12])}”这几个字在这一条里找不到"
        at = body.find(wanted[:size], start) + size
        law_has = _shown(body[at : at + 12]) or "（这一条到这里就完了）"
        return (
            f"“{_shown(wanted[:size][-12:])}”之后，您写的是“{_shown(wanted[size : size + 12])}”，"
            f"现行文本是“{law_has}”"
        )
    return "几段原文的先后顺序和这一条不一致"


def offices(content_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Where residents get help (content/offices.toml): key → the office's name."""
    try:
        with open(Path(content_dir, "offices.toml"), "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {
        key: str(entry.get("name", key))
        for key, entry in (data.get("offices") or {}).items()
        if isinstance(entry, dict)
    }


def default_help(known: dict[str, str]) -> str:
    return next((k for k in DEFAULT_HELP if k in known), next(iter(known), "司法所"))


def _file_for(
    law: LawText, label: str, files: dict[Path, dict[str, Any]], content_dir: Any, slug: str
) -> Path:
    """The law's file (of several, the one quoting the nearest article), or a new one."""
    mine = [p for p, data in files.items() if data.get("law") == law.name]
    if mine:
        target = _number(label)

        def distance(path: Path) -> int:
            numbers = [_number(str(s.get("article", ""))) for s in _snippets(files[path])]
            return min((abs(n - target) for n in numbers if n), default=10**6)

        path = min(sorted(mine), key=distance)
        if files[path].get("version") != law.version:
            raise EditError(
                f"条目库里《{law.name}》是 {files[path].get('version')} 版，法律全文是 "
                f"{law.version} 版，版本不一致：请先请技术人员更新这部法律的文件"
            )
        return path
    if slug:
        path = Path(content_dir, "laws", f"{slug}.toml")
        if path.exists():
            raise EditError(f"已经有一个叫 {slug}.toml 的文件了（是别的法律的），请换一个新文件名")
        return path
    stem = name = file_slug(law.short or law.name)
    n = 1
    while (path := Path(content_dir, "laws", f"{name}.toml")).exists():
        n += 1
        name = f"{stem}-{n}"
    return path


def file_slug(short: str) -> str:
    """A new law file's name from the law's short name, as people would type it: the words
    in pinyin, "-law" for 法 (兵役法 → bingyi-law, 治安管理处罚法 → zhian-guanli-chufa-law)."""
    from pypinyin import lazy_pinyin

    from bot.segmentation import jieba

    stem = short.removeprefix("中华人民共和国")
    tail = "-law" if stem.endswith("法") and len(stem) > 1 else ""
    stem = stem.removesuffix("法") if tail else stem
    words = ["".join(lazy_pinyin(w)) for w in jieba.lcut(stem)]
    name = "-".join(re.sub(r"[^a-z0-9]+", "", w.lower()) for w in words if w)
    name = re.sub(r"-{2,}", "-", name).strip("-")[:36].strip("-") or "law"
    return name + tail


def _header(law: LawText, *, actor: str, day: str) -> list[str]:
    """A new law file's fields, as content/README.md describes them."""
    kind = "宪法" if law.name == "中华人民共和国宪法" else "法律"
    effective = law.effective if _is_date(law.effective) else law.version
    lines = [
        f"# Added from the advisers' console by {actor} on {day}: check the header before committing.",
        f"law = {toml_string(law.name)}",
        f"short = {toml_string(law.short)}",
        f"kind = {toml_string(kind)}",
        f"version = {toml_string(law.version)}",
    ]
    if effective < law.version:  # an amended text: the package gives the original commencement
        lines.append(
            f"# effective: unsure (set to the version date; the package gives {law.effective}, "
            "the original commencement)"
        )
        effective = law.version
    lines.append(f"effective = {toml_string(effective)}")
    return lines


def _assignment(key: str, value: Any, *, inline: bool = False) -> str:
    """`key = value` as the content files write it (lines joined with \\n); a list one item a
    line unless `inline` (kept on one line, as it was)."""
    if isinstance(value, list) and inline:
        return f"{key} = [{', '.join(toml_string(v) for v in value)}]"
    if isinstance(value, list):
        return "\n".join([f"{key} = [", *(f"  {toml_string(v)}," for v in value), "]"])
    return f"{key} = {toml_string(value)}"


def _render(entry: dict[str, Any]) -> list[str]:
    lines = ["[[snippet]]"]
    for key, value in entry.items():
        if isinstance(value, list):
            lines += _assignment(key, value, inline=key != "questions").split("\n")
        elif isinstance(value, dict):
            pairs = ", ".join(f"{k} = {toml_string(v)}" for k, v in value.items())
            lines.append(f"{key} = {{ {pairs} }}")
        else:
            lines.append(f"{key} = {toml_string(value)}")
    return lines


def _new_id(stem: str, label: str, taken: set[str]) -> str:
    """<file>-<article number>-adviser, with -2, -3 … when taken (ids are unique in the base)."""
    m = re.match(r"^第(.+?)条(?:之(.+))?$", label)
    number = f"{from_chinese(m.group(1)):03d}" if m else "000"
    if m and m.group(2):
        number += f"-{from_chinese(m.group(2))}"
    prefix = re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")[:50] or "law"
    base = f"{prefix}-{number}-adviser"
    found, n = base, 1
    while found in taken:
        n += 1
        found = f"{base}-{n}"
    return found


def _number(label: str) -> int:
    m = re.match(r"^第(.+?)条", label)
    try:
        return from_chinese(m.group(1)) if m else 0
    except ValueError:
        return 0


# -- history and revert --------------------------------------------------------------------


def history(snippet_id: str) -> list[Change]:
    """Every change of one snippet, newest first."""
    rows = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.target == snippet_id, AuditEvent.action.in_(ACTIONS))
        .order_by(AuditEvent.id.desc())
    )
    return [_change(row) for row in rows]


def get(event_id: int) -> Change | None:
    row = db.session.get(AuditEvent, event_id)
    return _change(row) if row is not None and row.action in ACTIONS else None


def revertible(change: Change, snippet: lawbase.Snippet | None) -> bool:
    """Can this change be undone now: the snippet is still as the change left it."""
    if snippet is None or snippet.id != change.snippet_id:
        return False
    if change.phrasing:
        return str((change.after or {}).get("question")) in snippet.questions
    if change.words and change.after is not None:
        return {"summary": snippet.summary, "explain": snippet.explain} == {
            k: change.after[k] for k in ("summary", "explain")
        }
    return change.added


def revert(
    event_id: int,
    *,
    actor: str,
    content_dir: str | os.PathLike[str],
    account_id: int | None = None,
    full: FullText | None = None,
    embedder: Any = None,
    cache_dir: str | None = None,
) -> Change:
    """Undo a change: the plain words before it come back, or the added snippet is removed
    (with any adviser's correction to it withdrawn). Only while the snippet is still as that
    change left it; a later change is undone first."""
    change = get(event_id)
    if change is None:
        raise EditError("没有这条修改记录")
    if not (change.words or change.added or change.phrasing):
        raise EditError("这条修改记录不能在这里撤销，请技术人员从版本记录里找回")
    sid = change.snippet_id
    loader = _loader(content_dir, full, embedder, cache_dir)
    with _locked(content_dir):
        try:
            path = _locate(content_dir, sid, change.file)
        except EditError:
            raise EditError("这一条已经不在内容文件里了，这次修改撤销不了") from None
        if change.phrasing:
            row = _take_question(path, change, loader, actor, account_id)
            return _change(row)
        text = _read(path)
        if change.words:
            before, after = change.before or {}, change.after or {}
            now = _words(text, sid)
            if now != {k: after[k] for k in ("summary", "explain")}:
                raise EditError("这一条后来又被改过了：请先撤销后来的修改")
            restored = {k: before[k] for k in ("summary", "explain")}
            new, raw = _set_words(text, sid, restored, raw=before.get("raw"))
            _verify(text, new, lambda data: _entry(data, sid).update(restored))
            detail = {
                "snippet": sid,
                "file": path.name,
                "reverts": change.id,
                "before": {**now, "raw": raw},
                "after": restored,
            }
            row = _apply(path, text, new, loader, actor, REVERT, sid, account_id, detail)
        else:
            new, block = _remove(text, sid)
            if new is not None:
                _verify(text, new, lambda data: data["snippet"].remove(_entry(data, sid)))
            detail = {
                "snippet": sid,
                "file": path.name,
                "reverts": change.id,
                "before": {"block": block},
                "after": None,
            }
            row = _apply(path, text, new, loader, actor, REVERT, sid, account_id, detail)
    if change.added:
        _withdraw_corrections(sid, actor)
    return _change(row)


def _remove(text: str, snippet_id: str) -> tuple[str | None, str]:
    """The text without one snippet's block (None: no snippet left), and the block."""
    nl = _newline(text)
    lines = text.split(nl)
    start, end = _block(lines, snippet_id)
    block = nl.join(lines[start:end]).rstrip("\r\n")
    rest = lines[:start] + lines[end:]
    if not any(_is_snippet_header(line) for line in rest):
        return None, block
    new = nl.join(rest)
    if end == len(lines):  # it was the last block: the file ends with one newline, as before
        new = new.rstrip("\r\n") + nl
    return new, block


def _withdraw_corrections(snippet_id: str, actor: str) -> None:
    """Corrections to a removed snippet would answer nothing: back to what was there before."""
    rows = db.session.scalars(select(Correction).where(Correction.snippet_id == snippet_id))
    for row in list(rows):
        if corrections.in_effect_id(row.account_id, row.question_key) == row.id:
            try:
                corrections.revert(correction=row, author=actor)
            except corrections.CorrectionError:
                pass


def _change(row: AuditEvent) -> Change:
    detail = json.loads(row.detail or "{}")
    return Change(
        id=row.id,
        action=row.action,
        snippet_id=str(row.target or detail.get("snippet", "")),
        file=str(detail.get("file", "")),
        actor=row.actor,
        at=row.at,
        before=detail.get("before"),
        after=detail.get("after"),
        reverts=detail.get("reverts"),
    )


# -- writing files -------------------------------------------------------------------------


def _loader(
    content_dir: Any, full: FullText | None, embedder: Any, cache_dir: str | None
) -> Callable[[], object]:
    """The base loaded as the workers load it: in this worker the next reload is then free."""
    return lambda: lawbase.load(content_dir, full=full, embedder=embedder, cache_dir=cache_dir)


@contextmanager
def _locked(content_dir: str | os.PathLike[str]) -> Iterator[None]:
    """One change at a time in the whole content directory, across threads and processes:
    an exclusive flock on the laws/ directory itself (no lock file to leave behind)."""
    fd = os.open(Path(content_dir, "laws"), os.O_RDONLY)
    try:
        deadline = time.monotonic() + LOCK_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EditError("别的顾问正在保存内容文件，请过一会儿再试") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def _apply(
    path: Path,
    old: str | None,
    new: str | None,
    load: Callable[[], object],
    actor: str,
    action: str,
    snippet_id: str,
    account_id: int | None,
    detail: dict[str, Any],
) -> AuditEvent:
    """Write the file (None: remove it), check the base loads, record the change; if anything
    fails the file is put back as it was and nothing is recorded. Called under the lock."""
    mtime = path.stat().st_mtime_ns if old is not None else None
    if new is None:
        path.unlink()
    else:
        _write(path, new)
    try:
        load()
        users.audit(
            actor,
            action,
            account_id=account_id,
            target=snippet_id,
            detail=json.dumps(detail, ensure_ascii=False),
        )
        db.session.flush()
        row = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.target == snippet_id)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).one()
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        if old is None:
            path.unlink(missing_ok=True)
        else:
            _write(path, old, mtime_ns=mtime)
        if isinstance(exc, ContentError):
            shown = "；".join(exc.problems[:3])
            raise EditError(f"改动后条目库校验没通过，文件已恢复原样：{shown}") from None
        if isinstance(exc, SQLAlchemyError):
            raise EditError("修改记录没能存进数据库，文件已恢复原样，请稍后再试") from None
        raise
    return row


def _write(path: Path, text: str, *, mtime_ns: int | None = None) -> None:
    """Atomically: a temporary file beside it (never *.toml, so no loader reads it half
    written), then os.replace. `mtime_ns` restores a file's old modification time."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as f:  # line endings as they are
        return f.read()


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _locate(content_dir: Any, snippet_id: str, hint: str = "") -> Path:
    """The file that holds this snippet now (looked for in `hint` first)."""
    laws = Path(content_dir, "laws")
    paths = sorted(laws.glob("*.toml"))
    if hint and (laws / hint) in paths:
        paths.remove(laws / hint)
        paths.insert(0, laws / hint)
    for path in paths:
        try:
            data = tomllib.loads(_read(path))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if snippet_id in _ids(data):
            return path
    raise EditError(f"内容文件里没有编号为“{snippet_id}”的条目")


def _law_files(content_dir: Any) -> dict[Path, dict[str, Any]]:
    out = {}
    for path in sorted(Path(content_dir, "laws").glob("*.toml")):
        try:
            out[path] = tomllib.loads(_read(path))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise EditError(f"内容文件 {path.name} 现在读不了，请技术人员先修好：{exc}") from None
    return out


def _snippets(data: dict[str, Any]) -> list[dict[str, Any]]:
    entries = data.get("snippet")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _ids(data: dict[str, Any]) -> set[str]:
    return {str(e.get("id")) for e in _snippets(data)}


def _entry(data: dict[str, Any], snippet_id: str) -> dict[str, Any]:
    found = [e for e in _snippets(data) if e.get("id") == snippet_id]
    if len(found) != 1:
        raise EditError(f"内容文件里没有编号为“{snippet_id}”的条目")
    return found[0]


def _is_snippet_header(line: str) -> bool:
    m = _HEADER.match(line)
    return bool(m) and line.strip().startswith("[[") and m.group(1) == "snippet"


def _block(lines: list[str], snippet_id: str) -> tuple[int, int]:
    """The lines of one [[snippet]] table: from its header to the next table (or the end)."""
    id_line = re.compile(rf"^\s*id\s*=\s*([\"']){re.escape(snippet_id)}\1\s*(#.*)?$")
    hits = [i for i, line in enumerate(lines) if id_line.match(line)]
    if len(hits) != 1:
        raise EditError(f"内容文件里找不到编号为“{snippet_id}”的条目（或者找到了不止一处）")
    start = next((i for i in range(hits[0], -1, -1) if _is_snippet_header(lines[i])), None)
    if start is None:
        raise EditError(f"内容文件里编号为“{snippet_id}”的条目不在 [[snippet]] 下面")
    end = next((i for i in range(hits[0] + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    while end < len(lines) and end - 1 > hits[0] and lines[end - 1].lstrip().startswith("#"):
        end -= 1  # comments just above the next table belong to it
    return start, end


def _value_end(lines: list[str], i: int, key: str, end: int) -> int:
    """The line after the value that starts on line `i` ends (a value may span lines)."""
    for j in range(i + 1, end + 1):
        try:
            data = tomllib.loads("\n".join(lines[i:j]))
        except tomllib.TOMLDecodeError:
            continue
        if set(data) == {key}:
            return j
    raise EditError(f"内容文件里这一条的 {key} 读不出来，请技术人员手工修改")


def _verify(old: str, new: str, change: Callable[[dict[str, Any]], None]) -> None:
    """The new text must hold exactly the old data with this change: nothing else moved."""
    expected = tomllib.loads(old) if old else {}
    change(expected)
    try:
        got = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise EditError(f"改动后的文件不是合法的 TOML，没有保存（请告诉技术人员）：{exc}") from None
    if got != expected:
        raise EditError("改动会碰到这一条以外的内容，没有保存（请告诉技术人员）")


# -- text ----------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _line(text: str) -> str:
    """One line: runs of white space (line breaks too) become one space."""
    return " ".join(str(text or "").split())


def _paragraphs(text: str) -> str:
    """Paragraphs kept (one line break between them), each line's spaces trimmed."""
    lines = str(text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(" ".join(line.split()) for line in lines if line.strip())


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(x for x in items if x))


def _is_date(value: str) -> bool:
    try:
        return len(value) == 10 and bool(date.fromisoformat(value))
    except ValueError:
        return False


def _shown(folded: str) -> str:
    """Folded text as an adviser reads it: full-width punctuation again."""
    return folded.translate(_SHOWN)


def _check_words(summary: str, explain: str) -> None:
    if not summary:
        raise EditError("通俗说法不能空着")
    if len(summary) > lawbase.SUMMARY_MAX:
        raise EditError(f"通俗说法最多 {lawbase.SUMMARY_MAX} 个字，现在是 {len(summary)} 个字")
    if not explain:
        raise EditError("解释不能空着")
    if len(explain) > EXPLAIN_MAX:
        raise EditError(f"解释最多 {EXPLAIN_MAX} 个字，现在是 {len(explain)} 个字")
