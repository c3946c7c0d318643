"""Is this message a legal question at all? Out-of-scope messages must cite nothing.

"核桃树不挂果咋个整" can match a resident's story about a neighbour's walnut tree word for
word, so rank agreement alone cannot tell a farming question from a legal one. This gate
compares the question, by meaning, with two crowds: the residents' phrasings of every
snippet in the law base (legal questions, however worded) and labelled messages that are not
legal questions (farming, prices, health, chit-chat: the tune half of
bench/eval/out_of_scope*). Its score is the mean cosine to the k nearest phrasings minus that
to the k nearest other messages; `bench/calibrate.py domain` sets the threshold so that 98%
of the tune half's legal questions pass.

Without the embedding model the gate is open: the lexical rules then decide alone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DATA = Path(__file__).with_name("data") / "domain.json"


class Gate:
    def __init__(self, data: dict[str, Any], others: np.ndarray | None):
        self.examples = data.get("examples", [])  # messages that are not legal questions
        self.threshold = float(data.get("threshold", -1.0))
        self.k = int(data.get("k", 3))
        # Numbered choices (unsure which snippet is meant) need the message to look more
        # like a legal question than a confident answer does: at least
        # `unsure_at - unsure_slope * confidence` (fitted by `bench/calibrate.py unsure`).
        self.unsure_at = float(data.get("unsure_at", self.threshold))
        self.unsure_slope = float(data.get("unsure_slope", 0.0))
        # Suggestions from the full text ("可能相关的法条") need at least this gate score
        # (`bench/calibrate.py unsure`): they are never the answer, so they are offered only
        # to a message that reads like a legal question.
        self.suggest_at = float(data.get("suggest_at", self.threshold))
        self.others = others

    @classmethod
    def load(cls, embedder: Any, path: Path = DATA) -> Gate | None:
        if embedder is None or embedder.engine is None or not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data, embedder.queries([e["text"] for e in data.get("examples", [])]))

    def score(
        self, qvec: np.ndarray | None, legal: np.ndarray | None, *, exclude: int | None = None
    ) -> float | None:
        """How much nearer residents' legal phrasings than other messages; None if unknown."""
        if qvec is None or legal is None or self.others is None or not len(self.others):
            return None
        sims = self.others @ qvec
        if exclude is not None:
            sims[exclude] = -2.0
        return float(_top_mean(legal @ qvec, self.k) - _top_mean(sims, self.k)) * 10.0

    def legal(self, qvec: np.ndarray | None, legal: np.ndarray | None) -> bool:
        return self.passes(self.score(qvec, legal))

    def passes(self, score: float | None) -> bool:
        """May a message with this gate score be answered at all? (Unknown: yes.)"""
        return score is None or score >= self.threshold

    def choices_ok(self, score: float | None, confidence: float | None) -> bool:
        """May a message with this gate score be shown numbered choices?"""
        return clears_choices_bar(score, confidence, self.unsure_at, self.unsure_slope)

    def suggestions_ok(self, score: float | None) -> bool:
        """May a message with this gate score be offered articles of the full text?"""
        return score is None or score >= self.suggest_at


def clears_choices_bar(
    score: float | None, confidence: float | None, at: float, slope: float
) -> bool:
    """The bar for numbered choices: a gate score of at least `at - slope * confidence`."""
    return score is None or score >= at - slope * (confidence or 0.0)


def _top_mean(values: np.ndarray, k: int) -> float:
    """Mean of the k largest values, without sorting all ~7,000 of them."""
    k = min(k, len(values))
    return float(np.partition(values, -k)[-k:].mean())
