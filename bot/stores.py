"""Storage on the answer path: Redis bounded, the database under a hard time budget.

A resident's reply must leave within WeChat's 5 s (shared/WECHAT.md W1) whatever storage does.
Redis calls are bounded by short socket timeouts. Database work on the answer path runs in a
small pool of threads and is abandoned past `STORAGE_BUDGET_MS`: a paused PostgreSQL keeps its
socket open and no client option bounds a statement on it, and a table lock makes a statement
wait. After one call runs over, that backend is skipped for `STORAGE_RETRY_SECONDS`, so an
outage costs at most one budget per reply; callers then fall back (the journal spools to disk).
PostgreSQL also gets statement and lock timeouts (config), so a blocked statement ends and
frees its thread.

Redis is an accelerator, never a single point of failure: every caller falls back to the
database (and the database to the local disk) when Redis is unset, unreachable or skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

import redis
from flask import Flask, current_app

log = logging.getLogger(__name__)

T = TypeVar("T")
RedisError = redis.RedisError


class StorageUnavailable(Exception):
    """The database was skipped or ran over its budget; the caller falls back."""


class Breaker:
    """Skips a backend for a while after it ran over its budget (one log line per outage)."""

    def __init__(self, name: str, retry_after: float):
        self.name, self.retry_after = name, retry_after
        self._open_until = 0.0

    def closed(self) -> bool:
        return time.monotonic() >= self._open_until

    def trip(self, reason: str) -> None:
        if self.closed():
            log.error("%s skipped for %.0f s: %s", self.name, self.retry_after, reason)
        self._open_until = time.monotonic() + self.retry_after


class Storage:
    """One per app: the Redis client, the database's thread pool and both breakers."""

    def __init__(self, app: Flask):
        cfg = app.config
        self.app = app
        self.budget = float(cfg["STORAGE_BUDGET_MS"]) / 1000
        retry = float(cfg["STORAGE_RETRY_SECONDS"])
        self.database_breaker = Breaker("database", retry)
        self.redis_breaker = Breaker("redis", retry)
        self.redis = _redis(cfg.get("REDIS_URL"), float(cfg["REDIS_TIMEOUT_MS"]) / 1000)
        self.local_conversations: dict[str, dict[str, Any]] = {}  # both stores down
        self._remembered: dict[str, tuple[float, str]] = {}  # key → (expiry, value)
        self._remember_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._background: Future[Any] | None = None
        self.last_replay_check = 0.0  # the journal replays its spool at most every few seconds

    def pool(self) -> ThreadPoolExecutor:
        """Created on first use, so that gunicorn forks before any thread exists."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pufa-db")
            return self._pool

    def database(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in an app context of its own, or raise StorageUnavailable in time.

        `fn` gets its own session (Flask-SQLAlchemy scopes sessions by app context), so an
        abandoned call never leaves the request's session half-done.
        """
        if not self.database_breaker.closed():
            raise StorageUnavailable("database skipped: it ran over its budget recently")
        deadline = time.monotonic() + self.budget
        future = self.pool().submit(self._in_context, deadline, fn, *args)
        try:
            return future.result(timeout=self.budget)
        except FutureTimeout:
            self.database_breaker.trip(f"no answer within {self.budget * 1000:.0f} ms")
            raise StorageUnavailable("database over its budget") from None

    def in_background(self, fn: Callable[[], Any]) -> None:
        """Run `fn` in the pool without waiting for it; at most one such job at a time."""
        if self._background is not None and not self._background.done():
            return
        self._background = self.pool().submit(self._in_context, None, _logged(fn))

    def close(self) -> None:
        """Let the pool's threads end; a later call starts a new pool (tests close their apps
        after each test, some apps serve a whole module; a worker's app lives forever)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait for the background job, if any (the CLI before exit, and tests)."""
        if self._background is not None:
            self._background.result(timeout=timeout)

    def _in_context(self, deadline: float | None, fn: Callable[..., T], *args: Any) -> T:
        if deadline is not None and time.monotonic() > deadline:
            # queued behind stuck calls: its caller has moved on, and the work is stale
            raise StorageUnavailable("database call abandoned before it started")
        with self.app.app_context():
            return fn(*args)

    def remember(self, key: str, value: str, ttl: float) -> str:
        """In-process SET NX with expiry: stores `value` unless `key` holds a live one, and
        returns what `key` holds."""
        now = time.monotonic()
        with self._remember_lock:
            if len(self._remembered) > 10_000:
                self._remembered = {k: v for k, v in self._remembered.items() if v[0] > now}
            held = self._remembered.get(key)
            if held is not None and held[0] > now:
                return held[1]
            self._remembered[key] = (now + ttl, value)
            return value

    def redis_client(self) -> redis.Redis | None:
        return self.redis if self.redis is not None and self.redis_breaker.closed() else None


class DiskKeys:
    """Redis's SET NX, GET and SET as owner-only files in one folder under `root`.

    What the workers of one host share when Redis is absent or down: the journal's claims and
    replies, the webhook's nonces. A key older than `ttl` counts as gone. Writes are atomic
    (a temp file, then a link or a rename), so a reader never sees half a value.
    """

    def __init__(self, root: Path, name: str, ttl: float):
        self.root, self.folder, self.ttl = root, root / name, ttl

    def add(self, key: str, value: str) -> str | None:
        """Store `value` unless `key` holds a live one; None if stored, else the value held."""
        path = self._path(key)
        tmp = self._temp(path, value)
        try:
            os.link(tmp, path)  # atomic, and fails if the key exists
        except FileExistsError:
            if time.time() - path.stat().st_mtime <= self.ttl:
                return path.read_text(encoding="utf-8")
            path.unlink(missing_ok=True)  # expired: take it over
            return self.add(key, value)
        finally:
            tmp.unlink(missing_ok=True)
        if random.random() < 0.01:  # now and then, forget expired keys
            self.sweep()
        return None

    def get(self, key: str) -> str | None:
        try:
            return self._path(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def set(self, key: str, value: str) -> None:
        path = self._path(key)
        os.replace(self._temp(path, value), path)

    def sweep(self) -> None:
        cutoff = time.time() - self.ttl
        for path in self.folder.iterdir() if self.folder.is_dir() else []:
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue  # another worker swept it

    def _path(self, key: str) -> Path:
        private_dir(self.root, self.folder)
        return self.folder / hashlib.sha256(key.encode()).hexdigest()[:40]

    def _temp(self, path: Path, value: str) -> Path:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        with os.fdopen(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "w") as f:
            f.write(value)
        return tmp


def private_dir(root: Path, folder: Path | None = None) -> None:
    """Residents' words wait under `root`: readable by the service's user only."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder is not None:
        folder.mkdir(mode=0o700, exist_ok=True)


def write_atomically(final: Path, text: str) -> None:
    """Temp file (0600), fsync, rename: a reader sees the whole file or none of it."""
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    with os.fdopen(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)


def _logged(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Background work has no caller to raise to: its failure is logged instead."""

    def run() -> Any:
        try:
            return fn()
        except Exception:
            log.exception("background storage job %s failed", getattr(fn, "__name__", fn))
            return None

    return run


def _redis(url: str | None, timeout: float) -> redis.Redis | None:
    if not url:
        return None
    return redis.Redis.from_url(
        str(url), socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
    )


def init_app(app: Flask) -> None:
    app.extensions["pufa.storage"] = Storage(app)


def storage() -> Storage:
    return current_app.extensions["pufa.storage"]


def redis_client() -> redis.Redis | None:
    """The shared Redis client, or None when unset or skipped after a timeout."""
    return storage().redis_client()


def redis_failed(exc: RedisError) -> None:
    """Callers report Redis errors here; a timeout (a frozen server) skips Redis for a while."""
    if isinstance(exc, redis.TimeoutError):
        storage().redis_breaker.trip(str(exc))


def in_database(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` under the storage budget (see `Storage.database`)."""
    return storage().database(fn, *args)
