"""jieba, imported without setuptools' pkg_resources, and its data read fast.

jieba 0.42.1 imports pkg_resources only to open its own dictionary files; importing it costs
0.13-0.25 s at every start (`flask --app bot ask`, each gunicorn worker). Without it jieba
falls back to opening the same files from its package directory (its own `except
ImportError` branch), which reads exactly the same bytes. Every module imports jieba here.

jieba keeps its prefix dictionary (~500,000 entries) in a marshal file; reading it takes
~0.5 s, the largest single cost of a start, and its IDF table is a text file of 350,000
lines (~0.2 s). Pickled, both read in a fraction of that, so they are kept as pickles in the
instance folder (a private directory: a pickle is never read from a shared one such as
/tmp), named by jieba's version and its file's size and time; without a folder jieba reads
its own files as usual.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

if "jieba" not in sys.modules and "pkg_resources" not in sys.modules:
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # ImportError in jieba
    try:
        import jieba
    finally:
        del sys.modules["pkg_resources"]  # anyone else may still import it

import jieba  # noqa: E402,F811

__all__ = ["idf", "jieba", "tokenizer"]

log = logging.getLogger(__name__)

# What this process has read, by (what, cache folder): read-only once loaded (a tokenizer
# that adds words gets its own copy of the dictionary).
_LOADED: dict[tuple[str, str], Any] = {}


def tokenizer(cache_dir: str | os.PathLike[str] | None = None, *, shared: bool = False):
    """A jieba tokenizer on the default dictionary, initialised.

    `shared` hands out the process's one read-only copy of the dictionary (for a tokenizer
    that never adds words), and without `cache_dir` takes whichever copy is already read;
    otherwise the tokenizer gets its own copy to add words to.
    """
    tok = jieba.Tokenizer()
    base = _read("dictionary", cache_dir, _build_dictionary, any_dir=shared)
    if base is None:
        tok.initialize()
        return tok
    freq, total = base
    tok.FREQ, tok.total = (freq if shared else dict(freq)), total
    tok.initialized = True
    return tok


def idf(cache_dir: str | os.PathLike[str] | None = None) -> tuple[dict[str, float], float]:
    """jieba's IDF table (`jieba/analyse/idf.txt`) and its median, read once per process."""
    return _read("idf", cache_dir, _build_idf, any_dir=True)


def _read(what: str, cache_dir: Any, build: Callable[[], Any], *, any_dir: bool) -> Any:
    if not cache_dir and any_dir:  # the folder some earlier caller named, if any
        cache_dir = next((d for _, d in _LOADED if d), "")
    if not cache_dir and not any_dir:
        return None
    key = (what, str(cache_dir or ""))
    if key not in _LOADED:
        _LOADED[key] = _pickled(Path(cache_dir), what, build) if cache_dir else build()
    return _LOADED[key]


def _pickled(folder: Path, what: str, build: Callable[[], Any]) -> Any:
    source = _source(what)
    try:
        st = source.stat()
    except OSError:
        return build()
    path = folder / f"jieba-{what}-{jieba.__version__}-{st.st_size}-{st.st_mtime_ns}.pickle"
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        pass
    except (OSError, pickle.UnpicklingError, ValueError, EOFError) as exc:
        log.warning("jieba cache %s unreadable (%s); rebuilding", path, exc)
    data = build()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")  # created 0600
        with os.fdopen(fd, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("jieba cache %s not written: %s", path, exc)
    return data


def _source(what: str) -> Path:
    if what == "dictionary":
        return Path(jieba.__file__).with_name(jieba.DEFAULT_DICT_NAME)
    return _idf_file()


def _idf_file() -> Path:
    return Path(jieba.__file__).with_name("analyse") / "idf.txt"


def _build_dictionary() -> tuple[dict[str, int], int]:
    tok = jieba.Tokenizer()
    tok.initialize()
    return tok.FREQ, tok.total


def _build_idf() -> tuple[dict[str, float], float]:
    table: dict[str, float] = {}
    with _idf_file().open(encoding="utf-8") as f:
        for line in f:
            word, _, value = line.rstrip().partition(" ")
            if value:
                table[word] = float(value)
    values = sorted(table.values())
    return table, values[len(values) // 2] if values else 10.0
