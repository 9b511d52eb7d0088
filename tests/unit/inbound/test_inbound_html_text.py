"""HTML-only mail becomes the text a reader expects: for well-formed HTML exactly what the stdlib's HTMLParser made
of it before (the oracle below), and for any markup in one pass."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st
from relaydesk.inbound.html_text import html_to_text

_BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table",
           "hr", "ul", "ol", "section", "article", "header", "footer"}
_HIDDEN = {"script", "style", "head", "title", "template"}


class _Oracle(HTMLParser):
    """The HTMLParser-based extractor inbound used before (quadratic on unclosed tags, right on good HTML)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCKS:
            self.chunks.append("\n")
        if tag == "li":
            self.chunks.append("- ")

    def handle_endtag(self, tag):
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data):
        if not self._hidden:
            self.chunks.append(data)


def oracle(html: str) -> str:
    parser = _Oracle()
    parser.feed(html)
    parser.close()
    text = "".join(parser.chunks).replace("\xa0", " ")
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


TEXT = st.text(st.characters(blacklist_characters="<>&", blacklist_categories=("Cs",)), max_size=12)
ENTITY = st.sampled_from(["&amp;", "&lt;", "&gt;", "&nbsp;", "&#233;", "&#x20AC;", "&quot;", "&eacute;"])
ATTRIBUTE = st.sampled_from(['', ' class="x"', " href='https://example.org/?a=1&amp;b=2'", ' title="a>b"', " hidden"])


@st.composite
def element(draw, depth: int = 0) -> str:
    tag = draw(st.sampled_from(["p", "div", "b", "i", "span", "li", "ul", "td", "a", "h1", "blockquote", "style",
                                "script", "title"]))
    if tag in _HIDDEN:
        return f"<{tag}>{draw(TEXT).replace('</', '')}</{tag}>"
    children = draw(st.lists(st.one_of(TEXT, ENTITY, st.just("<br>"), st.just("<!-- note -->"),
                                       element(depth + 1) if depth < 3 else TEXT), max_size=4))
    return f"<{tag}{draw(ATTRIBUTE)}>{''.join(children)}</{tag}>"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(element(), TEXT), max_size=5))
def test_well_formed_html_reads_as_the_stdlib_parser_read_it(pieces):
    html = "<!DOCTYPE html><html><body>" + "".join(pieces) + "</body></html>"
    assert html_to_text(html) == oracle(html)


def test_unclosed_markup_is_text_or_nothing_as_in_a_browser():
    assert html_to_text("a < b and c > d") == "a < b and c > d"
    assert html_to_text("<p>kept</p><!-- never closed <p>gone</p>") == "kept"
    assert html_to_text("<p>before<script>never closed") == "before"
    assert html_to_text("<p>one <a title='x") == "one <a title='x"
