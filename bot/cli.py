"""flask --app bot ask | content check/export-quotes/stats | journal replay/quarantine/requeue."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from bot import accounts, answering, fulltext, journal, lawbase, search, semantic
from bot.errors import ContentError

content = AppGroup("content", help="Check and inspect the law-snippet base.")
journal_cli = AppGroup("journal", help="The Q&A log and its disk spool.")


def init_app(app: Flask) -> None:
    app.cli.add_command(ask)
    app.cli.add_command(content)
    app.cli.add_command(journal_cli)
    from bot.accounts_cli import group as accounts_group
    from bot.posts_cli import group as posts_group

    app.cli.add_command(posts_group)
    app.cli.add_command(accounts_group)
    from bot.users_cli import group as users_group

    app.cli.add_command(users_group)
    # `flask --app bot demo` comes from the scheduler package's `flask.commands` entry point


@click.command("ask")
@click.argument("question")
@with_appcontext
def ask(question: str) -> None:
    """Print the reply a resident would get to QUESTION (nothing is logged)."""
    from bot.wechat import qa, render

    ans = answering.answer(question, answering.context())
    text = render.answer_text(ans, base=lawbase.current(), office=qa.office(accounts.default()))
    pages = qa.paginate(text, int(current_app.config["REPLY_MAX_BYTES"]))
    click.echo(pages[0])
    for page in pages[1:]:
        click.echo("\n———— 回复“更多” ————\n" + page)


@content.command("check")
def content_check() -> None:
    """Validate every content file; exit 1 naming each problem."""
    full = fulltext.current()
    try:
        base = lawbase.load(current_app.config["CONTENT_DIR"], full=full)
    except ContentError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo(f"{len(exc.problems)} problem(s) in the content", err=True)
        sys.exit(1)
    laws = [law for law in base.laws.values() if law.kind in ("法律", "宪法")]
    checked = sum(1 for s in base.snippets if s.law.kind in ("法律", "宪法"))
    click.echo(f"ok: {len(base.snippets)} snippets from {len(base.laws)} laws and regulations")
    if full is None:
        click.echo("warning: full-text tier unavailable; quotes not checked against current texts")
    else:
        click.echo(
            f"{checked} quotes from {len(laws)} laws match their current text ({full.source}); "
            f"{len(base.snippets) - checked} from regulations are checked by lawref.py in CI"
        )


def start_texts(app) -> tuple[list[str], list[str]]:
    """What a worker embeds at start: the snippets' passages, and as questions the emergency
    and domain models' examples and every phrasing. `snippets.npz` ships them all, so that a
    clean install starts without embedding anything."""
    base = lawbase.load(app.config["CONTENT_DIR"])
    texts = [t for s in base.snippets for t in lawbase.passages(s)]
    examples = [e["text"] for e in app.extensions["pufa.detector"].examples]
    gate = app.extensions.get("pufa.domain")
    examples += [e["text"] for e in gate.examples] if gate is not None else []
    examples += [search.normalise(q) for s in base.snippets for q in s.questions]
    return texts, examples


@content.command("embed")
@click.option("--fulltext", "with_fulltext", is_flag=True, help="also every article (slow)")
def content_embed(with_fulltext: bool) -> None:
    """Embed what is not cached yet and write the shipped caches in content/embeddings/."""
    embedder = current_app.extensions.get("pufa.embedder")
    if embedder is None or embedder.engine is None:
        click.echo("the embedding model is not available (PUFA_EMBEDDINGS off?)", err=True)
        sys.exit(1)
    out = Path(current_app.config["CONTENT_DIR"]) / "embeddings"
    texts, examples = start_texts(current_app)
    embedder.passages(texts)
    embedder.queries(examples)
    n = semantic.write_npz(out / "snippets.npz", texts, embedder.cache, queries=examples)
    click.echo(f"snippets.npz: {n} vectors")
    full = fulltext.current()
    if with_fulltext and full is not None:
        articles = [text for _, text in fulltext.quotable(full)]
        with click.progressbar(range(0, len(articles), 256), label="articles") as chunks:
            for start in chunks:
                embedder.passages(articles[start : start + 256])
        n = semantic.write_npz(out / "fulltext.npz", articles, embedder.cache)
        click.echo(f"fulltext.npz: {n} vectors")


@content.command("export-quotes")
def content_export_quotes() -> None:
    """Print {"id", "law", "article", "quote", "version"} JSONL for lawref.py verify."""
    for s in lawbase.load(current_app.config["CONTENT_DIR"]).snippets:
        record = {
            "id": s.id,
            "law": s.law.name,
            "article": s.article,
            "quote": s.quote,
            "version": s.law.version,
        }
        click.echo(json.dumps(record, ensure_ascii=False))


@content.command("signoffs")
def content_signoffs() -> None:
    """Write advisers' sign-offs from the console into content/laws/*.toml (review lines)."""
    from bot import signoffs

    written = signoffs.export(current_app.config["CONTENT_DIR"])
    for snippet_id in written:
        click.echo(f"已写入：{snippet_id}")
    click.echo(f"共写入 {len(written)} 条律师签核；请检查 git diff 后提交")


@content.command("stats")
def content_stats() -> None:
    """Snippets by law and by topic, as a Markdown table."""
    base = lawbase.load(current_app.config["CONTENT_DIR"])
    by_law = Counter(s.law.name for s in base.snippets)
    by_topic = Counter(t for s in base.snippets for t in s.topics)
    click.echo(f"{len(base.snippets)} snippets, {len(by_law)} laws and regulations\n")
    click.echo("| law | version | snippets |\n|---|---|---|")
    for name, n in by_law.most_common():
        click.echo(f"| {name} | {base.laws[name].version} | {n} |")
    click.echo("\n| topic | snippets |\n|---|---|")
    for topic, n in by_topic.most_common():
        click.echo(f"| {topic} | {n} |")


@content.command("corrections")
@click.option("--all", "everything", is_flag=True, help="also corrections exported before")
@click.option("--dry-run", is_flag=True, help="print only; do not mark them exported")
def content_corrections(everything: bool, dry_run: bool) -> None:
    """Print advisers' corrections as TOML phrasings for content/laws/, and mark them exported."""
    from bot import corrections

    found = corrections.pending_export(everything=everything)
    if not found.add and not found.remove:
        click.echo("# 没有新的更正需要写进 content/laws/")
    else:
        click.echo(corrections.as_toml(found))
    if not dry_run and found.rows:
        corrections.mark_exported(found.rows)
        click.echo(f"# {len(found.rows)} 条更正已标记为已导出", err=True)


@journal_cli.command("replay")
def journal_replay() -> None:
    """Write Q&A entries spooled while the database was down or slow.

    Exits 1 only when the database cannot take entries yet; entries it refuses for good are
    quarantined (see `journal quarantine`) and do not hold up the rest.
    """
    waiting = len(journal.spooled())
    done = journal.replay_spool()
    click.echo(
        f"{done.written} of {waiting} spooled entries written, {done.quarantined} quarantined"
    )
    if done.waiting:
        click.echo(f"database unavailable, the rest wait: {done.waiting}", err=True)
        sys.exit(1)


@journal_cli.command("retain")
def journal_retain() -> None:
    """Unlink exchanges older than PUFA_RETENTION_MONTHS from their residents (run daily)."""
    months = int(current_app.config["RETENTION_MONTHS"])
    cutoff = journal.retention_cutoff(datetime.now(UTC), months)
    if cutoff is None:
        click.echo("retention is off (PUFA_RETENTION_MONTHS=0): nothing unlinked")
        return
    count = journal.anonymise_before(cutoff)
    click.echo(f"{count} exchanges received before {cutoff:%Y-%m-%d} unlinked from residents")


@journal_cli.command("quarantine")
def journal_quarantine() -> None:
    """List spooled entries the database refused, with the reason for each."""
    items = journal.quarantined()
    for item in items:
        record = item.get("record")
        key = record.get("msg_key", "erasure") if isinstance(record, dict) else "unreadable"
        click.echo(f"{item['file']}  {key}  {item.get('reason')}")
    click.echo(f"{len(items)} quarantined")


@journal_cli.command("requeue")
@click.argument("names", nargs=-1)
def journal_requeue(names: tuple[str, ...]) -> None:
    """Put quarantined entries (all, or the NAMES listed) back in the spool once fixed."""
    click.echo(f"{journal.requeue(list(names) or None)} entries back in the spool")
