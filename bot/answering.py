"""answer(text) → Answer: emergencies first, then one exact quote in plain words, or honesty.

The rules residents rely on:
- An emergency's numbers come on the first line, before anything else.
- A citation is a curated snippet whose quote was verified against the law's current text; the
  first citation is the main basis. Nothing is paraphrased as a quote and nothing is invented.
- When the best match is weak the bot says it does not know and points to people who do,
  rather than quoting a loosely related article.
- When two or three snippets fit about equally, the resident picks by number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot import articles
from bot import emergency as emergencies
from bot.fulltext import FullText
from bot.lawbase import LawBase, Snippet
from bot.search import Hit, normalise
from bot.wechat import texts

# Calibrated with bench/recall.py on held-out phrasings (see docs/benchmarks.md).
MIN_SCORE = 1.0  # BM25 score below which a match is noise
MIN_COVERAGE = 0.45  # share of the question's weight the best snippet must match
SURE_COVERAGE = 0.75  # a one-word match counts only when it is most of the question
CHOICE_RATIO = 0.8  # a runner-up this close to the best is offered as a choice
MAX_CHOICES = 3


@dataclass(frozen=True)
class Office:
    """The township's own justice office, from configuration."""

    line: str  # "某某镇司法所 电话… 地址：…"


@dataclass
class Answer:
    outcome: str  # answered | choices | fulltext | no_answer
    text: str
    emergency: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)  # snippet ids, in the order offered


def answer(text: str, *, base: LawBase, office: Office, full: FullText | None = None) -> Answer:
    """Answer one resident message (already stripped of WeChat framing).

    `full` is the full-text tier: any article of a current national law, asked for by number.
    """
    alarm = emergencies.detect(normalise(text))
    result = _answer_law(text, base=base, office=office, full=full)
    if alarm is not None:
        result.emergency = alarm.kind
        if result.outcome == "no_answer":  # no law to add: safety first, then people to ask
            result.text = texts.EMERGENCY_NO_LAW.format(office=office.line)
        first = texts.EMERGENCY.format(numbers="、".join(alarm.numbers))
        result.text = first + "\n\n" + result.text
    return result


def _answer_law(text: str, *, base: LawBase, office: Office, full: FullText | None) -> Answer:
    wanted = articles.asked(text, base=base, full=full)
    if wanted is not None:
        return article_answer(wanted, base=base, office=office)
    hits = base.search(text, k=MAX_CHOICES + 2)
    found = [
        {
            "id": s.id,
            "citation": s.citation,
            "score": round(h.score, 3),
            "coverage": round(h.coverage, 3),
        }
        for s, h in hits
    ]
    if not hits or not _confident(hits[0][1]):
        return Answer("no_answer", texts.NO_ANSWER.format(office=office.line), citations=found)
    best_snippet, best = hits[0]
    close = [s for s, h in hits[1:] if h.score >= best.score * CHOICE_RATIO and _confident(h)]
    close = [s for s in _distinct(close) if s.citation != best_snippet.citation][: MAX_CHOICES - 1]
    if close:
        options = [best_snippet, *close]
        return Answer(
            "choices", choices_text(options), citations=found, choices=[s.id for s in options]
        )
    result = snippet_answer(best_snippet, base=base, office=office, score=best.score)
    result.citations = found
    return result


def _confident(hit: Hit) -> bool:
    """Is this match strong enough to cite? Weak ones get an honest "we don't know"."""
    if hit.score < MIN_SCORE or hit.coverage < MIN_COVERAGE:
        return False
    return hit.matched >= 2 or (hit.coverage >= SURE_COVERAGE and hit.words >= 1)


def snippet_answer(
    snippet: Snippet, *, base: LawBase, office: Office, score: float | None
) -> Answer:
    """The full answer for one snippet: direct answer, exact quote, plain words, where to go."""
    body = (
        f"{snippet.summary}\n\n"
        f"📖{snippet.citation}：\n“{snippet.quote}”\n\n"
        f"{texts.EXPLAIN_HEAD}{snippet.explain}\n\n"
        f"{texts.HELP_HEAD}\n{_help(snippet, base=base, office=office)}"
    )
    cited = {"id": snippet.id, "citation": snippet.citation, "score": score}
    return Answer("answered", body, citations=[cited])


def article_answer(wanted: articles.Asked, *, base: LawBase, office: Office) -> Answer:
    """An article asked for by number: curated if we have it, else the exact full text."""
    if wanted.snippet is not None:
        return snippet_answer(wanted.snippet, base=base, office=office, score=None)
    citation = f"《{wanted.law}》{wanted.label}"
    cited = [{"citation": citation, "source": "fulltext"}]
    help_text = f"{texts.HELP_HEAD}\n· {office.line}\n· 12348公共法律服务热线（免费）"
    if wanted.article is not None and wanted.law_text is not None:
        body = texts.FULLTEXT.format(
            citation=citation, version=wanted.law_text.version, quote=wanted.article.text
        )
        return Answer("fulltext", f"{body}\n\n{help_text}", citations=cited)
    if wanted.missing and wanted.law_text is not None:
        count = len(wanted.law_text.articles)
        body = texts.NO_SUCH_ARTICLE.format(law=wanted.law, label=wanted.label, count=count)
        return Answer("no_answer", f"{body}\n\n{help_text}", citations=[])
    if not wanted.collected:
        body = texts.NOT_COLLECTED.format(citation=citation)
    else:
        body = texts.ARTICLE_WITHHELD.format(citation=citation, why=wanted.withheld or "")
    return Answer("no_answer", f"{body}\n\n{help_text}", citations=[])


def choices_text(options: list[Snippet]) -> str:
    lines = [texts.CHOICES_HEAD]
    for number, s in enumerate(options, start=1):
        lines.append(f"{number}. {s.summary}（{s.law.short}{s.article}）")
    lines.append(texts.CHOICES_TAIL)
    return "\n".join(lines)


def _help(snippet: Snippet, *, base: LawBase, office: Office) -> str:
    items: list[tuple[str, str | None]] = []
    for key in snippet.help:
        if key == "司法所":
            continue  # the township's own office is listed with its details below
        o = base.offices[key]
        items.append((o.name, o.phone if o.phone and o.phone not in o.name else None))
    items = items[:2]
    lines = [texts.help_lines(items)] if items else []
    lines.append(f"· {office.line}")
    if not any("12348" in name for name, _ in items):
        lines.append("· 12348公共法律服务热线（免费）")
    return "\n".join(lines)


def _distinct(snippets: list[Snippet]) -> list[Snippet]:
    seen, out = set(), []
    for s in snippets:
        if s.citation not in seen:
            seen.add(s.citation)
            out.append(s)
    return out
