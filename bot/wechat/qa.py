"""Answers each resident message once, and keeps the conversation going.

WeChat re-sends a message it got no reply to within 5 s, so a retry gets the stored reply
instead of a second answer. The question is claimed (and, without Redis, stored) before it is
answered, so advisers see it even if answering fails; with the database down it goes to the
disk spool and the resident is still answered.

A conversation is what residents expect of a person: a greeting gets a greeting, "2" picks
the second choice, "更多" the rest of a long answer, "那要赔多少钱" within ten minutes stays
on the topic, "有用/没用" is recorded against the answer it follows, and "人工", "我要调解"
or "法律援助" start a request for a person (bot/requests.py), a few questions long. Message
kinds and conversational moves are registered, not if-chained.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from bot import answering, conversations, corrections, journal, lawbase, limits, metrics
from bot import requests as help_requests
from bot.accounts import Settings
from bot.privacy import mask, openid_hash
from bot.wechat import render

log = logging.getLogger(__name__)

_CHOICE = re.compile(r"^\s*(?:第)?([1-9１-９一二三四五六七八九])\s*(?:个|条|项)?\s*[。.!！]?\s*$")
_MORE = re.compile(r"^\s*(更多|more|继续|下一页)\s*[。.!！]?\s*$", re.IGNORECASE)
_CN_DIGITS = "一二三四五六七八九"
_FULL = str.maketrans("１２３４５６７８９", "123456789")
_END = r"[\s。.!！~～?？啊呀哈哦噢嘛吧呢的了]*$"

# Short messages that are not questions, each with its reply. Matched on the whole message.
SMALL_TALK: dict[str, tuple[re.Pattern[str], str]] = {
    "greeting": (
        re.compile(
            r"^\s*(你好|您好|哈喽|哈啰|嗨|hello|hi|在吗|在不在|有人吗|有人在吗|早上好|上午好|"
            r"中午好|下午好|晚上好|喂)" + _END,
            re.IGNORECASE,
        ),
        render.GREETING,
    ),
    "thanks": (
        re.compile(
            r"^\s*(谢谢|谢谢你|谢谢您|谢了|多谢|感谢|非常感谢|辛苦了|好的|好|嗯|嗯嗯|知道了|"
            r"明白了|晓得了|收到|懂了|ok|okay|👍|🙏)" + _END,
            re.IGNORECASE,
        ),
        render.THANKS,
    ),
    "who": (
        re.compile(
            r"^\s*(你是哪个|你是谁|你是哪位|你是机器人|你是人吗|你是真人吗|你是干啥的|你是做什么的)"
            + _END
        ),
        render.WHO_AM_I,
    ),
    # "人工", "找人" start a request for a person: see the `_request` move
}
FEEDBACK = {
    "useful": re.compile(r"^\s*(有用|有帮助|很有用|有用的|管用|说得对|对的|解决了)" + _END),
    "not_useful": re.compile(
        r"^\s*(没用|没有用|没帮助|没有帮助|不管用|不对|答错了|说错了|不是这个|不是我问的|答非所问)"
        + _END
    ),
}
# A follow-up leans on the previous answer: short, and asks about amounts, offices, papers,
# time, or starts with 那/还有.
FOLLOW_UP = re.compile(
    r"^(那|那么|还有|还要|要是|如果|可是|但是)|(多少钱|赔多少|赔好多|好多钱|找哪个|找谁|哪个部门|"
    r"去哪|哪里办|材料|证据|要带|多久|多长时间|时效|犯法不|违法不|判几年|罚好多|罚多少)"
)
WHICH_OFFICE = re.compile(r"找哪个|找谁|哪个部门|哪个管|去哪|哪里办|找哪里")
FOLLOW_UP_MAX_CHARS = 16
LIMITED_KINDS = {"text", "voice", "non_text", "click"}  # what a resident sends; not follows


@dataclass(frozen=True)
class Turn:
    """Who is talking to which account: what every handler needs besides the text."""

    who: str  # the resident's keyed hash, scoped to the account
    account: Settings
    openid: str = ""  # kept only on a request for a person, to tell them of progress
    _held: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def office(self) -> str:
        return office(self.account)

    def state(self) -> dict[str, Any]:
        """The resident's conversation state, read once per message (several moves ask)."""
        if "state" not in self._held:
            self._held["state"] = conversations.get(self.who)
        return self._held["state"]


@dataclass
class Result:
    outcome: str
    text: str
    emergency: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] | None = None  # new conversation state, None to leave it


def hash_openid(openid: str, account: Settings) -> str:
    """The resident's keyed hash. WeChat's openids are per account already; the hash is
    scoped too, so no state or log of one account can be reached through another."""
    cfg = current_app.config
    key = str(cfg.get("OPENID_HASH_KEY") or cfg["SECRET_KEY"])
    return openid_hash(account.scoped(openid), key)


def reply_once(
    *,
    account: Settings,
    msg_key: str,
    openid: str,
    kind: str,
    text: str = "",
    scene: str | None = None,
) -> str:
    """Return the reply to one delivery of a message, answering each message at most once.

    `msg_key` is already scoped to the account (`account.scoped`)."""
    started = time.perf_counter()
    who = hash_openid(openid, account)
    turn = Turn(who, account, openid)
    entry = journal.Entry(
        msg_key=msg_key, openid_hash=who, kind=kind, question=mask(text), account_id=account.id
    )
    entry.scene = scene
    claim = journal.claim(entry)
    if not claim.owner:
        wait = float(current_app.config["RETRY_WAIT_SECONDS"])
        reply = claim.reply or journal.wait_for_reply(msg_key, timeout=wait)
        if reply is not None:
            log.info("repeat delivery of %s answered from the stored reply", msg_key)
            return reply
        log.warning("repeat delivery of %s found no stored reply; answering it now", msg_key)
    try:
        if kind in LIMITED_KINDS and not limits.resident_allowed(who):
            result = Result("limited", render.SLOW_DOWN.format(office=turn.office))
        else:
            result = respond(kind=kind, text=text, turn=turn)
    except Exception:  # last line of defence: WeChat is waiting
        log.exception("answering failed for message %s", msg_key)  # the key, not the text
        result = Result("failed", render.FALLBACK.format(office=turn.office))
    entry.reply, entry.outcome = result.text, result.outcome
    entry.emergency, entry.citations = result.emergency, result.citations
    if result.state is not None:
        if "answered_key" in result.state:  # "有用/没用" next will mark this exchange
            result.state["answered_key"] = msg_key
        conversations.put(who, result.state)
    entry.latency_ms = round((time.perf_counter() - started) * 1000, 3)
    journal.finish(entry)
    metrics.observe(result.outcome, time.perf_counter() - started)
    return result.text


# -- message kinds ---------------------------------------------------------------------------

Handler = Callable[[str, Turn], Result]
KINDS: dict[str, Handler] = {}


def kind(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        KINDS[name] = fn
        return fn

    return register


def respond(*, kind: str, text: str, turn: Turn) -> Result:
    """Work out the reply to one message; pure apart from conversation state and feedback."""
    return KINDS[kind](text, turn)


@kind("subscribe")
def _subscribe(text: str, turn: Turn) -> Result:
    return Result("greeting", render.WELCOME.format(office=turn.office), state={})


@kind("scan")
def _scan(text: str, turn: Turn) -> Result:
    return Result("greeting", render.GREETING.format(office=turn.office))


@kind("non_text")
def _non_text(text: str, turn: Turn) -> Result:
    return Result("non_text", render.NON_TEXT.format(office=turn.office))


@kind("click")
def _click(key: str, turn: Turn) -> Result:
    if key == render.MENU_HELP_KEY:
        return Result("greeting", render.WELCOME.format(office=turn.office))
    if key not in render.MENU_TOPICS:
        return Result("non_text", render.MENU_UNKNOWN)
    title, topics = render.MENU_TOPICS[key]
    picks, seen = [], set()
    for topic in topics:  # one or two per topic, so the menu covers the whole area
        for s in [s for s in lawbase.current().snippets if topic in s.topics][:2]:
            if s.id not in seen:
                seen.add(s.id)
                picks.append(s)
    picks = picks[:9]
    if not picks:
        return Result("non_text", render.MENU_UNKNOWN)
    lines = [render.MENU_HEAD.format(topic=title)]
    lines += [f"{i}. {s.summary}" for i, s in enumerate(picks, start=1)]
    return Result("choices", "\n".join(lines), state={"choices": [s.id for s in picks], "more": []})


@kind("voice")
def _voice(text: str, turn: Turn) -> Result:
    if not text.strip():  # WeChat sent no recognition (or recognition is switched off)
        return Result("non_text", render.VOICE_UNRECOGNISED)
    return _message(text, turn)


@kind("text")
def _message(text: str, turn: Turn) -> Result:
    if not text.strip():
        return Result("non_text", render.EMPTY)
    for move in MOVES:
        result = move(text, turn)
        if result is not None:
            return _with_news(result, turn)
    return _with_news(_question(text, turn), turn)


# -- conversational moves, tried in order before a message is treated as a question --------


def _more(text: str, turn: Turn) -> Result | None:
    if not _MORE.match(text):
        return None
    state = turn.state()
    pages = state.get("more") or []
    if not pages:
        return Result("more", render.NO_MORE)
    first = pages[0] + ("\n" + render.MORE_TAIL if len(pages) > 1 else "")
    return Result("more", first, state={**state, "more": pages[1:]})


def _pick(text: str, turn: Turn) -> Result | None:
    m = _CHOICE.match(text)
    if not m:
        return None
    digit = m.group(1)
    number = _CN_DIGITS.index(digit) + 1 if digit in _CN_DIGITS else int(digit.translate(_FULL))
    state = turn.state()
    choices = state.get("choices") or []
    if not choices:
        return None  # a bare number with nothing offered: answer it as a question
    if number > len(choices):
        return Result("choices", render.CHOICE_EXPIRED)
    ans = answering.chosen(choices[number - 1], answering.context())
    if ans is None:
        return Result("choices", render.CHOICE_EXPIRED)
    result = _paged(ans, turn, topic=state.get("topic"))
    result.state = {**(result.state or {}), "choices": choices}  # other numbers stay valid
    return result


def _small_talk(text: str, turn: Turn) -> Result | None:
    for name, (pattern, reply) in SMALL_TALK.items():
        if pattern.match(text):
            return Result(name, reply.format(office=turn.office))
    return None


def _feedback(text: str, turn: Turn) -> Result | None:
    for value, pattern in FEEDBACK.items():
        if pattern.match(text):
            state = turn.state()
            last = state.get("answered_key")
            if last:
                journal.record_feedback(last, value)
            reply = render.FEEDBACK_THANKS if value == "useful" else render.FEEDBACK_SORRY
            return Result("feedback", reply.format(office=turn.office))
    return None


def _request(text: str, turn: Turn) -> Result | None:
    """A request for a person: "人工", "我要调解" start it, then one question per message.

    Every step is checked for an emergency first: someone in danger gets the numbers, and
    the request waits (see `_request_paused`)."""
    kind = help_requests.started(text)
    if kind is not None:
        start = render.REQUEST_START[kind].format(office=turn.office)
        ask = render.REQUEST_ASK[help_requests.STEPS[0]]
        return Result("request", f"{start}\n{ask}", state={"request": help_requests.begin(kind)})
    state = turn.state()
    req = help_requests.pending(state)
    if req is None or (_MORE.match(text) and state.get("more")):
        return None
    alarm = help_requests.alarm(text)
    if alarm is not None and alarm.firm:
        return _request_paused(text, turn, req)
    step = help_requests.advance(
        req, text, who=turn.who, account_id=turn.account.id, openid=turn.openid
    )
    result = Result("request", _request_reply(step, turn), state={"request": step.request})
    if alarm is not None:  # maybe in danger: the numbers first, and the request goes on
        result.text, result.emergency = render.maybe_in_danger(alarm, result.text), alarm.kind
    return result


def _request_reply(step: help_requests.Step, turn: Turn) -> str:
    replies = {
        "asked": render.REQUEST_ASK.get(step.ask or "", ""),
        "again": render.REQUEST_PHONE_AGAIN,
        "saved": render.REQUEST_SAVED if step.phone else render.REQUEST_SAVED_NO_PHONE,
        "cancelled": render.REQUEST_CANCELLED,
        "failed": render.REQUEST_NOT_SAVED,
    }
    kind = render.REQUEST_KINDS[step.kind]
    phone = help_requests.masked_phone(step.phone)
    return replies[step.outcome].format(kind=kind, phone=phone, office=turn.office)


def _request_paused(text: str, turn: Turn, req: dict[str, Any]) -> Result:
    """An emergency in the middle of a request is answered as any emergency is, numbers
    first; the request waits for the resident to be safe. Told what happened, it keeps that
    as what the request is about, so the resident is not asked to tell it again."""
    result = _question(text, turn)
    if req["step"] == help_requests.STEPS[0]:
        req = help_requests.advance(req, text, who=turn.who, account_id=turn.account.id).request
    assert req is not None
    tail = render.REQUEST_PAUSED.format(ask=render.REQUEST_ASK[req["step"]])
    state = {**(result.state or {}), "request": req}
    if len(f"{result.text}\n\n{tail}".encode()) <= int(current_app.config["REPLY_MAX_BYTES"]):
        result.text = f"{result.text}\n\n{tail}"
    elif state.get("more"):  # a long answer: the reminder comes with its last page
        state["more"] = [*state["more"], tail]
    result.state = state
    return result


def _with_news(result: Result, turn: Turn) -> Result:
    """Progress on the resident's requests, one line before the reply, said once.

    Not before an emergency's numbers, which stay on the first line: the news waits for the
    next message, as it does when the reply has no room for it."""
    if result.emergency is not None:
        return result
    news = help_requests.news_for(turn.who, turn.account.id)
    if not news:
        return result
    lines = [
        render.REQUEST_PROGRESS.format(
            kind=render.REQUEST_KINDS[n.kind], status=render.REQUEST_STATUSES[n.status]
        )
        for n in news
    ]
    text = "\n".join([*lines, result.text])
    if len(text.encode()) > int(current_app.config["REPLY_MAX_BYTES"]):
        return result
    help_requests.mark_told(news)
    result.text = text
    return result


MOVES: list[Callable[[str, Turn], Result | None]] = [
    _request,  # first: in the middle of a request, a message answers its question
    _more,
    _pick,
    _feedback,
    _small_talk,
]


# -- questions ------------------------------------------------------------------------------


def _question(text: str, turn: Turn) -> Result:
    ctx = answering.context()
    ans = answering.answer(text, ctx)
    fixed = _corrected(text, turn, ans, ctx)
    if fixed is not None:
        return _paged(fixed, turn, question=text)
    topic = _recent_topic(turn)
    alarm = ans.emergency
    # someone in danger now ("发现山上冒烟了找哪个" after a wage question) is no follow-up
    if topic is not None and not (alarm and alarm.firm) and _leans_on(text, ans):
        if WHICH_OFFICE.search(text) and topic.get("snippet") in ctx.base.by_id:
            snippet = ctx.base.by_id[topic["snippet"]]
            help_ = render.help_text(snippet, base=ctx.base, office=turn.office)
            reply = render.WHICH_OFFICE.format(help=help_)
            if alarm is not None:  # maybe in danger: the numbers' line first, as everywhere
                reply = render.maybe_in_danger(alarm, reply)
            kind = alarm.kind if alarm else None
            cited = [_cited(snippet)]
            return Result("follow_up", reply, kind, cited, state={"topic": topic})
        joined = answering.answer(f"{topic['question']} {text}", ctx)
        if joined.outcome in ("answered", "choices"):
            joined.emergency = ans.emergency  # this message's danger, not the topic's words
            return _paged(joined, turn, topic=topic, question=text)
        on_its_own = ans.outcome in ("answered", "choices")  # "那离婚了娃儿跟哪个"
        if not on_its_own and FOLLOW_UP.search(text) and topic.get("snippet") in ctx.base.by_id:
            # nothing clearer for the topic and this together ("要带哪样材料"): the topic's
            # own answer again, whose explanation says what to keep and where to go
            again = answering.Answer("answered", snippet=ctx.base.by_id[topic["snippet"]])
            again.emergency = ans.emergency
            return _paged(again, turn, topic=topic, question=text, lead=render.ABOUT_TOPIC)
    return _paged(ans, turn, question=text)


def _corrected(
    text: str, turn: Turn, ans: answering.Answer, ctx: answering.Context
) -> answering.Answer | None:
    """An adviser corrected this question in this account: their snippet is the answer.

    The emergency found in the message stays with it: its numbers never depend on matching."""
    fix = corrections.lookup(text, turn.account.id)
    if fix is None:
        return None
    fixed = answering.chosen(fix.snippet_id, ctx)
    if fixed is None or fixed.outcome != "answered":
        return None  # the snippet left the base: answer by ourselves
    fixed.emergency = ans.emergency
    fixed.citations = [{**c, "correction": fix.correction_id} for c in fixed.citations]
    return fixed


def _leans_on(text: str, ans: answering.Answer) -> bool:
    """Does this message lean on the previous topic rather than stand on its own?

    Only a short message that has no clear answer of its own: "那找哪个部门", "要带哪样材料".
    "那离婚了娃儿归哪个" is answered by itself, whatever came before.
    """
    if ans.asked is not None or ans.outcome == "answered":
        return False
    if len(text.strip()) > FOLLOW_UP_MAX_CHARS:
        return False
    return bool(FOLLOW_UP.search(text)) or ans.outcome in ("no_answer", "suggestions")


def _recent_topic(turn: Turn) -> dict[str, Any] | None:
    topic = turn.state().get("topic")
    if not topic:
        return None
    if time.time() - float(topic.get("at", 0)) > current_app.config["FOLLOW_UP_SECONDS"]:
        return None
    return topic


def _paged(
    ans: answering.Answer,
    turn: Turn,
    *,
    topic: dict[str, Any] | None = None,
    question: str | None = None,
    lead: str = "",
) -> Result:
    text = render.answer_text(ans, base=lawbase.current(), office=turn.office, lead=lead)
    pages = paginate(text, int(current_app.config["REPLY_MAX_BYTES"]))
    state: dict[str, Any] = {"choices": ans.choices, "more": pages[1:]}
    state["answered_key"] = None  # reply_once fills in this message's key
    if ans.outcome == "answered" and ans.snippet is not None:
        # a later "那要赔多少钱" builds on this question (or on the topic it followed)
        asked = (topic or {}).get("question") or question or ""
        state["topic"] = {"snippet": ans.snippet.id, "question": asked, "at": time.time()}
    elif ans.outcome == "choices" and ans.options and not topic:
        # "那找哪个部门" after a list of choices builds on the question and the first choice
        state["topic"] = {
            "snippet": ans.options[0].id,
            "question": question or "",
            "at": time.time(),
        }
    elif topic is not None:
        state["topic"] = topic
    first = pages[0] + ("\n" + render.MORE_TAIL if len(pages) > 1 else "")
    emergency = ans.emergency.kind if ans.emergency else None
    return Result(ans.outcome, first, emergency, ans.citations, state)


def _cited(snippet: Any) -> dict[str, Any]:
    return {"id": snippet.id, "citation": snippet.citation}


def paginate(text: str, max_bytes: int) -> list[str]:
    """Split a reply into pages that fit one WeChat text, at line ends where possible."""
    budget = max_bytes - len(("\n" + render.MORE_TAIL).encode()) - 8
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


def office(account: Settings) -> str:
    """The account's own justice office, one line, and its further help channels."""
    o = account.office
    line = render.office_line(o.name, o.phone, o.address, o.hours)
    more = [f"{c.name}{' ' + c.phone if c.phone else ''}" for c in account.help_channels]
    return "；".join([line, *more])


def forget_resident(openid: str, account: Settings) -> None:
    """Unsubscribe: erase what links the Q&A log and state to this resident (WECHAT.md W8).

    The masked questions stay, unlinked, for the advisers and the annual figures. With the
    database down the erasure is spooled and carried out on replay.
    """
    who = hash_openid(openid, account)
    conversations.forget(who)
    journal.forget(who)
