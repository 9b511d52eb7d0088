"""Readable text derived from an HTML body (for HTML-only mail): blocks become lines, scripts and styles vanish.

One forward pass, linear in the HTML's length whatever its markup: the stdlib's HTMLParser rescans an unclosed tag
from its start each time, so 24 KB of `<a ` took 4 s and a megabyte would take hours. Here each '<' is looked at
once; the next '<' and '>' are found once and reused until passed. A '<' whose tag never closes before the next '<'
is text, an unclosed comment ends the document, as in a browser.
"""

from __future__ import annotations

import html as entities
import re

_BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table",
           "hr", "ul", "ol", "section", "article", "header", "footer"}
_HIDDEN = {"script", "style", "head", "title", "template"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)")
_QUOTE_OR_END = re.compile(r"[\"'>]")
_CLOSE_HIDDEN = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in _HIDDEN}


class _Scanner:
    def __init__(self, html: str) -> None:
        self.html = html
        self.chunks: list[str] = []
        self._next_lt = -1
        self._next_gt = -1

    def next_of(self, char: str, after: int) -> int:
        """The next `char` at or after `after` (-1 for none), found once and reused while it is ahead."""
        cached = self._next_lt if char == "<" else self._next_gt
        if (cached != -1 and cached >= after) or cached == -2:
            return -1 if cached == -2 else cached
        found = self.html.find(char, after)
        stored = found if found >= 0 else -2  # -2: none left in the document
        if char == "<":
            self._next_lt = stored
        else:
            self._next_gt = stored
        return found

    def text(self, start: int, end: int) -> None:
        if end > start:
            self.chunks.append(entities.unescape(self.html[start:end]))

    def run(self) -> str:
        position, end = 0, len(self.html)
        while position < end:
            lt = self.next_of("<", position)
            if lt < 0:
                self.text(position, end)
                break
            self.text(position, lt)
            position = self._markup(lt)
        return "".join(self.chunks)

    def _markup(self, lt: int) -> int:
        """Reads the markup at `lt`; returns where the text goes on."""
        html = self.html
        after = html[lt + 1:lt + 2]
        if not (after.isascii() and after.isalpha()) and after not in ("/", "!", "?"):
            self.chunks.append("<")  # "a < b": not markup
            return lt + 1
        if html.startswith("<!--", lt):
            close = html.find("-->", lt + 4)
            return len(html) if close < 0 else close + 3
        gt = self.next_of(">", lt + 1)
        following = self.next_of("<", lt + 1)
        if gt < 0 or (0 <= following < gt):  # never closed before the next tag: a literal '<'
            self.chunks.append("<")
            return lt + 1
        tag = _TAG.match(html, lt, gt)
        if tag is None:  # <!DOCTYPE>, <?xml?>, <![CDATA[...]]> and the like carry no text
            return gt + 1
        gt = self._quoted_end(tag.end(), gt, following)
        closing, name = tag.group(1) == "/", tag.group(2).lower()
        if name in _HIDDEN and not closing:
            hidden_end = _CLOSE_HIDDEN[name].search(html, gt + 1)
            return len(html) if hidden_end is None else hidden_end.end()
        if name in _BLOCKS:
            self.chunks.append("\n")
        if name == "li" and not closing:
            self.chunks.append("- ")
        return gt + 1


    def _quoted_end(self, start: int, gt: int, following: int) -> int:
        """The tag's real end when a quoted attribute value holds a '>' (`title="a>b"`); quotes are only followed up
        to the next '<', so no scan runs past it."""
        html, limit = self.html, following if following >= 0 else len(self.html)
        position = start
        while True:
            found = _QUOTE_OR_END.search(html, position, limit)
            if found is None or found.group() == ">":
                return gt if found is None else found.start()
            close = html.find(found.group(), found.end(), limit)
            if close < 0:
                return gt
            position = close + 1


def html_to_text(html: str) -> str:
    text = _Scanner(html).run().replace("\xa0", " ")
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
