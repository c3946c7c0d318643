"""Helpers the tests import (never conftest): ask the answering service as residents would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import answering
from bot.wechat import render

OFFICE = "测试镇司法所 电话0871-00000000"
APPS: list = []  # every app the tests made, closed after each test (conftest._close_apps)
MODULE_APPS: list = []  # apps that serve a whole module: closed after each test and at its end


@dataclass
class Replied:
    """An Answer and the text a resident reads; attributes of the Answer pass through."""

    answer: answering.Answer
    text: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.answer, name)


def ask(question: str, *, base=None, full=None, ctx: answering.Context | None = None) -> Replied:
    """Answer `question` with `ctx` (an app's models), or lexically from `base` alone."""
    ctx = ctx or answering.Context(base=base, full=full)
    ans = answering.answer(question, ctx)
    return Replied(ans, render.answer_text(ans, base=ctx.base, office=OFFICE))
