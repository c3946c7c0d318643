"""Chinese tokens and BM25 ranking over the snippet base; pure, no Flask.

The index is built once per worker (a few hundred snippets take well under a second) and a
query is a lookup and a sum, so answering stays in the millisecond range. Tokens come from
jieba's search mode (a word and its sub-words, so 拖欠工资 also matches 工资); ranking from
bm25s, which scores eagerly at index time.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import bm25s
import numpy as np
import opencc

from bot import segmentation
from bot.errors import ContentError

segmentation.jieba.setLogLevel(logging.WARNING)
logging.getLogger("bm25s").setLevel(logging.WARNING)

# Words that carry no legal meaning in residents' questions: particles, pronouns, and the
# many ways of asking "what do I do" (咋个整, 怎么办 …).
STOPWORDS = frozenset(
    """
    的 了 吗 呢 啊 吧 呀 么 嘛 哦 喔 哈 啦 咯 噻 撒 嘞 哇 呗 我 你 他 她 它 我们 你们 他们 咱们 俺
    我家 是 在 有 和 与 及 或 就 都 也 还 又 要 会 能 可以 可不可以 能不能 怎么 怎么办 怎么样 怎样
    咋 咋个 咋个整 咋办 咋整 整 如何 什么 啥 啥子 哪个 哪里 哪儿 一下 请问 问 问下 问一下 想 知道 这个
    那个 这 那 个 被 把 给 让 到 去 来 说 不 没 没有 得 地 着 过 吗 对 该 应该 是不是 有没有 为什么
    现在 已经 然后 但是 可是 因为 所以 如果 一个 一些 多少 几 里 上 下 中 为 以 等 于 之 其 而 且
    请 帮 帮忙 谢谢 您好 你好 老师 律师 哈喽 喂 嗯 好 行 吧 呐 吖 捏 哟 喽 法律 规定 法 条
    """.split()
)
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Fold full-width forms (ＡＢＣ１２３，), case and traditional characters (離婚 → 离婚)."""
    return _t2s().convert(unicodedata.normalize("NFKC", text).lower().strip())


def phrase_key(text: str) -> str:
    """A question as a lookup key: normalised, without spaces or punctuation."""
    return _PUNCT.sub("", normalise(text))


@functools.cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")  # read-only converter tables, safe to share


class Lexicon:
    """Residents' words folded into the base's words (遭打 → 被打, 老倌 → 丈夫, 娃儿 → 孩子).

    Applied to questions and to the snippets' own phrasings alike, so either spelling finds
    the other. Read from `content/lexicon.toml`: data, not code.
    """

    def __init__(self, dialect: dict[str, str] | None = None, words: Iterable[str] = ()):
        self.dialect = {normalise(k): normalise(v) for k, v in (dialect or {}).items() if k}
        self.words = tuple(words)
        keys = sorted(self.dialect, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, keys))) if keys else None

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Lexicon:
        """Load the lexicon; a missing file is an empty lexicon, a broken one a ContentError."""
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            return cls()
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            raise ContentError([f"{path}: not valid TOML: {exc}"]) from exc
        dialect = data.get("dialect", {})
        words = data.get("words", {}).get("list", [])
        if not isinstance(dialect, dict) or not all(isinstance(v, str) for v in dialect.values()):
            raise ContentError([f"{path}: [dialect] must map words to words"])
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ContentError([f"{path}: [words] list must be a list of words"])
        return cls(dialect, words)

    def fold(self, text: str) -> str:
        text = normalise(text)
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.dialect[m.group(0)], text)


@dataclass(frozen=True)
class Hit:
    doc: int
    score: float
    coverage: float  # share of the query's weight that the document matched
    matched: int  # how many distinct query tokens the document has
    words: int  # how many of those are words (two characters or more), not single characters


class Tokenizer:
    """A jieba tokenizer of our own, so custom words never leak into other users of jieba."""

    def __init__(
        self,
        words: Iterable[str] = (),
        lexicon: Lexicon | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ):
        self.lexicon = lexicon or Lexicon()
        self._jieba = segmentation.tokenizer(cache_dir)
        for word in (*words, *self.lexicon.words, *self.lexicon.dialect.values()):
            word = normalise(word)
            if 1 < len(word) <= 12 and not _PUNCT.search(word):
                self._jieba.add_word(word, freq=20000)

    def tokens(self, text: str) -> list[str]:
        out = []
        for token in self._jieba.cut_for_search(self.lexicon.fold(text)):
            token = token.strip()
            if token and token not in STOPWORDS and not _PUNCT.fullmatch(token):
                out.append(token)
        return out


class Index:
    """BM25 over tokenised documents; `query` returns hits with scores and coverage."""

    def __init__(self, docs: Sequence[list[str]]):
        self._bm25 = bm25s.BM25()
        self._bm25.index([d or ["∅"] for d in docs], show_progress=False)
        self._vocab: dict[str, int] = self._bm25.vocab_dict
        self._doc_tokens = [frozenset(d) for d in docs]
        n = len(docs)
        df = np.zeros(len(self._vocab))
        for doc in self._doc_tokens:
            for token in doc:
                df[self._vocab[token]] += 1
        self._idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        # A word no snippet has is often a name, a number or a dialect slip: it counts, but no
        # more than a typical word, so one stray word does not sink a clear match.
        self._unknown_idf = float(np.median(self._idf)) if len(self._idf) else 1.0

    def weight(self, token: str) -> float:
        """How much a token says: rare words weigh more; a word no document has weighs most."""
        i = self._vocab.get(token)
        return self._unknown_idf if i is None else float(self._idf[i])

    def query(self, tokens: list[str], k: int = 5) -> list[Hit]:
        known = [t for t in dict.fromkeys(tokens) if t in self._vocab]
        if not known:
            return []
        scores = self._bm25.get_scores(known)
        top = np.argsort(-scores)[:k]
        total = sum(self.weight(t) for t in dict.fromkeys(tokens))
        hits = []
        for i in top:
            if scores[i] <= 0:
                break
            matched = [t for t in dict.fromkeys(tokens) if t in self._doc_tokens[i]]
            weight = sum(self.weight(t) for t in matched)
            words = sum(len(t) > 1 for t in matched)
            hits.append(Hit(int(i), float(scores[i]), weight / total, len(matched), words))
        return hits


class SemanticIndex:
    """Embedding vectors of each document's texts; a document scores its best-matching text."""

    def __init__(
        self,
        vectors: np.ndarray,
        owners: Sequence[int],
        n_docs: int,
        core: Sequence[bool] | None = None,
        questions: np.ndarray | None = None,
    ):
        order = np.argsort(np.asarray(owners, dtype=np.int64), kind="stable")
        self._vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)
        owners_sorted = np.asarray(owners, dtype=np.int64)[order]
        self._starts = np.searchsorted(owners_sorted, np.arange(n_docs))
        self._ends = np.searchsorted(owners_sorted, np.arange(n_docs), side="right")
        self._has = np.isin(np.arange(n_docs), owners_sorted)
        # core texts say what the document is about (a snippet's summary and quote), as
        # opposed to phrasings, whose stories carry incidental words
        flags = np.ones(len(owners), bool) if core is None else np.asarray(core, bool)
        self._core = flags[order]
        self.n_docs = n_docs
        # every phrasing embedded as a question: what legal questions look like (bot/domain.py)
        self.questions = questions

    def core_cosine(self, qvec: np.ndarray, doc: int) -> float:
        """Cosine of the query to the document's best core text."""
        rows = slice(self._starts[doc], self._ends[doc])
        mask = self._core[rows]
        if not mask.any():
            return 0.0
        return float((self._vectors[rows][mask] @ qvec).max())

    def scores(self, qvec: np.ndarray) -> np.ndarray:
        """Cosine of each document's best text to the query (-1 for a document with none)."""
        sims = self._vectors @ qvec
        best = np.maximum.reduceat(sims, np.minimum(self._starts, len(sims) - 1))
        return np.where(self._has, best, -1.0)


@dataclass(frozen=True)
class Candidate:
    """One document as both rankers see it, fused by reciprocal rank."""

    doc: int
    fused: float
    lexical: Hit | None  # None: not in the lexical top k
    lexical_rank: int | None
    cosine: float  # best cosine to the document's texts; 0.0 without embeddings
    semantic_rank: int | None


RRF_K = 20  # small: the top few ranks should dominate a list of a few hundred documents


def fuse(
    lexical: list[Hit], cosines: np.ndarray | None, *, k: int = 10, depth: int = 30
) -> list[Candidate]:
    """Reciprocal rank fusion of BM25 hits and cosine scores (Cormack et al., SIGIR 2009)."""
    fused: dict[int, float] = {}
    lex_rank = {h.doc: r for r, h in enumerate(lexical[:depth])}
    lex_hit = {h.doc: h for h in lexical}
    for doc, r in lex_rank.items():
        fused[doc] = fused.get(doc, 0.0) + 1.0 / (RRF_K + r + 1)
    sem_rank: dict[int, int] = {}
    if cosines is not None and len(cosines):
        top = np.argsort(-cosines)[:depth]
        for r, doc in enumerate(top.tolist()):
            sem_rank[doc] = r
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (RRF_K + r + 1)
    order = sorted(fused, key=lambda d: -fused[d])[:k]
    return [
        Candidate(
            doc=d,
            fused=fused[d],
            lexical=lex_hit.get(d),
            lexical_rank=lex_rank.get(d),
            cosine=float(cosines[d]) if cosines is not None and len(cosines) else 0.0,
            semantic_rank=sem_rank.get(d),
        )
        for d in order
    ]
