"""The text and HTML parts of a ticket notification: the news first, then the conversation before it.

The HTML never loads anything: it is built from escaped text and from the senders' own HTML cleaned by nh3 (the
Ammonia sanitiser) down to a short list of formatting tags, without images, styles, scripts or forms, links only to
http(s) and mailto and never followed with a referrer. So a hostile mail cannot run, track or restyle anything in
another reader's mail client.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

QUOTED_LINES = 30  # of each earlier message in the text part: enough to recognise it, not the whole thread
QUOTED_CHARS = 4000
EARLIER_SHOWN = 5  # earlier messages shown below the news
HTML_INPUT_CHARS = 50_000  # of a sender's HTML cleaned and shown; the rest is cut before cleaning
HTML_BUDGET = 96_000  # the whole HTML part: with the text part it keeps the SQS message far from 256 KB

ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"},
                      "abbr": {"title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"
_BLOCK = "margin:0 0 16px 0"
_QUOTE = "margin:0 0 0 8px;padding:0 0 0 12px;border-left:3px solid #d0d0d0;color:#444"


@dataclass(frozen=True)
class Message:
    """One message of the conversation as a notification shows it."""

    author: str
    at: datetime
    text: str
    html: str | None = None  # the sender's own HTML, if it came by mail with one


def sanitise(markup: str) -> str:
    """The sender's HTML reduced to safe formatting (see the module docstring)."""
    import nh3  # imported when the first HTML part is built, not at every cold start

    return nh3.clean(markup[:HTML_INPUT_CHARS], tags=set(ALLOWED_TAGS),
                     attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
                     url_schemes=set(URL_SCHEMES), link_rel=LINK_REL, strip_comments=True)


def quote(text: str) -> str:
    lines = (text or "")[:QUOTED_CHARS].strip().splitlines()
    quoted = [f"> {line}".rstrip() for line in lines[:QUOTED_LINES]]
    if len(lines) > QUOTED_LINES or len(text or "") > QUOTED_CHARS:
        quoted.append("> [...]")
    return "\n".join(quoted) or "> (no text)"


def stamp(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M %Z").strip()


def text_part(news: str, earlier: Sequence[Message], footer: str) -> str:
    parts = [news.rstrip()]
    shown = list(earlier)[-EARLIER_SHOWN:]
    if shown:
        parts.append("-- Earlier in this conversation --")
        parts += [f"{m.author}, {stamp(m.at)}:\n{quote(m.text)}" for m in reversed(shown)]
    parts.append(footer.rstrip())
    return "\n\n".join(p for p in parts if p) + "\n"


def paragraphs(text: str) -> str:
    """Plain text as HTML: escaped, paragraphs and line breaks kept."""
    blocks = [b for b in (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n\n") if b.strip()]
    return "".join(f'<p style="{_BLOCK}">' + "<br>".join(html.escape(line) for line in block.strip().split("\n"))
                   + "</p>" for block in blocks)


def html_part(intro: str, news: Message | None, earlier: Sequence[Message], footer: str) -> str:
    """A fragment (no <html> wrapper: compose adds the hidden thread marker after it) in inline styles only."""
    sections = []
    if intro:
        sections.append(f'<p style="{_BLOCK};color:#555">{html.escape(intro)}</p>')
    if news is not None:
        sections.append(f"<div>{_body(news)}</div>")
    footer_html = paragraphs(footer)
    used = sum(map(len, sections)) + len(footer_html)
    shown = []
    for message in reversed(list(earlier)[-EARLIER_SHOWN:]):
        block = (f'<div style="{_BLOCK}"><p style="margin:0 0 4px 0;color:#555"><strong>'
                 f"{html.escape(message.author)}</strong>, {html.escape(stamp(message.at))}</p>"
                 f'<blockquote style="{_QUOTE}">{_body(message)}</blockquote></div>')
        if used + len(block) > HTML_BUDGET:
            break
        shown.append(block)
        used += len(block)
    if shown:
        sections.append('<hr style="border:0;border-top:1px solid #ddd">'
                        f'<p style="{_BLOCK};color:#555">Earlier in this conversation</p>' + "".join(shown))
    sections.append(f'<div style="color:#777;font-size:12px">{footer_html}</div>')
    return '<div style="font-family:Arial,Helvetica,sans-serif;font-size:14px">' + "".join(sections) + "</div>"


def _body(message: Message) -> str:
    if message.html:
        cleaned = sanitise(message.html)
        if cleaned.strip():
            return cleaned
    return paragraphs(message.text) or "<p>(no text)</p>"
