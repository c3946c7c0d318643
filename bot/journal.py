"""Records each exchange once, and keeps it on local disk while the database is down.

WeChat re-sends a message it got no reply to within 5 s, up to three deliveries in all
(shared/WECHAT.md W1, W2). `claim()` makes the first delivery the owner, whichever worker it
reaches: a Redis SET NX when Redis is configured, otherwise the unique `exchanges.msg_key`.
Logging must never cost a resident the reply, so when the database cannot be reached the
finished entry is written to the spool directory (one fsync'd file per entry) and
`replay_spool()` moves it into the database once it answers again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.extensions import db
from bot.models import Conversation, Exchange
from bot.stores import RedisError, redis_client

log = logging.getLogger(__name__)

CLAIM_TTL = 24 * 3600  # WeChat's retries end within 15 s; a day also covers slow replays
PENDING = ""
_local_claims: dict[str, tuple[float, str]] = {}  # last resort while DB and Redis are both down
_local_lock = threading.Lock()
_last_replay_check = 0.0


@dataclass
class Entry:
    msg_key: str
    openid_hash: str | None
    kind: str
    question: str
    received_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    reply: str | None = None
    outcome: str = "pending"
    emergency: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float | None = None
    answered_at: str | None = None
    scene: str | None = None  # QR-code scene of a subscribe
    in_database: bool = False  # a pending row exists already


@dataclass
class Claim:
    entry: Entry
    owner: bool  # False: another delivery of the same message got here first
    reply: str | None = None  # that delivery's reply, when it has one


def claim(entry: Entry) -> Claim:
    """Take ownership of answering one message, or learn that another delivery has it."""
    r = redis_client()
    if r is not None:
        try:
            if r.set(_redis_key(entry.msg_key), PENDING, nx=True, ex=CLAIM_TTL):
                return Claim(entry, owner=True)
            return Claim(entry, owner=False, reply=r.get(_redis_key(entry.msg_key)) or None)
        except RedisError as exc:
            log.warning("redis unavailable for claims, using the database: %s", exc)
    try:
        return _claim_in_database(entry)
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error("database unavailable for claims, claiming in-process: %s", _short(exc))
        return _claim_locally(entry)


def _claim_in_database(entry: Entry) -> Claim:
    row = Exchange(
        msg_key=entry.msg_key,
        openid_hash=entry.openid_hash,
        kind=entry.kind,
        question=entry.question,
        outcome="pending",
        citations=[],
        received_at=datetime.fromisoformat(entry.received_at),
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        reply = db.session.scalar(select(Exchange.reply).where(Exchange.msg_key == entry.msg_key))
        return Claim(entry, owner=False, reply=reply)
    entry.in_database = True
    return Claim(entry, owner=True)


def _claim_locally(entry: Entry) -> Claim:
    now = time.monotonic()
    with _local_lock:
        for key in [k for k, (t, _) in _local_claims.items() if now - t > 60]:
            del _local_claims[key]
        if entry.msg_key in _local_claims:
            return Claim(entry, owner=False, reply=_local_claims[entry.msg_key][1] or None)
        _local_claims[entry.msg_key] = (now, PENDING)
    return Claim(entry, owner=True)


def wait_for_reply(msg_key: str, *, timeout: float = 3.0) -> str | None:
    """A retry that arrives while the first delivery is still answering waits for its reply."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        reply = _stored_reply(msg_key)
        if reply:
            return reply
    return None


def _stored_reply(msg_key: str) -> str | None:
    r = redis_client()
    if r is not None:
        try:
            return r.get(_redis_key(msg_key)) or None
        except RedisError:
            pass
    with _local_lock:
        if msg_key in _local_claims and _local_claims[msg_key][1]:
            return _local_claims[msg_key][1]
    try:
        reply = db.session.scalar(select(Exchange.reply).where(Exchange.msg_key == msg_key))
        db.session.rollback()  # end the read so the next poll sees new commits
        return reply
    except SQLAlchemyError:
        db.session.rollback()
        return None


def finish(entry: Entry) -> None:
    """Store the reply for retries and write the finished entry, to the spool if need be."""
    entry.answered_at = datetime.now(UTC).isoformat()
    _share_reply(entry)
    try:
        _write(entry)
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error("database unavailable, spooling exchange %s: %s", entry.msg_key, _short(exc))
        spool(entry)
        return
    _maybe_replay()


def _share_reply(entry: Entry) -> None:
    r = redis_client()
    if r is not None and entry.reply:
        try:
            r.set(_redis_key(entry.msg_key), entry.reply, ex=CLAIM_TTL)
        except RedisError as exc:
            log.warning("redis unavailable, reply of %s not shared: %s", entry.msg_key, exc)
    with _local_lock:
        if entry.msg_key in _local_claims:
            _local_claims[entry.msg_key] = (time.monotonic(), entry.reply or "")


def _write(entry: Entry) -> None:
    values = _values(entry)
    if entry.in_database:
        db.session.execute(
            update(Exchange).where(Exchange.msg_key == entry.msg_key).values(**values)
        )
    else:
        _insert_or_complete(entry, values)
    db.session.commit()


def _insert_or_complete(entry: Entry, values: dict[str, Any]) -> None:
    """Insert a finished entry; if a row is already there, complete it only if still pending."""
    existing = db.session.scalar(select(Exchange).where(Exchange.msg_key == entry.msg_key))
    if existing is None:
        db.session.add(
            Exchange(
                msg_key=entry.msg_key,
                openid_hash=entry.openid_hash,
                kind=entry.kind,
                question=entry.question,
                received_at=datetime.fromisoformat(entry.received_at),
                **values,
            )
        )
    elif existing.outcome == "pending":
        for key, value in values.items():
            setattr(existing, key, value)


# -- the spool ------------------------------------------------------------------------------


def spool_dir() -> Path:
    return Path(current_app.config["SPOOL_DIR"])


def spool(entry: Entry) -> Path | None:
    """Write one entry durably: temp file, fsync, atomic rename."""
    return _spool_record(asdict(entry))


def spool_erasure(openid_hash: str) -> Path | None:
    """An unsubscribe that arrived while the database was down, erased on replay."""
    return _spool_record({"erase": openid_hash})


def _spool_record(record: dict[str, Any]) -> Path | None:
    """Write the record; if even the disk fails, say so loudly and let the reply go out."""
    try:
        return _write_spool_file(record)
    except OSError as exc:
        key = record.get("msg_key") or "an erasure"
        log.critical("database down AND spool unwritable: %s is lost from the log (%s)", key, exc)
        return None


def _write_spool_file(record: dict[str, Any]) -> Path:
    folder = spool_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{uuid.uuid4().hex}"
    tmp, final = folder / f".{name}.tmp", folder / f"{name}.json"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    return final


def spooled() -> list[Path]:
    folder = spool_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def replay_spool() -> int:
    """Move spooled entries into the database; returns how many were written.

    Each file is claimed by renaming it, so two workers never replay the same entry, and a
    failed replay puts the file back for the next try. Entries are unique by msg_key, so a
    crash between commit and delete cannot create a duplicate.
    """
    written = 0
    for path in spooled():
        mine = path.with_name(f".{path.stem}.{os.getpid()}.replaying")
        try:
            os.rename(path, mine)
        except FileNotFoundError:
            continue  # another worker took it
        try:
            data = json.loads(mine.read_text(encoding="utf-8"))
            if "erase" in data:
                erase(data["erase"])
            else:
                entry = Entry(**{k: v for k, v in data.items() if k != "in_database"})
                _insert_or_complete(entry, _values(entry))
            db.session.commit()
        except SQLAlchemyError as exc:
            db.session.rollback()
            os.rename(mine, path)
            log.warning("spool replay stopped, database still unavailable: %s", _short(exc))
            break
        except (ValueError, TypeError) as exc:
            os.rename(mine, mine.with_name(f"{path.stem}.bad"))
            log.error("spooled entry %s is unreadable and was set aside: %s", path.name, exc)
            continue
        mine.unlink()
        written += 1
    if written:
        log.info("replayed %d spooled exchanges into the database", written)
    return written


def erase(openid_hash: str) -> None:
    """Unlink a resident's exchanges and drop their conversation row (caller commits)."""
    db.session.execute(
        update(Exchange).where(Exchange.openid_hash == openid_hash).values(openid_hash=None)
    )
    db.session.execute(delete(Conversation).where(Conversation.openid_hash == openid_hash))


def _values(entry: Entry) -> dict[str, Any]:
    return {
        "reply": entry.reply,
        "outcome": entry.outcome,
        "emergency": entry.emergency,
        "citations": entry.citations,
        "latency_ms": entry.latency_ms,
        "answered_at": datetime.fromisoformat(entry.answered_at or entry.received_at),
        "scene": entry.scene,
    }


def record_feedback(msg_key: str, value: str) -> bool:
    """Mark the exchange `msg_key` as useful or not, as its resident said; False if not stored.

    The feedback message is also logged as an exchange of its own, so a database outage here
    loses nothing an adviser needs: it only delays the mark.
    """
    try:
        done = db.session.execute(
            update(Exchange).where(Exchange.msg_key == msg_key).values(feedback=value)
        ).rowcount
        db.session.commit()
        return bool(done)
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("feedback on %s not stored: %s", msg_key, _short(exc))
        return False


def _maybe_replay() -> None:
    """After a successful write, replay the spool if it has anything (checked every 5 s)."""
    global _last_replay_check
    now = time.monotonic()
    if now - _last_replay_check < 5:
        return
    _last_replay_check = now
    if spooled():
        replay_spool()


def _redis_key(msg_key: str) -> str:
    return f"pufa:claim:{msg_key}"


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]
