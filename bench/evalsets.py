"""The labelled evaluation sets in bench/eval/, and their fixed tune / held-out split.

Every set is split by a hash of each question's text, so the split never changes when rows
are added and nobody chooses which rows are held out. Pufa is tuned (thresholds, the
confidence model, the emergency model) on the tune half only; figures reported as held-out
come from the other half.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

EVAL = Path(__file__).with_name("eval")
SETS = {
    "emergencies": "emergencies.jsonl",
    "non_emergencies": "non_emergencies.jsonl",
    "legal": ("legal_a.jsonl", "legal_b.jsonl"),
    "fulltext": "fulltext.jsonl",
    "out_of_scope": (
        "out_of_scope.jsonl",
        "out_of_scope_more.jsonl",
        "out_of_scope_fresh.jsonl",
        "out_of_scope_hard.jsonl",
    ),
}


def split_of(text: str) -> str:
    return "tune" if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else "heldout"


def load(name: str, split: str | None = None) -> list[dict]:
    files = SETS[name]
    rows: list[dict] = []
    for file in (files,) if isinstance(files, str) else files:
        path = EVAL / file
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    if split is not None:
        rows = [r for r in rows if split_of(r["text"]) == split]
    return rows
