"""Address lists (RFC 5322 3.4 with the obsolete syntax of 4.4 that real mail still carries), parsed from the header
as written, *before* any encoded word is decoded: a decoded display name is only ever a name, so it can never
become an address or add one to the list.

One linear pass over the value: quoted strings, nested comments and angle brackets are skipped as units; a comma or
semicolon outside them ends a mailbox, a colon ends a group's name. In each mailbox the first angle-bracket address
wins and everything before it is the display name, even text that looks like an address
(`boss@example.com <someone@else.example>` is someone@else.example). Without brackets the addr-spec may be spread
over words (`jane @ example . net`, 4.4) or follow a name it should have been bracketed from; an old-style comment
(`jane@example.net (Jane Doe)`) names it. A source route (`<@relay.example:jane@example.net>`, 4.4) is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from relaydesk.inbound.encoded_words import decode_words
from relaydesk.inbound.limits import MAX_DISPLAY_NAME_CHARS, MAX_HEADER_ADDRESSES, address_fits, one_line

_SPECIALS_IN_ADDRESS = set(' \t\r\n<>()[],;:\\"')
FALLBACK_SCAN_CHARS = 64 * 1024  # a value nothing parses in: its start is searched for a bare addr-spec
_QUOTED_STOP = re.compile(r'["\\]')
_COMMENT_TOKENS = re.compile(r"\\.|\(+|\)+", re.DOTALL)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_RUN = re.compile(r'[^"(<,;:]+')  # words and the spaces between them, up to the next character that means something
MAX_TOKENS = 100_000  # of one header value: 200 mailboxes need a few thousand; past it the value is junk


@dataclass(frozen=True)
class Mailbox:
    name: str  # the display name, decoded (or "")
    address: str  # the addr-spec, lower-cased


@dataclass
class _Element:
    """One mailbox being read: runs of words and quoted strings, in order, as (as written, as a name reads it)."""

    pieces: list[tuple[str, str]] = field(default_factory=list)
    name_pieces: list[str] = field(default_factory=list)  # the pieces before the angle bracket, as names read
    comments: list[str] = field(default_factory=list)
    angle: str | None = None  # the first angle-bracket address

    def add(self, written: str, as_name: str) -> None:
        if self.angle is None:
            self.name_pieces.append(as_name)
        self.pieces.append((written, as_name))

    def words(self) -> list[tuple[str, str]]:
        """(word as written, word as a name reads it): runs of words split, a quoted string one word."""
        found: list[tuple[str, str]] = []
        for written, as_name in self.pieces:
            if written.startswith('"'):
                found.append((written, as_name))
            else:
                found.extend((word, word) for word in written.split())
        return found


def _skip_quoted(value: str, start: int) -> tuple[str, int]:
    """The content of the quoted string opening at `start` (backslash pairs unescaped), and the index after it; an
    unterminated quote runs to the end."""
    out: list[str] = []
    index = start + 1
    while True:
        found = _QUOTED_STOP.search(value, index)
        if found is None:
            out.append(value[index:])
            return "".join(out), len(value)
        out.append(value[index:found.start()])
        if found.group() == '"':
            return "".join(out), found.end()
        out.append(value[found.end():found.end() + 1])  # the escaped character
        index = found.end() + 1


def _skip_comment(value: str, start: int) -> tuple[str, int]:
    """A comment's text (nested comments included, escapes undone) and the index after it; an unterminated one runs
    to the end. A run of parentheses is one step, so `((((...` costs what one '(' does."""
    depth = 0
    for token in _COMMENT_TOKENS.finditer(value, start):
        run = token.group()
        if run[0] == "(":
            depth += len(run)
        elif run[0] == ")":
            if depth <= len(run):
                end = token.start() + depth
                return _UNESCAPE.sub(r"\1", value[start + 1:end - 1]), end
            depth -= len(run)
    return _UNESCAPE.sub(r"\1", value[start + 1:]), len(value)


def _angle(value: str, start: int) -> tuple[str, int]:
    """The text inside angle brackets, and the index after them. Without a closing bracket it runs to the next
    comma (an address holds none outside a source route) or the end."""
    close = value.find(">", start + 1)
    if close < 0:
        comma = value.find(",", start + 1)
        close = comma if comma >= 0 else len(value)
        return value[start + 1:close], close
    return value[start + 1:close], close + 1


def _addr_spec(text: str) -> str | None:
    """A cleaned, lower-cased addr-spec, or None when `text` is not one (source route dropped, CFWS removed)."""
    if "(" in text:
        text = _without_comments(text)
    if '"' not in text:  # CFWS around the dots and the '@' (RFC 5322 4.4); inside a quoted local part it counts
        text = "".join(text.split())
    if text.startswith("@") and ":" in text:  # obs-route: "@relay1,@relay2:" before the address
        text = text.rpartition(":")[2]
    if text.startswith('"'):  # a quoted local part: unquoted when that leaves a plain one
        local, index = _skip_quoted(text, 0)
        if text[index:index + 1] == "@" and local and not any(c in _SPECIALS_IN_ADDRESS for c in local):
            text = local + text[index:]
    local, at, domain = text.rpartition("@")
    domain = domain.rstrip(".")
    if not (at and local and domain) or ("@" in local.strip('"') and not local.startswith('"')):
        return None
    address = f"{local}@{domain}".lower()
    if any(c in _SPECIALS_IN_ADDRESS for c in domain) and not (domain.startswith("[") and domain.endswith("]")):
        return None
    if any(c in " \t\r\n<>()," or c < " " for c in address) or not address_fits(address):
        return None
    return address


def _without_comments(text: str) -> str:
    out: list[str] = []
    index = 0
    while (start := text.find("(", index)) >= 0:
        out.append(text[index:start])
        index = _skip_comment(text, start)[1]
    out.append(text[index:])
    return "".join(out)


def _display_name(words: list[str]) -> str:
    return one_line(decode_words(" ".join(w for w in words if w)), MAX_DISPLAY_NAME_CHARS)


def _mailbox(element: _Element) -> Mailbox | None:
    if element.angle is not None:
        address = _addr_spec(element.angle)
        if address is None:
            return None
        name = element.name_pieces or element.comments[:1]
        return Mailbox(_display_name(name), address)
    words = element.words()
    if not words:
        return None
    # One word holding a whole addr-spec (a name written before it without brackets), else the words run together.
    for index, (word, _) in enumerate(words):
        address = _addr_spec(word) if "@" in word.strip("@") else None
        if address is not None:
            others = [name for _, name in words[:index] + words[index + 1:]]
            return Mailbox(_display_name(element.comments[:1] or others), address)
    address = _addr_spec("".join(word for word, _ in words))
    return Mailbox(_display_name(element.comments[:1]), address) if address else None


def parse_mailboxes(value: str, limit: int = MAX_HEADER_ADDRESSES) -> list[Mailbox]:
    """The mailboxes of one address-list header value as written (folding removed or not), at most `limit`."""
    found: list[Mailbox] = []
    element = _Element()
    index, end = 0, len(value)

    def close() -> None:
        nonlocal element
        mailbox = _mailbox(element)
        if mailbox is not None:
            found.append(mailbox)
        element = _Element()

    tokens = 0
    while index < end and len(found) < limit and tokens < MAX_TOKENS:
        tokens += 1
        char = value[index]
        if char == '"':
            text, index = _skip_quoted(value, index)
            element.add('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"', text)
        elif char == "(":
            text, index = _skip_comment(value, index)
            element.comments.append(text)
        elif char == "<":
            text, index = _angle(value, index)
            if element.angle is None:
                element.angle = text
        elif char in ",;":
            close()
            index += 1
        elif char == ":":
            if element.angle is None:  # a group's display name ends: the group's mailboxes follow
                element = _Element()
            index += 1
        else:
            run = _RUN.match(value, index)
            element.add(run.group(), run.group())
            index = run.end()
    if len(found) < limit and tokens < MAX_TOKENS:
        close()
    return found


def parse_mailbox_values(values: list[str], limit: int = MAX_HEADER_ADDRESSES) -> list[Mailbox]:
    """The mailboxes of several values of one header (in order), at most `limit` in all; a value in which nothing
    parses is searched for a bare addr-spec (an unbalanced quote or bracket defeats the grammar, not a reader)."""
    found: list[Mailbox] = []
    for value in values:
        parsed = parse_mailboxes(value, limit - len(found))
        if not parsed:
            bare = bare_address(value)
            parsed = [Mailbox("", bare)] if bare else []
        found.extend(parsed)
        if len(found) >= limit:
            break
    return found[:limit]


def bare_address(value: str) -> str | None:
    """The first addr-spec-looking run of characters around an '@' in the value's start; linear: each '@' is looked
    at once, and neither side is scanned past another '@' or further than an address can reach."""
    text = value[:FALLBACK_SCAN_CHARS]
    position = text.find("@")
    while position >= 0:
        left = position
        while left > 0 and position - left < 254 and text[left - 1] not in _SPECIALS_IN_ADDRESS \
                and text[left - 1] != "@":
            left -= 1
        right = position + 1
        while right < len(text) and right - position < 254 and text[right] not in _SPECIALS_IN_ADDRESS \
                and text[right] != "@":
            right += 1
        candidate = text[left:right].rstrip(".")
        glued = (left > 0 and text[left - 1] == "@") or text[right:right + 1] == "@"  # a@b@c is nobody's address
        address = _addr_spec(candidate) if "." in candidate.partition("@")[2] and not glued else None
        if address:
            return address
        position = text.find("@", position + 1)
    return None
