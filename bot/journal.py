"""Records each exchange once, and keeps it on local disk while the database is slow or down.

WeChat re-sends a message it got no reply to within 5 s, up to three deliveries in all
(shared/WECHAT.md W1, W2). `claim()` makes the first delivery the owner, whichever worker it
reaches: a Redis SET NX when Redis is configured, otherwise the unique `exchanges.msg_key`,
and with both unavailable an exclusive file on the local disk, which every worker of the host
sees. Logging must never cost a resident the reply: database work runs under the storage
budget (`bot.stores`), and past it the finished entry is written to the spool directory (one
fsync'd file per entry) and `replay_spool()` moves it into the database once it answers again.

The order is what makes "answered once, logged once" survive a crash: the entry is durable
(a committed row or a spool file) before its reply is shared with the retries, so a worker
killed between the two leaves a retry that finds the row's reply, and one killed before leaves
a retry that answers and logs it itself.
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.extensions import db
from bot.models import DEFAULT_ACCOUNT_ID, Conversation, Exchange, HelpRequest
from bot.stores import (
    DiskKeys,
    RedisError,
    StorageUnavailable,
    Writer,
    in_database,
    private_dir,
    redis_client,
    redis_failed,
    storage,
    sync_files,
    write_atomically,
)

log = logging.getLogger(__name__)

CLAIM_TTL = 24 * 3600  # WeChat's retries end within 15 s; a day also covers slow replays
DISK_CLAIM_TTL = 3600  # claims on the local disk are only for outages; an hour is plenty
PENDING = ""
REPLAY_EVERY = 5.0  # seconds between checks of the spool after a successful write
WRITER_IDLE_SECONDS = 5.0  # the writer also looks at the spool this often, woken or not
BATCH = 200  # spooled entries written per transaction
UNAVAILABLE = (SQLAlchemyError, StorageUnavailable)
# Errors that say the database cannot take anything now: the entry waits, replay stops.
TRANSIENT = (OperationalError, InterfaceError, PoolTimeout, DisconnectionError, StorageUnavailable)
_SCHEMA_MISSING = {"UndefinedTable", "UndefinedColumn"}  # not migrated yet: not the entry's fault


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
    account_id: int = DEFAULT_ACCOUNT_ID
    in_database: bool = False  # a pending row exists already
    claimed_on: str = ""  # redis | database | disk: where the retries look for the reply

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Entry:
        known = {f.name for f in fields(cls)} - {"in_database", "claimed_on"}
        return cls(**{k: v for k, v in record.items() if k in known})


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
                entry.claimed_on = "redis"
                return Claim(entry, owner=True)
            return Claim(entry, owner=False, reply=r.get(_redis_key(entry.msg_key)) or None)
        except RedisError as exc:
            redis_failed(exc)
            log.warning("redis unavailable for claims, using the database: %s", exc)
    try:
        owner, reply = in_database(_claim_in_database, entry)
    except UNAVAILABLE as exc:
        log.error("database unavailable for claims, claiming on local disk: %s", _short(exc))
        return _claim_on_disk(entry)
    if owner:
        entry.in_database, entry.claimed_on = True, "database"
    return Claim(entry, owner=owner, reply=reply)


def _claim_in_database(entry: Entry) -> tuple[bool, str | None]:
    db.session.add(_new_row(entry, {"outcome": "pending", "citations": []}))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        reply = db.session.scalar(select(Exchange.reply).where(Exchange.msg_key == entry.msg_key))
        return False, reply
    return True, None


# -- claims on the local disk: the last resort, shared by the workers of one host --------------


def _disk_claims() -> DiskKeys:
    return DiskKeys(spool_dir(), "claims", DISK_CLAIM_TTL)


def _claim_on_disk(entry: Entry) -> Claim:
    try:
        held = _disk_claims().add(entry.msg_key, PENDING)
    except OSError as exc:  # nothing left to claim with: answer, a retry may answer too
        log.critical("no store can claim %s, answering it unclaimed: %s", entry.msg_key, exc)
        return Claim(entry, owner=True)
    if held is not None:
        return Claim(entry, owner=False, reply=held or None)
    entry.claimed_on = "disk"
    return Claim(entry, owner=True)


def _disk_reply(msg_key: str) -> str | None:
    try:
        return _disk_claims().get(msg_key) or None
    except OSError:
        return None


def _share_on_disk(msg_key: str, reply: str) -> None:
    try:
        _disk_claims().set(msg_key, reply)
    except OSError as exc:
        log.error("reply of %s not shared on disk: %s", msg_key, exc)


# -- retries waiting for the first delivery's reply ---------------------------------------------


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
            if reply := r.get(_redis_key(msg_key)):
                return reply
        except RedisError as exc:
            redis_failed(exc)
    if reply := _disk_reply(msg_key):
        return reply
    try:
        return in_database(_reply_in_database, msg_key)
    except UNAVAILABLE:
        return None


def _reply_in_database(msg_key: str) -> str | None:
    return db.session.scalar(select(Exchange.reply).where(Exchange.msg_key == msg_key))


# -- the finished exchange ------------------------------------------------------------------


def finish(entry: Entry) -> None:
    """Make the finished entry durable, then share its reply.

    By default: the database under the storage budget, and past it the spool, fsync'd at
    once. With `JOURNAL_WRITE_BEHIND`: the entry is written to the spool and this worker's
    writer thread moves it into the database in a batch, so no reply waits on a commit (not
    while the database is skipped after a timeout, or when the spool cannot be written).
    """
    entry.answered_at = datetime.now(UTC).isoformat()
    behind = current_app.config["JOURNAL_WRITE_BEHIND"] and storage().database_breaker.closed()
    if behind and (path := spool(entry, behind=True)) is not None:
        _share_reply(entry, stored=False)
        writer().wake(unsynced=path)
        return
    try:
        in_database(_write, entry)
        stored = True
    except UNAVAILABLE as exc:
        log.error("database unavailable, spooling exchange %s: %s", entry.msg_key, _short(exc))
        spool(entry)
        stored = False
    _share_reply(entry, stored)
    if stored:
        _maybe_replay()


def writer() -> Writer:
    """This worker's write-behind thread (see `bot.stores.Writer`)."""
    return storage().writer(drain, WRITER_IDLE_SECONDS)


def flush(timeout: float | None = None, *, force: bool = False) -> bool:
    """Write every spooled entry the database takes now, after any pass in progress (tests,
    and feedback on an exchange still spooled). False if not within `timeout`, or while the
    database is skipped after a timeout (`force`: try it anyway)."""
    return writer().flush(timeout, force=force)


def _share_reply(entry: Entry, stored: bool) -> None:
    """Retries find the reply in Redis, or on disk when neither Redis nor the row holds it."""
    if not entry.reply:
        return
    shared = False
    r = redis_client()
    if r is not None:
        try:
            r.set(_redis_key(entry.msg_key), entry.reply, ex=CLAIM_TTL)
            shared = True
        except RedisError as exc:
            redis_failed(exc)
            log.warning("redis unavailable, reply of %s not shared: %s", entry.msg_key, exc)
    if entry.claimed_on == "disk" or not (shared or stored):
        _share_on_disk(entry.msg_key, entry.reply)


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
    _complete(entry, values, existing)


def _complete(entry: Entry, values: dict[str, Any], row: Exchange | None) -> Exchange:
    """Add `entry` as a new row, or complete its `row` with `values` if still pending."""
    if row is None:
        row = _new_row(entry, values)
        db.session.add(row)
    elif row.outcome == "pending":
        for key, value in values.items():
            setattr(row, key, value)
    return row


def _new_row(entry: Entry, values: dict[str, Any]) -> Exchange:
    return Exchange(
        msg_key=entry.msg_key,
        account_id=entry.account_id,
        openid_hash=entry.openid_hash,
        kind=entry.kind,
        question=entry.question,
        received_at=datetime.fromisoformat(entry.received_at),
        **values,
    )


# -- the spool ------------------------------------------------------------------------------


def spool_dir() -> Path:
    return Path(current_app.config["SPOOL_DIR"])


def spool(entry: Entry, *, behind: bool = False) -> Path | None:
    """Write one entry durably: temp file, fsync, atomic rename. None if the disk refused it.

    `behind` (write-behind): the caller has the database to fall back on, and the writer
    thread commits the entry within milliseconds, so the file is not fsync'd here: it
    survives the worker dying at once, a power cut once the writer has written it to the
    database or, while the database waits, synced it (`drain`)."""
    record = asdict(entry)
    record.pop("in_database"), record.pop("claimed_on")
    return _spool_record(record, quiet=behind, sync=not behind)


def spool_erasure(openid_hash: str) -> Path | None:
    """An unsubscribe that arrived while the database was down, erased on replay."""
    return _spool_record({"erase": openid_hash})


def _spool_record(record: dict[str, Any], *, quiet: bool = False, sync: bool = True) -> Path | None:
    """Write the record; if even the disk fails, say so loudly and let the reply go out."""
    try:
        folder = spool_dir()
        private_dir(folder)
        final = folder / f"{time.time_ns()}-{uuid.uuid4().hex}.json"
        write_atomically(final, json.dumps(record, ensure_ascii=False), sync=sync)
        return final
    except OSError as exc:
        key = record.get("msg_key") or "an erasure"
        if quiet:
            log.error("spool unwritable, writing %s to the database directly: %s", key, exc)
        else:
            log.critical(
                "database down AND spool unwritable: %s is lost from the log (%s)", key, exc
            )
        return None


def spooled() -> list[Path]:
    folder = spool_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def depth() -> int:
    """Entries not yet in the database: spooled, or being written right now."""
    folder = spool_dir()
    return len(spooled()) + (len(list(folder.glob(".*.replaying"))) if folder.is_dir() else 0)


def quarantined() -> list[dict[str, Any]]:
    """Entries the database refused for good, each with the reason (oldest first)."""
    folder = spool_dir() / "quarantine"
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append({"file": path.name, **json.loads(path.read_text(encoding="utf-8"))})
        except (OSError, ValueError) as exc:
            found.append({"file": path.name, "reason": f"unreadable: {exc}", "record": None})
    return found


@dataclass
class Replayed:
    written: int = 0
    quarantined: int = 0
    waiting: str | None = None  # why replay stopped: the database cannot take entries yet


def replay_spool() -> Replayed:
    """Move spooled entries into the database, in order, up to `BATCH` per transaction.

    Each file is claimed by renaming it, so two workers never replay the same entry. A batch
    the database refuses is retried one entry at a time: a transient failure puts the files
    back and stops (the rest wait for the database); an entry the database refuses for good
    (a value it rejects, an unreadable file) is quarantined with its reason and replay goes
    on. Entries are unique by msg_key, so a crash between commit and delete cannot create a
    duplicate, and a file left claimed by a dead process is put back first.
    """
    result = Replayed()
    _put_back_orphans()
    paths = spooled()
    for start in range(0, len(paths), BATCH):
        batch = _take(paths[start : start + BATCH])
        if batch and not _write_batch(batch, result) and not _one_by_one(batch, result):
            break
    if result.written or result.quarantined:  # routine under write-behind: each quarantined
        # entry and each pause is logged on its own above
        log.debug("spool replay: %d written, %d quarantined", result.written, result.quarantined)
    return result


def drain() -> Replayed:
    """Replay until the spool is empty or the database cannot take entries (the writer's
    pass; the writer skips passes while the answer path skips the database)."""
    total = Replayed()
    while True:
        unsynced = writer().take_unsynced()
        done = replay_spool()
        total.written += done.written
        total.quarantined += done.quarantined
        if done.waiting:
            total.waiting = done.waiting
            sync_files(unsynced)  # they wait for the database: make them survive a power cut
            return total
        if not (done.written or done.quarantined):
            return total


Taken = tuple[Path, Path, str]  # the spool file, its claimed name, its text


def _take(paths: list[Path]) -> list[Taken]:
    taken = []
    for path in paths:
        mine = path.with_name(f".{path.stem}.{os.getpid()}.replaying")
        try:
            os.rename(path, mine)
        except FileNotFoundError:
            continue  # another worker took it
        taken.append((path, mine, mine.read_text(encoding="utf-8", errors="replace")))
    return taken


def _write_batch(batch: list[Taken], result: Replayed) -> bool:
    """All of `batch` in one transaction; False (nothing written) if anything was refused."""
    if len(batch) < 2:
        return False
    try:
        records = [json.loads(raw) for _, _, raw in batch]
        if any("erase" in r for r in records):
            return False  # an erasure runs alone, in order
        entries = [Entry.from_record(r) for r in records]
        keys = [e.msg_key for e in entries]
        rows = db.session.scalars(select(Exchange).where(Exchange.msg_key.in_(keys)))
        existing = {row.msg_key: row for row in rows}
        for entry in entries:  # the same message twice: the first completes it
            existing[entry.msg_key] = _complete(entry, _values(entry), existing.get(entry.msg_key))
        db.session.commit()
    except Exception:  # sorted out entry by entry
        db.session.rollback()
        return False
    for _, mine, _ in batch:
        mine.unlink()
    result.written += len(batch)
    return True


def _one_by_one(batch: list[Taken], result: Replayed) -> bool:
    """Each entry in its own transaction; False if the database made the rest wait."""
    for index, (path, mine, raw) in enumerate(batch):
        try:
            _replay_record(json.loads(raw))
        except Exception as exc:  # sorted below: the database waits, or the entry is refused
            db.session.rollback()
            if _transient(exc):
                for back, claimed, _ in batch[index:]:
                    os.rename(claimed, back)
                result.waiting = _short(exc)
                log.warning("spool replay paused, database unavailable: %s", result.waiting)
                return False
            _quarantine(mine, path.name, raw, exc)
            result.quarantined += 1
            continue
        mine.unlink()
        result.written += 1
    return True


def _put_back_orphans() -> None:
    """Files a killed process had claimed for replay go back to the spool."""
    folder = spool_dir()
    for claimed in folder.glob(".*.replaying") if folder.is_dir() else []:
        stem, _, pid = claimed.name[1:].removesuffix(".replaying").rpartition(".")
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            os.rename(claimed, folder / f"{stem}.json")
            log.warning("spooled entry %s put back: its replaying process %s is gone", stem, pid)
        except FileNotFoundError:
            continue  # another worker put it back


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _replay_record(record: dict[str, Any]) -> None:
    if "erase" in record:
        erase(record["erase"])
        db.session.commit()
        return
    entry = Entry.from_record(record)
    _insert_or_complete(entry, _values(entry))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # a live insert of the same message won the race: done
        if db.session.scalar(select(Exchange.id).where(Exchange.msg_key == entry.msg_key)) is None:
            raise


def _transient(exc: Exception) -> bool:
    if isinstance(exc, TRANSIENT):
        return True
    orig = getattr(exc, "orig", None)
    return isinstance(exc, ProgrammingError) and type(orig).__name__ in _SCHEMA_MISSING


def _quarantine(mine: Path, name: str, raw: str, exc: Exception) -> None:
    """Keep the refused entry with its reason, out of the replay's way."""
    try:
        record: Any = json.loads(raw)
    except ValueError:
        record = raw
    reason = f"{type(exc).__name__}: {_short(exc)}"
    folder = spool_dir() / "quarantine"
    private_dir(spool_dir(), folder)
    quarantined_at = datetime.now(UTC).isoformat()
    doc = {"reason": reason, "quarantined_at": quarantined_at, "record": record}
    write_atomically(folder / name, json.dumps(doc, ensure_ascii=False))
    mine.unlink()
    log.error("spooled entry %s quarantined: %s", name, reason)


def requeue(names: list[str] | None = None) -> int:
    """Put quarantined entries back in the spool (after the cause was fixed); returns how many."""
    moved = 0
    for item in quarantined():
        if names and item["file"] not in names or not isinstance(item.get("record"), dict):
            continue
        path = spool_dir() / "quarantine" / item["file"]
        if _spool_record(item["record"]) is not None:
            path.unlink()
            moved += 1
    return moved


def forget(openid_hash: str) -> None:
    """Erase a resident's link to the log now, or on replay if the database is unavailable."""
    try:
        in_database(_erase_committed, openid_hash)
    except UNAVAILABLE as exc:
        log.error("database unavailable, erasure spooled: %s", _short(exc))
        spool_erasure(openid_hash)


def _erase_committed(openid_hash: str) -> None:
    erase(openid_hash)
    db.session.commit()


def erase(openid_hash: str) -> None:
    """Unlink a resident's exchanges and requests for a person, and drop their conversation
    row (caller commits): one transaction, also when replayed from the spool."""
    db.session.execute(
        update(Exchange).where(Exchange.openid_hash == openid_hash).values(openid_hash=None)
    )
    db.session.execute(
        update(HelpRequest)
        .where(HelpRequest.openid_hash == openid_hash)
        .values(openid_hash=None, openid=None)
    )
    db.session.execute(delete(Conversation).where(Conversation.openid_hash == openid_hash))


def anonymise_before(cutoff: datetime) -> int:
    """Retention: unlink exchanges received before `cutoff` from their residents.

    The masked question and the reply stay for the advisers and the annual figures; what
    tied them to a person (the openid hash, the QR scene, the conversation row) goes.
    Returns how many exchanges were unlinked.
    """
    unlinked = db.session.execute(
        update(Exchange)
        .where(Exchange.received_at < cutoff)
        .where((Exchange.openid_hash.is_not(None)) | (Exchange.scene.is_not(None)))
        .values(openid_hash=None, scene=None)
    ).rowcount
    db.session.execute(delete(Conversation).where(Conversation.updated_at < cutoff))
    db.session.commit()
    return unlinked


def retention_cutoff(now: datetime, months: int) -> datetime | None:
    """`months` calendar months before `now` (clamped to the month's last day); None: keep."""
    if months <= 0:
        return None
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


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
        if in_database(_mark_feedback, msg_key, value):
            return True
        if not current_app.config["JOURNAL_WRITE_BEHIND"]:
            return False
        # still in this host's spool, its writer's next pass: write it now, then mark it
        return in_database(_flush_then_mark, msg_key, value)
    except UNAVAILABLE as exc:
        log.warning("feedback on %s not stored: %s", msg_key, _short(exc))
        return False


def _mark_feedback(msg_key: str, value: str) -> bool:
    done = db.session.execute(
        update(Exchange).where(Exchange.msg_key == msg_key).values(feedback=value)
    ).rowcount
    db.session.commit()
    return bool(done)


def _flush_then_mark(msg_key: str, value: str) -> bool:
    return flush(storage().budget / 2) and _mark_feedback(msg_key, value)


def _maybe_replay() -> None:
    """After a successful write, replay the spool in the background (checked every 5 s)."""
    store = storage()
    now = time.monotonic()
    if now - store.last_replay_check < REPLAY_EVERY:
        return
    store.last_replay_check = now
    if spooled():
        store.in_background(replay_spool)


def _redis_key(msg_key: str) -> str:
    return f"pufa:claim:{msg_key}"


def _short(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
