"""Chinese tokens and BM25 ranking over the snippet base; pure, no Flask.

The index is built once per worker (a few hundred snippets take well under a second) and a
query is a lookup and a sum, so answering stays in the millisecond range. Tokens come from
jieba's search mode (a word and its sub-words, so 拖欠工资 also matches 工资); ranking from
bm25s, which scores eagerly at index time.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import bm25s
import jieba
import numpy as np

jieba.setLogLevel(logging.WARNING)
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
    """Fold full-width forms (ＡＢＣ１２３，) and case, as residents' phones type both."""
    return unicodedata.normalize("NFKC", text).lower().strip()


@dataclass(frozen=True)
class Hit:
    doc: int
    score: float
    coverage: float  # share of the query's weight that the document matched
    matched: int  # how many distinct query tokens the document has
    words: int  # how many of those are words (two characters or more), not single characters


class Tokenizer:
    """A jieba tokenizer of our own, so custom words never leak into other users of jieba."""

    def __init__(self, words: Iterable[str] = ()):
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        for word in words:
            word = normalise(word)
            if 1 < len(word) <= 12 and not _PUNCT.search(word):
                self._jieba.add_word(word, freq=20000)

    def tokens(self, text: str) -> list[str]:
        out = []
        for token in self._jieba.cut_for_search(normalise(text)):
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
