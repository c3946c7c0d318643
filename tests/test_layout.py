"""Imports point down: entry points use services, services never use entry points.

Entry points are the app factory, the command-line modules and the blueprint packages
(bot/wechat, bot/demo, bot/api); the scheduler package ticks and may use bot, never the
other way round (the demo command reaches `flask` through an entry point, pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINTS = ("bot.wechat", "bot.demo", "bot.api", "bot.console")
ENTRY_POINTS = {"bot/__init__.py", "bot/cli.py", "bot/posts_cli.py"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_nothing_in_bot_imports_the_scheduler():
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in imported(p) if n.split(".")[0] == "scheduler")
        for p in (ROOT / "bot").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_services_never_import_a_blueprint_package():
    offenders = {}
    for p in (ROOT / "bot").glob("*.py"):  # the services: bot's own modules, not its packages
        rel = str(p.relative_to(ROOT))
        if rel in ENTRY_POINTS:
            continue
        bad = sorted(
            n for n in imported(p) if any(n == b or n.startswith(b + ".") for b in BLUEPRINTS)
        )
        if bad:
            offenders[rel] = bad
    assert offenders == {}
