"""RFC 2047 encoded words and RFC 5322 address lists, as inbound reads them: the same text as the stdlib for mail it
reads well, in one pass for any mail, and addresses taken from the header as written, never from decoded text."""

from __future__ import annotations

from email.header import decode_header, make_header

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relaydesk.inbound.addresses import parse_mailbox_values
from relaydesk.inbound.encoded_words import decode_words

WORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)


def stdlib(text: str) -> str:
    return str(make_header(decode_header(text)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(WORDS, st.sampled_from(["utf-8", "koi8-r", "shift_jis"]), st.sampled_from("bq")),
                min_size=1, max_size=6), st.sampled_from([" ", "\t", "  "]))
def test_encoded_words_decode_to_what_the_stdlib_reads(pieces, space):
    from email.charset import BASE64, QP, Charset

    encoded = []
    for text, charset, encoding in pieces:
        try:
            text.encode(charset)
        except UnicodeEncodeError:
            charset = "utf-8"
        chosen = Charset(charset)
        chosen.header_encoding = BASE64 if encoding == "b" else QP
        encoded.append(chosen.header_encode(text))
    header = space.join(encoded)
    assert decode_words(header) == stdlib(header) == "".join(text for text, _, _ in pieces)


@pytest.mark.parametrize(("header", "expected"), [
    ("Hello =?utf-8?q?W=C3=B6rld?=", "Hello Wörld"),
    ("=?utf-8?q?a?= b", "a b"),
    ("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"),  # folding between two words is not text (RFC 2047 6.2)
    ("=?utf-8?B?w7Y=?==?utf-8?B?w7Y=?=", "öö"),
    ("=?UTF-8?B?w7Y?=", "ö"),  # padding left off
    ("=?utf-8?b?w6k=?= =?utf-8?b?4oKs?=", "é€"),
    ("=?utf-8?b?4o?= =?utf-8?b?gqw=?=", "€"),  # one character split across two words
    ("=?utf-8*en?q?colour?=", "colour"),  # RFC 2231 language tag
    ("=?utf-8?q?not closed", "=?utf-8?q?not closed"),
    ("=?utf-8?x?unknown encoding?=", "=?utf-8?x?unknown encoding?="),
    ("=?x-unknown?q?Caf=E9?=", "Café"),
    ("plain text", "plain text"),
])
def test_encoded_words_in_the_wild(header, expected):
    assert decode_words(header) == expected


def test_one_broken_word_among_many_does_not_garble_the_others():
    header = " ".join(["=?utf-8?q?J=C3=B6rg?="] * 3 + ["=?utf-8?q?=C3?="] + ["=?utf-8?q?M=C3=BCller?="])
    assert decode_words(header) == "JörgJörgJörg\ufffdMüller"


@pytest.mark.parametrize(("header", "mailboxes"), [
    ("Jane Doe <jane@example.net>", [("Jane Doe", "jane@example.net")]),
    ("jane@example.net (Jane Doe)", [("Jane Doe", "jane@example.net")]),  # RFC 822 style
    ('"Doe, Jane" <Jane@Example.NET>', [("Doe, Jane", "jane@example.net")]),
    ("John Q. Public <jqp@example.net>", [("John Q. Public", "jqp@example.net")]),  # RFC 5322 4.1 obs-phrase
    ("Jane <@relay.example,@r2.example:jane@example.net>", [("Jane", "jane@example.net")]),  # 4.4 obs-route
    ("jane @ example . net", [("", "jane@example.net")]),  # 4.4 CFWS in an addr-spec
    ("<jane(work)@example.net>", [("", "jane@example.net")]),
    (", , jane@example.net,,", [("", "jane@example.net")]),  # 4.4 obs-addr-list
    ("Team: a@x.example, b@y.example;, c@z.example",
     [("", "a@x.example"), ("", "b@y.example"), ("", "c@z.example")]),
    ("undisclosed-recipients:;", []),
    ("boss@example.com <someone@else.example>", [("boss@example.com", "someone@else.example")]),
    ("Jane Doe jane@example.net", [("Jane Doe", "jane@example.net")]),  # a name left unbracketed
    ('"Jane <jane@example.net>', [("", "jane@example.net")]),  # unbalanced quote: the addr-spec is plain to see
    ("Jane <jane@example.net", [("Jane", "jane@example.net")]),
    ("=?utf-8?B?SsO2cmc=?= <j@x.example>", [("Jörg", "j@x.example")]),
    ('"=?utf-8?q?J=C3=B6rg?=" <j@x.example>', [("Jörg", "j@x.example")]),  # a word in quotes, as clients write
    ("jörg@bücher.example", [("", "jörg@bücher.example")]),
    ("x@[192.0.2.1]", [("", "x@[192.0.2.1]")]),
    ('"jane doe"@example.net', []),  # a quoted local part with a space is not an address we can answer
    ("a@b@c.example", []),
    ("<>", []),
    ("=?utf-8?q?ceo=40example.com?=", []),  # an encoded word is never an address
])
def test_address_lists_as_real_mail_writes_them(header, mailboxes):
    assert [(m.name, m.address) for m in parse_mailbox_values([header])] == mailboxes


def test_a_decoded_display_name_never_adds_an_address():
    name = "=?utf-8?q?ceo=40example.com_=3Cceo=40example.com=3E=2C_hidden=40cc.example?="
    [mailbox] = parse_mailbox_values([f"{name} <real@sender.example>"])
    assert mailbox.address == "real@sender.example"
    assert mailbox.name == "ceo@example.com <ceo@example.com>, hidden@cc.example"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.emails())
def test_whatever_a_display_name_decodes_to_the_address_is_the_bracketed_one(name, address):
    from email.header import Header

    encoded = Header(name, "utf-8").encode()
    found = parse_mailbox_values([f"{encoded} <{address}>"])
    assert [m.address for m in found] == [address.lower()]


def test_an_address_longer_than_an_smtp_path_is_not_an_address():
    local = "j" * 250
    assert parse_mailbox_values([f"<{local}@example.net>"]) == []
    assert [m.address for m in parse_mailbox_values([f"<{local[:200]}@example.net>"])] == [f"{local[:200]}@example.net"]


def test_a_header_naming_thousands_gives_the_first_two_hundred():
    header = ", ".join(f"u{i}@example.org" for i in range(5_000))
    assert [m.address for m in parse_mailbox_values([header])] == [f"u{i}@example.org" for i in range(200)]
