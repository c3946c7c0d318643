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
        self._writer: Writer | None = None
        self._writer_lock = threading.Lock()

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

    def writer(self, work: Callable[[], Any], idle: float) -> Writer:
        """This worker's write-behind thread running `work` (created once, started on use)."""
        with self._writer_lock:
            if self._writer is None:
                self._writer = Writer(self.app, work, idle, self.database_breaker.closed)
            return self._writer

    def close(self) -> None:
        """Let the pool's threads end; a later call starts a new pool (tests close their apps
        after each test, some apps serve a whole module; a worker's app lives forever)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._writer is not None:
            self._writer.stop()

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


class Writer:
    """A thread of this worker process that runs `work` when woken, and every `idle` seconds.

    The journal's write-behind: a reply goes out once its entry is durable in the spool, and
    this thread moves spooled entries into the database in batches, off the answer path. The
    thread starts on first use, so gunicorn forks before it exists (and a forked child, which
    inherits no threads, starts its own).
    """

    def __init__(self, app: Flask, work: Callable[[], Any], idle: float, ready: Callable[[], bool]):
        self.app, self.work, self.idle = app, work, idle
        self.ready = ready  # False: the database was skipped after a timeout; passes wait
        self._state = threading.Condition()
        self._pending = self._busy = self._stopped = False
        self._pass = threading.Lock()  # one pass at a time in this process
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._unsynced: list[Path] = []  # files this process wrote without fsync

    def wake(self, unsynced: Path | None = None) -> None:
        with self._state:
            if unsynced is not None:
                self._unsynced.append(unsynced)
            self._stopped = False  # a thread told to stop but not yet gone goes on instead
            self._ensure_running()
            self._pending = True
            self._state.notify_all()

    def flush(self, timeout: float | None = None, *, force: bool = False) -> bool:
        """Let the thread finish what it was woken for, then run one pass here: everything
        spooled before the call is written (or waits for the database). False if that did
        not happen within `timeout`, or if the database is skipped (unless `force`)."""
        if not (force or self.ready()):
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._state:
            idle = self._state.wait_for(lambda: not (self._busy or self._pending), timeout)
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if not idle or not self._pass.acquire(timeout=-1 if left is None else left):
            return False
        try:
            self._run_once()
        finally:
            self._pass.release()
        return True

    def take_unsynced(self) -> list[Path]:
        """The files written without fsync since the last call (some may be gone)."""
        with self._state:
            taken, self._unsynced = self._unsynced, []
        return taken

    def stop(self) -> None:
        with self._state:
            self._stopped = True
            self._state.notify_all()

    def _ensure_running(self) -> None:
        alive = self._thread is not None and self._thread.is_alive()
        if alive and self._pid == os.getpid():
            return
        self._busy, self._pid = False, os.getpid()
        self._thread = threading.Thread(target=self._loop, name="pufa-journal-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._state:
                if not self._pending and not self._stopped:
                    self._state.wait(self.idle)
                if self._stopped:
                    return
                self._pending, self._busy = False, True
            try:
                if self.ready():
                    with self._pass:
                        self._run_once()
            finally:
                with self._state:
                    self._busy = False
                    self._state.notify_all()

    def _run_once(self) -> None:
        try:
            with self.app.app_context():
                self.work()
        except Exception:  # the entries stay spooled; the next pass tries again
            log.exception("journal writer pass failed")


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


def write_atomically(final: Path, text: str, *, sync: bool = True) -> None:
    """Temp file (0600), fsync, rename: a reader sees the whole file or none of it.

    `sync=False` leaves the fsync to the caller (`sync_files`): the file then survives the
    process dying, but a power cut only once synced."""
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    with os.fdopen(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "w") as f:
        f.write(text)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, final)


def sync_files(paths: list[Path]) -> None:
    """fsync files written with `write_atomically(sync=False)`, and their folders."""
    for path in [*paths, *{p.parent for p in paths}]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # written to the database meanwhile
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
