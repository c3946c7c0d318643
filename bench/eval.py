"""Answer quality on the HELD-OUT half of bench/eval, beside two peers, in one run.

    python bench/eval.py            # held-out half (what we report)
    python bench/eval.py --split tune

Pufa is run in-process as a worker runs it (real content, real models). The peers rank the
articles of the national laws for the same questions:
- `china-law-mcp` 0.1.1's own retriever (`china_law_mcp.retrieval.search`: BM25 + coverage
  and phrase bonuses over its laws);
- plain BM25 (bm25s, jieba tokens) over every article of Pufa's full-text tier.
A peer always names an article, so "confidently wrong" for a peer is every wrong first
article; neither peer detects emergencies.

Figures:
- hit@1: the right article is the first one the resident sees (answer or first choice);
- hit@3: among the first three shown (or ranked, for peers);
- answered right: a direct answer with the right article;
- confidently wrong: a direct answer with a wrong article, over all legal questions;
- no answer: nothing cited (honest no-answer);
- emergency recall: emergencies whose reply starts with the numbers (firm: as an alarm);
- false alarms: harmless look-alikes and ordinary questions that got numbers;
- out-of-scope citations: non-legal messages that were shown any article;
- answering p50 / p99: answering.answer() in-process, embedding included.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evalsets  # noqa: E402
import harness  # noqa: E402

from bot import answering, fulltext, search  # noqa: E402


def pufa(split: str) -> tuple[dict[str, float], list[float]]:
    app = harness.make_app()
    legal = evalsets.load("legal", split)
    beyond = evalsets.load("fulltext", split)
    outside = evalsets.load("out_of_scope", split)
    alarms = evalsets.load("emergencies", split)
    lookalikes = evalsets.load("non_emergencies", split)
    times: list[float] = []
    with app.app_context():
        ctx = answering.context()

        def ask(text: str) -> answering.Answer:
            t = time.perf_counter()
            ans = answering.answer(text, ctx)
            times.append((time.perf_counter() - t) * 1000)
            return ans

        for r in legal[:20]:  # warm up caches before timing counts
            answering.answer(r["text"], ctx)
        times.clear()
        out: dict[str, float] = {}
        shown = [(r, ask(r["text"])) for r in legal]
        out["legal questions"] = len(shown)
        CURVE.extend(_curve_points(shown, ctx))
        for r, a in shown:
            if _first(a) not in r["articles"]:
                kind = "wrong answer" if a.outcome == "answered" else f"legal: {a.outcome}"
                FAILURES.append({"kind": kind, "text": r["text"], "shown": harness.cited(a)[:3]})
        out["hit@1"] = _mean(_first(a) in r["articles"] for r, a in shown)
        out["hit@3"] = _mean(
            any(c in r["articles"] for c in harness.cited(a)[:3]) for r, a in shown
        )
        out["answered right"] = _mean(
            a.outcome == "answered" and _first(a) in r["articles"] for r, a in shown
        )
        out["choices"] = _mean(a.outcome == "choices" for _, a in shown)
        out["confidently wrong"] = _mean(
            a.outcome == "answered" and _first(a) not in r["articles"] for r, a in shown
        )
        out["no answer"] = _mean(not harness.cited(a) for _, a in shown)
        beyond_shown = [(r, ask(r["text"])) for r in beyond]
        out["beyond the base: right article suggested"] = _mean(
            a.outcome == "suggestions" and any(c in r["articles"] for c in harness.cited(a))
            for r, a in beyond_shown
        )
        out["beyond the base: wrong snippet answered"] = _mean(
            a.outcome == "answered" for _, a in beyond_shown
        )
        cited_outside = [(r, harness.cited(ask(r["text"]))) for r in outside]
        out["out-of-scope citations"] = sum(bool(c) for _, c in cited_outside)
        FAILURES.extend(
            {"kind": "out of scope cited", "text": r["text"], "shown": c[:3]}
            for r, c in cited_outside
            if c
        )
        out["out-of-scope messages"] = len(outside)
        found = [ask(r["text"]).emergency for r in alarms]
        FAILURES.extend(
            {"kind": "missed emergency", "text": r["text"], "hazard": r["hazard"]}
            for r, e in zip(alarms, found, strict=True)
            if e is None
        )
        out["emergency recall"] = _mean(e is not None for e in found)
        out["emergency recall (firm alarm)"] = _mean(e is not None and e.firm for e in found)
        calm = [ask(r["text"]).emergency for r in lookalikes]
        FAILURES.extend(
            {"kind": "false alarm (firm)", "text": r["text"], "hazard": e.kind}
            for r, e in zip(lookalikes, calm, strict=True)
            if e is not None and e.firm
        )
        out["false alarms (look-alikes)"] = _mean(e is not None for e in calm)
        out["false alarms (look-alikes, firm)"] = _mean(e is not None and e.firm for e in calm)
        ordinary = [ask(r["text"]).emergency for r in legal + outside]
        out["false alarms (ordinary questions)"] = _mean(e is not None for e in ordinary)
    return out, times


CURVE: list[tuple[float, bool]] = []  # (confidence, top snippet right) per legal question
FAILURES: list[dict] = []  # what went wrong, by kind (printed with --failures)


def _curve_points(shown, ctx) -> list[tuple[float, bool]]:
    """Each legal question's confidence and whether the top-ranked snippet was right."""
    points = []
    for r, a in shown:
        if a.confidence is None or a.asked is not None:
            continue
        top = ctx.base.rank(r["text"], ctx.embedder.query(search.normalise(r["text"])), k=1)
        points.append((a.confidence, bool(top) and top[0][0].citation in r["articles"]))
    return points


def print_curve(points: list[tuple[float, bool]], chosen: float) -> None:
    """Precision and recall of direct answers as the answer threshold moves."""
    print(
        "\n| answer if confidence ≥ | answered | precision (right among answered) | recall (right answered / all) |"
    )
    print("|---|---|---|---|")
    n = len(points)
    for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, chosen, 0.9, 0.95):
        answered = [right for p, right in points if p >= t]
        precision = sum(answered) / len(answered) if answered else float("nan")
        mark = " (chosen)" if t == chosen else ""
        print(
            f"| {t:.2f}{mark} | {len(answered) / n:.3f} | {precision:.3f} | {sum(answered) / n:.3f} |"
        )


def china_law_mcp(split: str) -> dict[str, float]:
    from china_law_mcp import retrieval

    legal = evalsets.load("legal", split)
    ranked = []
    for r in legal:
        hits = retrieval.search(r["text"], top_k=3)
        ranked.append([f"《{h['law_name']}》{h['article_no']}" for h in hits])
    return _peer(legal, ranked, split)


def plain_bm25(split: str) -> dict[str, float]:
    import bm25s

    full = fulltext.load()
    tok = search.Tokenizer()
    arts = [a for law in full.laws.values() for a in law.articles.values()]
    index = search.Index([tok.tokens(a.text) for a in arts])
    legal = evalsets.load("legal", split)
    ranked = []
    for r in legal:
        hits = index.query(tok.tokens(r["text"]), k=3)
        ranked.append([f"《{arts[h.doc].law}》{arts[h.doc].label}" for h in hits])
    del bm25s
    return _peer(legal, ranked, split)


def _peer(legal: list[dict], ranked: list[list[str]], split: str) -> dict[str, float]:
    outside = evalsets.load("out_of_scope", split)
    return {
        "legal questions": len(legal),
        "hit@1": _mean(
            bool(c) and c[0] in r["articles"] for r, c in zip(legal, ranked, strict=True)
        ),
        "hit@3": _mean(
            any(x in r["articles"] for x in c[:3]) for r, c in zip(legal, ranked, strict=True)
        ),
        "confidently wrong": _mean(
            bool(c) and c[0] not in r["articles"] for r, c in zip(legal, ranked, strict=True)
        ),
        "no answer": _mean(not c for c in ranked),
        "out-of-scope messages": len(outside),
    }


def _first(ans: answering.Answer) -> str | None:
    cited = harness.cited(ans)
    return cited[0] if cited else None


def _mean(values) -> float:
    values = list(values)
    return sum(bool(v) for v in values) / len(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="heldout", choices=["heldout", "tune"])
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--curve", action="store_true", help="precision-recall of direct answers")
    parser.add_argument("--failures", action="store_true", help="print every failure, by kind")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    results, times = pufa(args.split)
    columns = {"Pufa": results}
    if not args.no_peers:
        columns["china-law-mcp retriever"] = china_law_mcp(args.split)
        columns["plain BM25 (articles)"] = plain_bm25(args.split)
    q = statistics.quantiles(times, n=100)
    results["answering p50 ms"] = round(q[49], 1)
    results["answering p99 ms"] = round(q[98], 1)
    rows = list(dict.fromkeys(k for c in columns.values() for k in c))
    print(f"bench/eval.py, {args.split} half, {time.strftime('%Y-%m-%d')}\n")
    print("| figure | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in rows:
        cells = [_cell(c.get(row)) for c in columns.values()]
        print(f"| {row} | " + " | ".join(cells) + " |")
    if args.curve:
        print_curve(CURVE, answering.Confidence.load().answer)
    if args.failures:
        print()
        for f in sorted(FAILURES, key=lambda f: f["kind"]):
            print(json.dumps(f, ensure_ascii=False))


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and v <= 1.0:
        return f"{v:.3f}"
    return f"{v:g}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    main()
