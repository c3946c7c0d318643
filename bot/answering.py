"""answer(text) → Answer: what Pufa found for one message, as data. Never words, never views.

The rules residents rely on:
- An emergency is detected before and apart from any law matching; its numbers never depend
  on retrieval succeeding.
- A citation is a curated snippet whose quote was verified against the law's current text.
  Snippets are ranked by words (BM25 over jieba tokens) and by meaning (sentence
  embeddings), fused; one calibrated confidence decides between a direct answer, numbered
  choices and honesty.
- When no snippet is confident, the full text of the national laws may offer up to three
  "possibly related" articles, labelled as such and never presented as the answer.
- Nothing is paraphrased as a quote and nothing is invented.

The channel (bot/wechat/render.py) turns an Answer into the resident's Chinese reply.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flask import current_app

from bot import articles, domain, emergency, fulltext, lawbase, search, semantic
from bot.fulltext import Article, FullText
from bot.lawbase import LawBase, Snippet

log = logging.getLogger(__name__)

CONFIDENCE = Path(__file__).with_name("data") / "confidence.json"
MAX_CHOICES = 3
MAX_SUGGESTIONS = 3
ARTICLE_KEY = "article:"  # a numbered choice that is an article of the full text
# A message split into questions: at a question mark or full stop, or before 还有/另外/再问.
_SPLIT = re.compile(r"[?？!！。；;\n]+|(?:还有|另外|再问一下|再问|顺便问)")


@dataclass(frozen=True)
class Suggestion:
    """An article of the full text that may be related; no adviser has explained it yet."""

    article: Article
    score: float

    @property
    def citation(self) -> str:
        return f"《{self.article.law}》{self.article.label}"

    @property
    def key(self) -> str:
        """How a numbered choice remembers this article (see `chosen`)."""
        return f"{ARTICLE_KEY}{self.article.law}|{self.article.label}"


@dataclass
class Answer:
    outcome: str  # answered | choices | suggestions | fulltext | no_answer
    snippet: Snippet | None = None  # the answer, when answered
    options: list[Snippet] = field(default_factory=list)  # numbered choices, in order
    suggestions: list[Suggestion] = field(default_factory=list)
    asked: articles.Asked | None = None  # an article asked for by number
    emergency: emergency.Emergency | None = None
    confidence: float | None = None
    others: list[Snippet] = field(default_factory=list)  # the message's other questions
    citations: list[dict[str, Any]] = field(default_factory=list)  # what matched, for the log

    @property
    def choices(self) -> list[str]:
        """What a resident can pick by number after this answer: snippet ids or article keys."""
        if self.suggestions:
            return [s.key for s in self.suggestions]
        return [s.id for s in (self.options or self.others)]


@dataclass(frozen=True)
class Confidence:
    """P(the top-ranked snippet is right) from both rankers, fitted on the tune half."""

    weights: dict[str, float]
    bias: float
    answer: float  # at or above: answer directly
    choices: float  # at or above: offer numbered choices
    suggest: float  # full-text suggestions need a cosine at least this high

    @classmethod
    def load(cls, path: Path = CONFIDENCE) -> Confidence:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            data["weights"],
            data["bias"],
            data["answer"],
            data["choices"],
            data["suggest"],
        )

    def probability(self, feats: dict[str, float]) -> float:
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in feats.items())
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


@dataclass(frozen=True)
class Context:
    """Everything answering reads; built once per request from the app (or by a benchmark)."""

    base: LawBase
    full: FullText | None = None
    embedder: semantic.Embedder | None = None
    detector: emergency.Detector | None = None
    confidence: Confidence | None = None
    articles_index: Any = None  # fulltext.LazyArticleIndex, or None
    domain: domain.Gate | None = None  # None: every message may be a legal question


def context() -> Context:
    ext = current_app.extensions
    return Context(
        base=lawbase.current(),
        full=fulltext.current(),
        embedder=ext.get("pufa.embedder"),
        detector=ext.get("pufa.detector"),
        confidence=ext.get("pufa.confidence"),
        articles_index=ext.get("pufa.article_index"),
        domain=ext.get("pufa.domain"),
    )


def answer(text: str, ctx: Context) -> Answer:
    """Answer one resident message (already stripped of WeChat framing)."""
    plain = search.normalise(text)
    parts = questions_in(text)[:4]
    qvec, part_vecs = _vectors(plain, parts, ctx)
    alarm = ctx.detector.detect(plain, qvec) if ctx.detector is not None else None
    result = _answer_law(text, qvec, parts, part_vecs, ctx)
    if alarm is not None and alarm.firm and result.outcome in ("choices", "suggestions"):
        # someone is in danger: safety and people to call, not a list of shaky guesses
        # ("拿着菜刀…要砍人" must not offer 森林法's tree-felling articles)
        result = Answer("no_answer", confidence=result.confidence, citations=result.citations)
    result.emergency = alarm
    return result


def _vectors(plain: str, parts: list[str], ctx: Context) -> tuple[Any, list[Any]]:
    """The message's embedding and, for several questions, each one's: one model call either
    way (the whole is the normalised sum of its questions), so a message costs one budget."""
    if ctx.embedder is None:
        return None, [None] * len(parts)
    if len(parts) < 2:
        return ctx.embedder.query(plain), []
    vecs = ctx.embedder.parts([search.normalise(p) for p in parts])
    if vecs is None:
        return None, [None] * len(parts)
    whole = vecs.sum(axis=0)
    return whole / max(float(np.linalg.norm(whole)), 1e-9), list(vecs)


def _answer_law(
    text: str, qvec: Any, parts: list[str], part_vecs: list[Any], ctx: Context
) -> Answer:
    wanted = articles.asked(text, base=ctx.base, full=ctx.full)
    if wanted is not None:
        return article_answer(wanted)
    legal = ctx.base.semantic.questions if ctx.base.semantic is not None else None
    gate = ctx.domain.score(qvec, legal) if ctx.domain is not None else None
    # A message that names a law no snippet quotes is a legal question ("献血法规定多大年纪
    # 可以献血"): the gate, built from the snippets' phrasings, scores such questions low by
    # construction. A law the base covers is judged like any message ("民法典宣传月搞啥子活动").
    named = articles.named_law(text, full=ctx.full)
    if named in ctx.base.laws:
        named = None
    judged = ctx.domain is not None and not named
    if judged and not ctx.domain.passes(gate):
        # farming, prices, health, chit-chat: nothing to cite, whatever the words matched
        return Answer("no_answer", citations=[{"domain": gate}])
    whole = _rank_one(text, qvec, ctx, law=named)
    result = whole if len(parts) < 2 else _several(parts, part_vecs, whole, ctx)
    if judged and not _may_show(result, gate, ctx.domain):
        # unsure what was meant, and it reads much like the messages that are not legal
        # questions ("咋个给别人转账"): honesty, not a list of articles
        return Answer("no_answer", confidence=result.confidence, citations=result.citations)
    return result


def _may_show(result: Answer, gate: float | None, domain_gate: domain.Gate) -> bool:
    """Numbered choices and full-text suggestions each have their own gate bar."""
    if result.outcome == "choices":
        return domain_gate.choices_ok(gate, result.confidence)
    if result.outcome == "suggestions":
        return domain_gate.suggestions_ok(gate)
    return True


def _several(parts: list[str], vecs: list[Any], whole: Answer, ctx: Context) -> Answer:
    """Several questions in one message: answer the clearest, offer the others by number."""
    answers = [whole]
    for part, qvec in zip(parts, vecs, strict=True):
        answers.append(_rank_one(part, qvec, ctx, fallback=False))
    direct = [a for a in answers if a.outcome == "answered"]
    if not direct:  # no clear answer: each question's best guess, as numbered choices
        firsts = _distinct([a.options[0] for a in answers[1:] if a.options])[:MAX_CHOICES]
        if len(firsts) < 2:
            return whole
        return Answer(
            "choices", options=firsts, confidence=whole.confidence, citations=whole.citations
        )
    main = max(direct, key=lambda a: a.confidence or 0.0)
    shown = {main.snippet.citation}
    for a in answers:
        first = a.snippet or (a.options[0] if a.options else None)
        if a is not main and first is not None and first.citation not in shown:
            shown.add(first.citation)
            main.others.append(first)
    main.others = main.others[: MAX_CHOICES - 1]
    return main


def _rank_one(
    text: str, qvec: Any, ctx: Context, *, fallback: bool = True, law: str | None = None
) -> Answer:
    tokens = ctx.base.tokenizer.tokens(text)
    ranked = ctx.base.rank(text, qvec, k=10, tokens=tokens)
    found = [_logged(s, c) for s, c in ranked[:5]]
    if not ranked:
        return (
            _fallback(_articles(text, qvec, ctx, law), found, None)
            if fallback
            else Answer("no_answer")
        )
    feats = features_for(text, ranked, qvec, ctx, tokens=tokens)
    p = _probability(feats, ranked, ctx)
    found[0]["confidence"] = round(p, 3)
    conf = ctx.confidence
    answer_at = conf.answer if conf else 0.5
    choices_at = conf.choices if conf else 0.3
    top = ranked[0][0]
    if p >= answer_at:
        return Answer("answered", snippet=top, confidence=p, citations=found)
    curated = ctx.base.curated(text)
    if curated is not None:
        # word for word a question the snippet's curators wrote for it (or an adviser's
        # correction added): a lookup, not a guess, however close its neighbours rank
        return Answer("answered", snippet=curated, confidence=p, citations=found)
    hits = _articles(text, qvec, ctx, law) if fallback and p < choices_at else None
    # Below every threshold, an article of the full text nearer the question than the best
    # snippet's own words (its summary or quote, written as formally as an article) sends
    # the resident to the full text; otherwise the snippets' choices serve them better.
    article_nearer = bool(hits) and hits[0].score >= feats["core_cosine"]
    if p >= choices_at or (hits is not None and not article_nearer):
        options = _distinct([s for s, _ in ranked])[:MAX_CHOICES]
        if len(options) > 1:
            return Answer("choices", options=options, confidence=p, citations=found)
        return Answer("answered", snippet=top, confidence=p, citations=found)
    if not fallback:
        return Answer("no_answer", confidence=p)
    return _fallback(hits, found, p)


def _articles(text: str, qvec: Any, ctx: Context, law: str | None = None) -> list | None:
    """The full text's nearest articles (of `law` alone, when the message names one), or None
    when there is no full-text index to ask."""
    if ctx.articles_index is None or qvec is None:
        return None
    hits = ctx.articles_index.search(
        text, qvec, tokenizer=ctx.base.tokenizer, k=MAX_SUGGESTIONS, law=law
    )
    suggest_at = ctx.confidence.suggest if ctx.confidence else 0.88
    return [h for h in hits if h.score >= suggest_at]


def _fallback(hits: list | None, found: list, p: float | None) -> Answer:
    """No confident snippet: possibly related articles of the full text, or honesty."""
    if hits:
        sugg = [Suggestion(h.article, h.score) for h in hits]
        logged = found + [{"citation": s.citation, "source": "fulltext"} for s in sugg]
        return Answer("suggestions", suggestions=sugg, confidence=p, citations=logged)
    return Answer("no_answer", confidence=p, citations=found)


def questions_in(text: str) -> list[str]:
    """The separate questions of one message ("工资咋个要？还有离婚娃儿归哪个"), longest kept."""
    parts = [p.strip(" ，,、") for p in _SPLIT.split(text)]
    return [p for p in parts if len(p) >= 5]


def confidence_features(
    ranked: list[tuple[Snippet, search.Candidate]], *, core_cosine: float = 0.0
) -> dict[str, float]:
    """What both rankers say about the top snippet, as numbers for the confidence model.

    `core_cosine` is the question's cosine to the top snippet's summary and quote.
    """
    top_snippet, top = ranked[0]
    rival = next((c for s, c in ranked[1:] if s.citation != top_snippet.citation), None)
    lex = top.lexical
    rival_cos = max(
        (c.cosine for s, c in ranked[1:] if s.citation != top_snippet.citation), default=0.0
    )
    return {
        "cosine": top.cosine,
        "cosine_margin": (top.cosine - rival_cos) * 10.0,
        "coverage": lex.coverage if lex else 0.0,
        "bm25": math.log1p(lex.score) if lex else 0.0,
        "words": min(lex.words, 4) / 4.0 if lex else 0.0,
        "lexical_top": float(top.lexical_rank == 0),
        "semantic_top": float(top.semantic_rank == 0),
        "fused_margin": ((top.fused - rival.fused) * search.RRF_K) if rival else 1.0,
        "core_cosine": core_cosine,
    }


def features_for(
    text: str, ranked: list, qvec: Any, ctx: Context, *, tokens: list[str] | None = None
) -> dict[str, float]:
    top = ranked[0][0]
    core = 0.0
    if qvec is not None and ctx.base.semantic is not None:
        core = ctx.base.semantic.core_cosine(qvec, ctx.base.positions[top.id])
    feats = confidence_features(ranked, core_cosine=core)
    if tokens is None:
        tokens = ctx.base.tokenizer.tokens(text)
    feats["core_coverage"] = ctx.base.core_coverage(tokens, top)
    return feats


def _probability(feats: dict[str, float], ranked: list, ctx: Context) -> float:
    if ctx.confidence is not None:
        return ctx.confidence.probability(feats)
    # Without a fitted model (lexical only, or a test base): the first release's rule.
    lex = ranked[0][1].lexical
    if lex is None or lex.score < 1.0 or lex.coverage < 0.45:
        return 0.0
    return 0.9 if lex.matched >= 2 or (lex.coverage >= 0.75 and lex.words >= 1) else 0.0


def chosen(key: str, ctx: Context) -> Answer | None:
    """The answer behind a numbered choice (a snippet id or an article key); None if gone."""
    if key in ctx.base.by_id:
        snippet = ctx.base.by_id[key]
        cited = [{"id": snippet.id, "citation": snippet.citation}]
        return Answer("answered", snippet=snippet, citations=cited)
    if key.startswith(ARTICLE_KEY):
        law, _, label = key.removeprefix(ARTICLE_KEY).partition("|")
        return article_answer(articles.resolve(law, label, base=ctx.base, full=ctx.full))
    return None


def article_answer(wanted: articles.Asked) -> Answer:
    """An article asked for by number: curated if we have it, else the exact full text."""
    if wanted.snippet is not None:
        cited = [{"id": wanted.snippet.id, "citation": wanted.snippet.citation}]
        return Answer("answered", snippet=wanted.snippet, asked=wanted, citations=cited)
    if wanted.article is not None and wanted.law_text is not None:
        cited = [{"citation": f"《{wanted.law}》{wanted.label}", "source": "fulltext"}]
        return Answer("fulltext", asked=wanted, citations=cited)
    return Answer("no_answer", asked=wanted)


def _logged(s: Snippet, c: search.Candidate) -> dict[str, Any]:
    return {
        "id": s.id,
        "citation": s.citation,
        "score": round(c.fused, 4),  # reciprocal-rank fusion of both rankers
        "cosine": round(c.cosine, 3),
        "bm25": round(c.lexical.score, 3) if c.lexical else None,
        "coverage": round(c.lexical.coverage, 3) if c.lexical else None,
    }


def _distinct(snippets: list[Snippet]) -> list[Snippet]:
    seen, out = set(), []
    for s in snippets:
        if s.citation not in seen:
            seen.add(s.citation)
            out.append(s)
    return out


def init_app(app) -> None:
    """The fitted models: the emergency detector and the answer confidence."""
    embedder = app.extensions.get("pufa.embedder")
    try:
        app.extensions["pufa.detector"] = emergency.Detector.load(embedder)
    except (OSError, ValueError, KeyError) as exc:  # a broken install: say so loudly
        log.critical("emergency model unreadable, cue rules only: %s", exc)
        app.extensions["pufa.detector"] = emergency.Detector.rules_only()
    conf = None
    if embedder is not None and embedder.engine is not None and CONFIDENCE.exists():
        conf = Confidence.load()
    app.extensions["pufa.confidence"] = conf
    app.extensions["pufa.domain"] = domain.Gate.load(embedder)
    app.extensions["pufa.article_index"] = (
        fulltext.LazyArticleIndex.build(app.extensions.get("pufa.fulltext"), embedder)
        if embedder is not None
        else None
    )
