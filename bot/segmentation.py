"""jieba, imported without setuptools' pkg_resources.

jieba 0.42.1 imports pkg_resources only to open its own dictionary files; importing it costs
0.13-0.25 s at every start (`flask --app bot ask`, each gunicorn worker). Without it jieba
falls back to opening the same files from its package directory (its own `except
ImportError` branch), which reads exactly the same bytes. Every module imports jieba here.
"""

from __future__ import annotations

import sys

if "jieba" not in sys.modules and "pkg_resources" not in sys.modules:
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # ImportError in jieba
    try:
        import jieba
    finally:
        del sys.modules["pkg_resources"]  # anyone else may still import it

import jieba  # noqa: E402,F811

__all__ = ["jieba"]
