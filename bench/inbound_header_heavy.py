"""The header-heavy mail of the inbound benchmark: up to 40 MB (SES's limit) of header fields full of RFC 2047
encoded words (a display name, a subject, thousands of named recipients, a long References chain, and filler
fields up to the parser's field bound), with a two-line body. Decoding used to be quadratic in such headers (a 6 MB
mail took about 3 minutes); this measures that it is linear now: the same mail at a quarter of the size, in the
same run, is the baseline."""

from __future__ import annotations

import gc
import time

FIELDS = 900  # filler fields: under the parser's bound of 1,000 per part, so the whole mail is read
WORD = "=?utf-8?q?J=C3=B6rg_M=C3=BCller?="  # 32 characters, decodes to "Jörg Müller"


def _folded(words: list[str]) -> str:
    return "\r\n ".join(" ".join(words[i:i + 2]) for i in range(0, len(words), 2))


def header_heavy_message(size: int) -> bytes:
    """About `size` bytes: an eighth each for the From name, the subject, the recipients and References, the rest
    in FIELDS filler fields."""
    eighth = size // 8
    name = _folded([WORD] * (eighth // 36))
    subject = _folded([WORD] * (eighth // 36))
    recipients = ",\r\n ".join(f"{WORD} <user{i}@example.org>" for i in range(eighth // 60))
    references = "\r\n ".join(f"<ref{i}.{'x' * 20}@mail.example.org>" for i in range(eighth // 48))
    filler_words = max((size - 4 * eighth) // FIELDS // 36, 1)
    filler = "".join(f"X-Filler-{i}: {_folded([WORD] * filler_words)}\r\n" for i in range(FIELDS))
    head = (f"X-MS-Exchange-Organization-AutoForwarded: true\r\nX-MS-Exchange-ForwardingLoop: support@acme.test\r\n"
            f"From: {name} <jorg@example.net>\r\nTo: support@acme.test\r\nCc: {recipients}\r\n"
            f"Subject: {subject}\r\nMessage-ID: <header-heavy@example.net>\r\nReferences: {references}\r\n{filler}")
    return (head + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "The printer on floor 3 is jammed.\r\n").encode()


def seconds_to_process(world_factory, process, size: int) -> tuple[float, str, int]:
    """(seconds, outcome, bytes) for one header-heavy mail through `process_inbound`, the mail stored first."""
    world = world_factory()
    raw = header_heavy_message(size)
    world.stores.blobs.put("inbound/headerheavy", raw)
    gc.collect()
    started = time.perf_counter()
    result = process(world, "headerheavy", {})
    return time.perf_counter() - started, result.outcome.value, len(raw)


def stdlib_decode_seconds(size: int) -> tuple[float, float]:
    """(stdlib decode_header, ours) in seconds on one folded header of `size` bytes of encoded words: what
    decoding cost before, against what it costs now."""
    from email.header import decode_header

    from relaydesk.inbound.parse import decode_header_value

    value = _folded([WORD] * (size // 36))
    started = time.perf_counter()
    decode_header(value.replace("\r\n", ""))
    stdlib = time.perf_counter() - started
    started = time.perf_counter()
    decode_header_value(value)
    return stdlib, time.perf_counter() - started
