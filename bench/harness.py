"""Builds the app as a worker would and asks it questions in-process, for bench scripts."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import create_app  # noqa: E402


def make_app(**overrides):
    """A Pufa app on a throwaway SQLite file, with the real content and the real models."""
    logging.getLogger("bot").setLevel(logging.WARNING)
    tmp = tempfile.mkdtemp(prefix="pufa-bench-")
    config = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
        "SPOOL_DIR": f"{tmp}/spool",
        "EMBEDDING_CACHE": os.environ.get(
            "PUFA_EMBEDDING_CACHE", str(ROOT / "instance" / "embeddings.sqlite3")
        ),
        **overrides,
    }
    return create_app(config)


def cited(ans) -> list[str]:
    """The citations a resident sees, first first (answer, choices, suggestions, others)."""
    if ans.snippet is not None:
        return [ans.snippet.citation] + [s.citation for s in ans.others]
    if ans.options:
        return [s.citation for s in ans.options]
    if ans.suggestions:
        return [s.citation for s in ans.suggestions]
    if ans.outcome == "fulltext" and ans.asked is not None:
        return [f"《{ans.asked.law}》{ans.asked.label}"]
    return []
