"""What residents receive: a post's Markdown as WeChat shows it, never raw Markdown.

An article (mpnews) is HTML, which WeChat's article page renders and the console shows as
its preview: HTML typed into the Markdown is shown as text, not obeyed, and links and images
keep only web, mail and phone addresses (no `javascript:`). A text message is plain text: its
title first, then the body with Markdown's marks turned into what a chat shows (paragraphs,
"• " for list items, numbers kept for numbered lists, links as "text（url）").
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree
from html.parser import HTMLParser

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul", "ol", "table", "hr"}
SAFE_SCHEMES = {"http", "https", "mailto", "tel"}
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\xa0\u200b-\u200f\u2028-\u202e\ufeff]+")


def article_html(body: str) -> str:
    """The article's HTML: safe to show in the console and to give WeChat as it is."""
    return markdown.markdown(body, extensions=["tables", "sane_lists", _Inert()])


def text_message(title: str, body: str) -> str:
    """The title, a blank line, and the body as clean chat text."""
    parser = _Text()
    # Typed HTML is parsed here and only its text kept: a chat shows no markup either way.
    parser.feed(markdown.markdown(body, extensions=["tables", "sane_lists"]))
    parser.close()
    return f"【{title.strip()}】\n\n{parser.text()}".strip()


class _Inert(Extension):
    """Markdown without its raw-HTML pass-through, and with only safe link addresses."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.deregister("html_block")  # <div>… blocks become escaped text
        md.inlinePatterns.deregister("html")  # so do <script>, <img onerror=…> inside text
        md.treeprocessors.register(_SafeAddresses(md), "safe_addresses", -10)  # after unescape


class _SafeAddresses(Treeprocessor):
    def run(self, root: etree.Element) -> None:
        for element in root.iter():
            for attribute in ("href", "src"):
                value = element.get(attribute)
                if value is not None and not safe_address(value):
                    del element.attrib[attribute]


def safe_address(value: str) -> bool:
    """A web, mail or phone address, or one without a scheme (a page-relative link)."""
    plain = _INVISIBLE.sub("", html.unescape(value)).lower()
    found = _SCHEME.match(plain)
    return found is None or found.group(1) in SAFE_SCHEMES


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.lists: list[list[int]] = []  # one counter per open list; [-1] for a bullet list
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in BLOCKS or tag == "br":
            self.out.append("\n\n" if tag in BLOCKS else "\n")
        if tag == "ul":
            self.lists.append([-1])
        elif tag == "ol":
            self.lists.append([0])
        elif tag == "li":
            counter = self.lists[-1] if self.lists else [-1]
            indent = "  " * max(len(self.lists) - 1, 0)
            if counter[0] >= 0:
                counter[0] += 1
                self.out.append(f"\n{indent}{counter[0]}. ")
            else:
                self.out.append(f"\n{indent}• ")
        elif tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        if tag == "a" and self.href:
            self.out.append(f"（{self.href}）")
            self.href = None
        if tag in BLOCKS:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if data.strip() or "\n" not in data:  # the HTML's own line breaks between tags go
            self.out.append(data)

    def text(self) -> str:
        lines = "".join(self.out).split("\n")
        cleaned: list[str] = []
        for line in (ln.rstrip() for ln in lines):
            if line or (cleaned and cleaned[-1]):  # at most one blank line in a row
                cleaned.append(line)
        return "\n".join(cleaned).strip()
