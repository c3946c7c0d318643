"""Loads and validates `content/laws/*.toml` into frozen snippets, and owns the search index.

Content is data written by people, so every rule is checked as it loads and every problem is
reported with its file, snippet id and field. A running service reloads when a file changes
and keeps serving the last good base if the new one is broken: a typo in a TOML file must
never take the bot down.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from bot import search
from bot.errors import ContentError
from bot.numerals import is_article_label
from bot.segmentation import jieba

log = logging.getLogger(__name__)

KINDS = {"宪法", "法律", "行政法规", "司法解释", "部门规章", "地方性法规"}
AUDIENCES = {
    "全体",
    "学生家长",
    "未成年人",
    "企业",
    "农户",
    "外出务工人员",
    "村组干部",
    "老年人",
    "妇女",
    "烟农",
    "驾驶人",
}
REVIEW_STATUSES = {"quote-verified", "adviser-reviewed"}
SUMMARY_MAX = 40
QUOTE_MAX = 240
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,79}$")
RELOAD_CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Law:
    name: str  # full official name, as cited in 《》
    short: str
    kind: str
    version: str  # ISO date of the text quoted
    effective: str  # ISO date that text came into force
    file: str


@dataclass(frozen=True)
class Office:
    key: str
    name: str
    phone: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Snippet:
    id: str
    law: Law
    article: str
    quote: str
    summary: str
    explain: str
    questions: tuple[str, ...]
    keywords: tuple[str, ...]
    topics: tuple[str, ...]
    audience: tuple[str, ...]
    help: tuple[str, ...]
    review: dict[str, str] = field(hash=False, compare=False)

    @property
    def citation(self) -> str:
        """《中华人民共和国劳动法》第五十条: the full name in 《》 and the article in Chinese."""
        return f"《{self.law.name}》{self.article}"


@dataclass(frozen=True)
class LawBase:
    snippets: tuple[Snippet, ...]
    offices: dict[str, Office]
    index: search.Index
    tokenizer: search.Tokenizer
    signature: tuple[Any, ...]
    by_id: dict[str, Snippet]
    semantic: search.SemanticIndex | None = None  # None: lexical matching only
    core_tokens: tuple[frozenset[str], ...] = ()  # words of each snippet's own text
    positions: dict[str, int] = field(default_factory=dict)  # snippet id → index
    # each curated phrasing (as `search.phrase_key`) → the one snippet it belongs to
    phrasings: dict[str, int] = field(default_factory=dict)

    def curated(self, text: str) -> Snippet | None:
        """The snippet whose curated phrasing this message is, word for word (spaces,
        punctuation, full-width and traditional forms aside), if exactly one has it."""
        i = self.phrasings.get(search.phrase_key(text))
        return None if i is None else self.snippets[i]

    def core_coverage(self, tokens: list[str], snippet: Snippet) -> float:
        """Share of the question's weight found in the snippet's own words (not phrasings):
        a question about walnut trees that matched one resident's story scores low."""
        core = self.core_tokens[self.positions[snippet.id]]
        unique = list(dict.fromkeys(tokens))
        total = sum(self.index.weight(t) for t in unique)
        return sum(self.index.weight(t) for t in unique if t in core) / total if total else 0.0

    @property
    def laws(self) -> dict[str, Law]:
        return {s.law.name: s.law for s in self.snippets}

    def search(self, text: str, k: int = 5) -> list[tuple[Snippet, search.Hit]]:
        """Lexical (BM25) hits alone; `rank` is what answering uses."""
        hits = self.index.query(self.tokenizer.tokens(text), k=k)
        return [(self.snippets[h.doc], h) for h in hits]

    def rank(
        self, text: str, qvec: Any = None, k: int = 10, tokens: list[str] | None = None
    ) -> list[tuple[Snippet, search.Candidate]]:
        """Snippets by both rankers fused; `qvec` is the question's embedding, if any, and
        `tokens` its tokens when the caller has cut them already."""
        if tokens is None:
            tokens = self.tokenizer.tokens(text)
        lexical = self.index.query(tokens, k=30)
        cosines = None
        if qvec is not None and self.semantic is not None:
            cosines = self.semantic.scores(qvec)
        return [(self.snippets[c.doc], c) for c in search.fuse(lexical, cosines, k=k)]


# -- loading and validation ---------------------------------------------------------------


_loaded: dict[tuple[Any, ...], LawBase] = {}


def load(
    content_dir: str | os.PathLike[str],
    *,
    holdout: bool = False,
    full: Any = None,
    embedder: Any = None,
    cache_dir: str | None = None,
) -> LawBase:
    """Read, validate and index every file; raise ContentError listing every problem.

    `holdout` leaves each snippet's last phrasing out of the index, so that bench/recall.py
    can ask questions the index has never seen. With `full` (the full-text tier) every quote
    of a national law is also checked against its current text. Unchanged files are not read
    twice in one process (several apps in one process, as in tests, share the base).
    """
    root = Path(content_dir).resolve()
    key = (str(root), signature(root), holdout, id(full), id(embedder))
    if key not in _loaded:
        if len(_loaded) > 8:
            _loaded.clear()
        base = _load(root, holdout=holdout, embedder=embedder, cache_dir=cache_dir)
        if full is not None:
            from bot.fulltext import check_snippets

            problems = check_snippets(base.snippets, full)
            if problems:
                raise ContentError(problems)
        _loaded[key] = base
    return _loaded[key]


def _load(
    root: Path, *, holdout: bool, embedder: Any = None, cache_dir: str | None = None
) -> LawBase:
    problems: list[str] = []
    offices = _load_offices(root / "offices.toml", problems)
    snippets: list[Snippet] = []
    files = sorted((root / "laws").glob("*.toml"))
    if not files:
        problems.append(f"{root / 'laws'}: no *.toml content files")
    for path in files:
        snippets.extend(_load_law_file(path, offices, problems))
    seen: dict[str, str] = {}
    for s in snippets:
        if s.id in seen:
            problems.append(f"{s.law.file}: snippet '{s.id}': duplicate id (also in {seen[s.id]})")
        seen.setdefault(s.id, s.law.file)
    if problems:
        raise ContentError(problems)
    lexicon = search.Lexicon.read(root / "lexicon.toml")
    words = _custom_words(snippets)
    tokenizer = search.Tokenizer(words, lexicon, cache_dir)
    docs, cores = _tokenised(snippets, tokenizer, words, holdout=holdout, cache_dir=cache_dir)
    return LawBase(
        snippets=tuple(snippets),
        offices=offices,
        index=search.Index(docs),
        tokenizer=tokenizer,
        signature=signature(root),
        by_id={s.id: s for s in snippets},
        semantic=_semantic_index(snippets, embedder, holdout=holdout),
        core_tokens=tuple(frozenset(c) for c in cores),
        positions={s.id: i for i, s in enumerate(snippets)},
        phrasings=_phrasings(snippets, holdout=holdout),
    )


def _phrasings(snippets: list[Snippet], *, holdout: bool) -> dict[str, int]:
    owners: dict[str, set[int]] = {}
    for i, s in enumerate(snippets):
        for q in s.questions[:-1] if holdout else s.questions:
            owners.setdefault(search.phrase_key(q), set()).add(i)
    return {key: next(iter(who)) for key, who in owners.items() if key and len(who) == 1}


def _core_document(s: Snippet, tokenizer: search.Tokenizer) -> list[str]:
    return [t for part in _core_parts(s) for t in tokenizer.tokens(part)]


def _core_parts(s: Snippet) -> list[str]:
    return [s.summary, s.explain, s.quote, *s.keywords, *s.topics, s.law.short]


def passages(s: Snippet, *, holdout: bool = False) -> list[str]:
    """The texts a snippet is matched by meaning: each phrasing, its summary and its quote."""
    questions = s.questions[:-1] if holdout else s.questions
    return [search.normalise(t) for t in (*questions, s.summary, s.quote)]


def _semantic_index(
    snippets: list[Snippet], embedder: Any, *, holdout: bool
) -> search.SemanticIndex | None:
    if embedder is None:
        return None
    texts, owners, core = [], [], []
    for i, s in enumerate(snippets):
        mine = passages(s, holdout=holdout)
        texts += mine
        owners += [i] * len(mine)
        core += [False] * (len(mine) - 2) + [True, True]  # the summary and the quote
    vectors = embedder.passages(texts)
    questions = embedder.queries([search.normalise(q) for s in snippets for q in s.questions])
    if vectors is None or questions is None:
        log.warning("snippet embeddings unavailable: answering by words only")
        return None
    return search.SemanticIndex(vectors, owners, len(snippets), core, questions)


def _tokenised(
    snippets: list[Snippet],
    tokenizer: search.Tokenizer,
    words: set[str],
    *,
    holdout: bool,
    cache_dir: str | None,
) -> tuple[list[list[str]], list[list[str]]]:
    """Each snippet's tokens and core tokens; cached on disk by a hash of everything they
    depend on, since cutting ~7,000 phrasings with jieba takes seconds a worker need not spend.
    """
    digest = hashlib.sha256()
    for part in (
        jieba.__version__,
        repr(sorted(words)),
        repr(sorted(tokenizer.lexicon.dialect.items())),
        repr(tokenizer.lexicon.words),
        repr(sorted(search.STOPWORDS)),
        str(holdout),
    ):
        digest.update(part.encode())
    for s in snippets:
        digest.update(repr((s.id, _parts(s, holdout=holdout), _core_parts(s))).encode())
    path = Path(cache_dir, f"tokens-{digest.hexdigest()[:24]}.json") if cache_dir else None
    if path is not None and path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return data["docs"], data["cores"]
        except (OSError, ValueError, KeyError) as exc:
            log.warning("token cache %s unreadable, cutting again: %s", path, exc)
    docs = [_document(s, tokenizer, holdout=holdout) for s in snippets]
    cores = [_core_document(s, tokenizer) for s in snippets]
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"docs": docs, "cores": cores}, ensure_ascii=False))
            os.replace(tmp, path)
            for old in path.parent.glob("tokens-*.json"):  # earlier content versions
                if old != path and time.time() - old.stat().st_mtime > 86400:
                    old.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("token cache %s not written: %s", path, exc)
    return docs, cores


def _document(s: Snippet, tokenizer: search.Tokenizer, *, holdout: bool) -> list[str]:
    """What a snippet is found by: residents' phrasings first, then its own words."""
    return [t for part in _parts(s, holdout=holdout) for t in tokenizer.tokens(part)]


def _parts(s: Snippet, *, holdout: bool) -> list[str]:
    questions = s.questions[:-1] if holdout else s.questions
    return [
        *questions,
        *s.keywords,
        *s.keywords,
        s.summary,
        s.explain,
        *s.topics,
        s.law.short,
        s.quote,
    ]


def _custom_words(snippets: list[Snippet]) -> set[str]:
    words = {w for s in snippets for w in (*s.keywords, *s.topics, s.law.short)}
    return words | {"咋个整", "莫得", "娃儿", "老汉", "包工头", "工钱", "彩礼", "宅基地", "烧荒"}


def _load_offices(path: Path, problems: list[str]) -> dict[str, Office]:
    data = _read_toml(path, problems)
    offices = {}
    for key, entry in (data.get("offices") or {}).items():
        if not isinstance(entry, dict) or not entry.get("name"):
            problems.append(f"{path}: office '{key}': field 'name': missing")
            continue
        phone = entry.get("phone")
        offices[key] = Office(key, entry["name"], str(phone) if phone else None, entry.get("note"))
    return offices


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        problems.append(f"{path}: missing")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: unreadable: {exc}")
    return {}


def _load_law_file(path: Path, offices: dict[str, Office], problems: list[str]) -> list[Snippet]:
    data = _read_toml(path, problems)
    if not data:
        return []
    where = path.as_posix()
    law = _law_header(data, where, problems)
    entries = data.get("snippet")
    if not isinstance(entries, list) or not entries:
        problems.append(f"{where}: no [[snippet]] entries")
        return []
    if law is None:
        return []
    out = []
    for number, entry in enumerate(entries, start=1):
        snippet = _snippet(entry, law, offices, f"{where}: snippet #{number}", problems)
        if snippet is not None:
            out.append(snippet)
    return out


def _law_header(data: dict[str, Any], where: str, problems: list[str]) -> Law | None:
    before = len(problems)
    for key in ("law", "short", "kind", "version", "effective"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            problems.append(f"{where}: field '{key}': missing or empty")
    if len(problems) > before:
        return None
    if data["kind"] not in KINDS:
        problems.append(f"{where}: field 'kind': '{data['kind']}' is not one of {sorted(KINDS)}")
    for key in ("version", "effective"):
        if not _is_date(data[key]):
            problems.append(f"{where}: field '{key}': '{data[key]}' is not a date YYYY-MM-DD")
    if len(problems) > before:
        return None
    return Law(data["law"], data["short"], data["kind"], data["version"], data["effective"], where)


def _snippet(
    entry: Any, law: Law, offices: dict[str, Office], where: str, problems: list[str]
) -> Snippet | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: not a table")
        return None
    sid = entry.get("id")
    if isinstance(sid, str) and sid:
        where = f"{law.file}: snippet '{sid}'"
    before = len(problems)

    def text(key: str, *, max_len: int | None = None) -> str:
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: field '{key}': missing or empty")
            return ""
        if max_len and len(value) > max_len:
            problems.append(f"{where}: field '{key}': {len(value)} characters, at most {max_len}")
        return value.strip()

    def strings(key: str, *, minimum: int, allowed: set[str] | None = None) -> tuple[str, ...]:
        value = entry.get(key, [] if minimum == 0 else None)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(f"{where}: field '{key}': must be a list of non-empty strings")
            return ()
        if len(value) < minimum:
            problems.append(f"{where}: field '{key}': needs at least {minimum}, has {len(value)}")
        for v in value:
            if allowed is not None and v not in allowed:
                problems.append(f"{where}: field '{key}': unknown value '{v}'")
        return tuple(v.strip() for v in value)

    sid = text("id")
    if sid and not _ID.match(sid):
        problems.append(f"{where}: field 'id': use lowercase letters, digits and '-'")
    article = text("article")
    if article and not is_article_label(article):
        problems.append(f"{where}: field 'article': '{article}' is not like 第五十条")
    quote = text("quote", max_len=QUOTE_MAX)
    summary = text("summary", max_len=SUMMARY_MAX)
    explain = text("explain", max_len=400)
    questions = strings("questions", minimum=3)
    keywords = strings("keywords", minimum=0)
    topics = strings("topics", minimum=1)
    audience = strings("audience", minimum=1, allowed=AUDIENCES)
    helpers = strings("help", minimum=1, allowed=set(offices))
    review = entry.get("review")
    if not isinstance(review, dict) or review.get("status") not in REVIEW_STATUSES:
        problems.append(f"{where}: field 'review': needs status one of {sorted(REVIEW_STATUSES)}")
        review = {}
    elif not review.get("by") or not _is_date(str(review.get("on", ""))):
        problems.append(f"{where}: field 'review': needs 'by' and 'on' (YYYY-MM-DD)")
    if len(problems) > before:
        return None
    return Snippet(
        sid,
        law,
        article,
        quote,
        summary,
        explain,
        questions,
        keywords,
        topics,
        audience,
        helpers,
        {k: str(v) for k, v in review.items()},
    )


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def signature(root: Path) -> tuple[Any, ...]:
    """Names, sizes and mtimes of the content files: cheap to compute, changes on any edit."""
    paths = [root / "offices.toml", root / "lexicon.toml", *sorted((root / "laws").glob("*.toml"))]
    out = []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((p.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


# -- the base in a running app ------------------------------------------------------------


class _Holder:
    """The current base of one worker, swapped whole when the files change."""

    def __init__(
        self, content_dir: str, full: Any = None, embedder: Any = None, cache_dir: str | None = None
    ):
        self.content_dir, self.full, self.embedder = content_dir, full, embedder
        self.cache_dir = cache_dir
        self.base = self._read()
        self.checked_at = time.monotonic()
        self.last_error: str | None = None
        self.failed_signature: tuple[Any, ...] | None = None
        self.lock = threading.Lock()

    def _read(self) -> LawBase:
        return load(
            self.content_dir, full=self.full, embedder=self.embedder, cache_dir=self.cache_dir
        )

    def check_now(self) -> None:
        """The next `current()` looks at the files (after this worker changed them)."""
        self.checked_at = float("-inf")

    def current(self) -> LawBase:
        if time.monotonic() - self.checked_at < RELOAD_CHECK_SECONDS:
            return self.base
        with self.lock:
            self.checked_at = time.monotonic()
            sig = signature(Path(self.content_dir))
            if sig != self.base.signature and sig != self.failed_signature:
                self._reload(sig)
        return self.base

    def _reload(self, sig: tuple[Any, ...]) -> None:
        try:
            self.base = self._read()
        except ContentError as exc:
            self.failed_signature, self.last_error = sig, str(exc)
            log.error("content reload failed; the last good base stays in service:\n%s", exc)
        else:
            self.failed_signature, self.last_error = None, None
            log.info("content reloaded: %d snippets", len(self.base.snippets))


def init_app(app: Flask) -> None:
    """Load the base once per worker; a broken base at start-up stops the boot, loudly.

    Call after fulltext.init_app: quotes of national laws are checked against the full text.
    """
    full = app.extensions.get("pufa.fulltext")
    embedder = app.extensions.get("pufa.embedder")
    cache_dir = os.path.dirname(app.config["EMBEDDING_CACHE"]) or None
    app.extensions["pufa.lawbase"] = _Holder(app.config["CONTENT_DIR"], full, embedder, cache_dir)


def current() -> LawBase:
    return current_app.extensions["pufa.lawbase"].current()


def reload_now() -> LawBase:
    """This worker's base after a change it made itself (others reload within 2 s)."""
    holder = current_app.extensions["pufa.lawbase"]
    holder.check_now()
    return holder.current()
