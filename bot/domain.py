"""Is this message a legal question at all? Out-of-scope messages must cite nothing.

"核桃树不挂果咋个整" can match a resident's story about a neighbour's walnut tree word for
word, so rank agreement alone cannot tell a farming question from a legal one. This gate
compares the question with labelled examples from the tune half of bench/eval: residents'
legal questions on one side, everything else residents send (farming, prices, health,
chit-chat) on the other. Its score is the mean cosine to the k nearest legal examples minus
that to the k nearest others; `bench/calibrate.py domain` fits the threshold so that 98% of
the tune half's legal questions pass.

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
    def __init__(self, data: dict[str, Any], vectors: np.ndarray | None):
        self.examples = data.get("examples", [])
        self.labels = np.array([bool(e["legal"]) for e in self.examples], dtype=bool)
        self.threshold = float(data.get("threshold", -1.0))
        self.k = int(data.get("k", 5))
        self.vectors = vectors

    @classmethod
    def load(cls, embedder: Any, path: Path = DATA) -> Gate | None:
        if embedder is None or embedder.engine is None or not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        vectors = embedder.queries([e["text"] for e in data.get("examples", [])])
        return cls(data, vectors)

    def score(self, qvec: np.ndarray | None, *, exclude: int | None = None) -> float | None:
        """How much nearer the legal questions than the others; None without a vector."""
        if qvec is None or self.vectors is None or not self.labels.any():
            return None
        sims = self.vectors @ qvec
        if exclude is not None:
            sims = sims.copy()
            sims[exclude] = -2.0
        legal = np.sort(sims[self.labels])[::-1][: self.k]
        other = np.sort(sims[~self.labels])[::-1][: self.k]
        return float(legal.mean() - other.mean()) * 10.0

    def legal(self, qvec: np.ndarray | None) -> bool:
        s = self.score(qvec)
        return True if s is None else s >= self.threshold
