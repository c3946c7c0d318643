"""Answers each resident message once, and keeps the conversation (choices, "更多") going.

WeChat re-sends a message it got no reply to within 5 s, so a retry gets the stored reply
instead of a second answer. The question is claimed (and, without Redis, stored) before it is
answered, so advisers see it even if answering fails; with the database down it goes to the
disk spool and the resident is still answered.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from bot import answering, conversations, fulltext, journal, lawbase
from bot.extensions import db
from bot.privacy import mask, openid_hash
from bot.wechat import texts

log = logging.getLogger(__name__)

_CHOICE = re.compile(r"^\s*(?:第)?([1-9１-９一二三四五六七八九])\s*(?:个|条|项)?\s*[。.!！]?\s*$")
_MORE = re.compile(r"^\s*(更多|more|继续|下一页)\s*[。.!！]?\s*$", re.IGNORECASE)
_CN_DIGITS = "一二三四五六七八九"


@dataclass
class Result:
    outcome: str
    text: str
    emergency: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] | None = None  # new conversation state, None to leave it


def hash_openid(openid: str) -> str:
    cfg = current_app.config
    return openid_hash(openid, str(cfg.get("OPENID_HASH_KEY") or cfg["SECRET_KEY"]))


def reply_once(*, msg_key: str, openid: str, kind: str, text: str = "") -> str:
    """Return the reply to one delivery of a message, answering each message at most once."""
    started = time.perf_counter()
    who = hash_openid(openid)
    entry = journal.Entry(msg_key=msg_key, openid_hash=who, kind=kind, question=mask(text))
    claim = journal.claim(entry)
    if not claim.owner:
        reply = claim.reply or journal.wait_for_reply(msg_key)
        if reply is not None:
            log.info("repeat delivery of %s answered from the stored reply", msg_key)
            return reply
        log.warning("repeat delivery of %s found no stored reply; answering it now", msg_key)
    try:
        result = respond(kind=kind, text=text, who=who)
    except Exception:  # last line of defence: WeChat is waiting
        log.exception("answering failed for message %s", msg_key)  # the key, not the text
        result = Result("failed", texts.FALLBACK.format(office=office().line))
    entry.reply, entry.outcome = result.text, result.outcome
    entry.emergency, entry.citations = result.emergency, result.citations
    if result.state is not None:
        conversations.put(who, result.state)
    entry.latency_ms = round((time.perf_counter() - started) * 1000, 3)
    journal.finish(entry)
    return result.text


def respond(*, kind: str, text: str, who: str) -> Result:
    """Work out the reply to one message; pure apart from reading conversation state."""
    if kind == "subscribe":
        return Result("greeting", texts.WELCOME.format(office=office().line), state={})
    if kind == "non_text":
        return Result("non_text", texts.NON_TEXT.format(office=office().line))
    if kind == "click":
        return _menu(text)
    if not text.strip():
        msg = texts.VOICE_UNRECOGNISED if kind == "voice" else texts.EMPTY
        return Result("non_text", msg)
    if _MORE.match(text):
        return _more(who)
    choice = _CHOICE.match(text)
    if choice:
        picked = _pick(who, choice.group(1))
        if picked is not None:
            return picked
    ans = answering.answer(text, base=lawbase.current(), office=office(), full=fulltext.current())
    return _paged(ans)


def _paged(ans: answering.Answer) -> Result:
    pages = paginate(ans.text, int(current_app.config["REPLY_MAX_BYTES"]))
    state: dict[str, Any] = {"choices": ans.choices, "more": pages[1:]}
    first = pages[0] + ("\n" + texts.MORE_TAIL if len(pages) > 1 else "")
    return Result(ans.outcome, first, ans.emergency, ans.citations, state)


def _pick(who: str, digit: str) -> Result | None:
    number = _CN_DIGITS.index(digit) + 1 if digit in _CN_DIGITS else int(digit.translate(_FULL))
    choices = conversations.get(who).get("choices") or []
    if not choices:
        return None  # a bare number with nothing offered: answer it as a question
    base = lawbase.current()
    if number > len(choices) or choices[number - 1] not in base.by_id:
        return Result("choices", texts.CHOICE_EXPIRED)
    snippet = base.by_id[choices[number - 1]]
    ans = answering.snippet_answer(snippet, base=base, office=office(), score=None)
    result = _paged(ans)
    result.state = {**(result.state or {}), "choices": choices}  # other numbers stay valid
    return result


_FULL = str.maketrans("１２３４５６７８９", "123456789")


def _more(who: str) -> Result:
    state = conversations.get(who)
    pages = state.get("more") or []
    if not pages:
        return Result("more", texts.NO_MORE)
    first = pages[0] + ("\n" + texts.MORE_TAIL if len(pages) > 1 else "")
    return Result("more", first, state={**state, "more": pages[1:]})


def _menu(key: str) -> Result:
    if key == texts.MENU_HELP_KEY:
        return Result("greeting", texts.WELCOME.format(office=office().line))
    if key not in texts.MENU_TOPICS:
        return Result("non_text", texts.MENU_UNKNOWN)
    title, topics = texts.MENU_TOPICS[key]
    picks, seen = [], set()
    for topic in topics:  # one or two per topic, so the menu covers the whole area
        for s in [s for s in lawbase.current().snippets if topic in s.topics][:2]:
            if s.id not in seen:
                seen.add(s.id)
                picks.append(s)
    picks = picks[:9]
    if not picks:
        return Result("non_text", texts.MENU_UNKNOWN)
    lines = [texts.MENU_HEAD.format(topic=title)]
    lines += [f"{i}. {s.summary}" for i, s in enumerate(picks, start=1)]
    return Result("choices", "\n".join(lines), state={"choices": [s.id for s in picks], "more": []})


def paginate(text: str, max_bytes: int) -> list[str]:
    """Split a reply into pages that fit one WeChat text, at line ends where possible."""
    budget = max_bytes - len(("\n" + texts.MORE_TAIL).encode()) - 8
    if len(text.encode()) <= max_bytes:
        return [text]
    pages, current = [], ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= budget:
            current = candidate
            continue
        if current:
            pages.append(current)
        while len(line.encode()) > budget:  # one very long line: cut by characters
            cut = len(line.encode()[:budget].decode(errors="ignore"))
            pages.append(line[:cut])
            line = line[cut:]
        current = line
    if current:
        pages.append(current)
    return pages


def office() -> answering.Office:
    cfg = current_app.config
    return answering.Office(
        texts.office_line(
            cfg["JUSTICE_OFFICE_NAME"],
            cfg.get("JUSTICE_OFFICE_PHONE"),
            cfg.get("JUSTICE_OFFICE_ADDRESS"),
            cfg.get("JUSTICE_OFFICE_HOURS"),
        )
    )


def forget_resident(openid: str) -> None:
    """Unsubscribe: erase what links the Q&A log and state to this resident (WECHAT.md W8).

    The masked questions stay, unlinked, for the advisers and the annual figures. With the
    database down the erasure is spooled and carried out on replay.
    """
    who = hash_openid(openid)
    conversations.forget(who)
    try:
        journal.erase(who)
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error("database unavailable, erasure spooled: %s", str(exc).splitlines()[0])
        journal.spool_erasure(who)
