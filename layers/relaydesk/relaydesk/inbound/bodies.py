"""Keeps a comment within DynamoDB's 400 KB item limit: an oversized text or HTML body is cut, and kept whole as
an attachment in S3 instead."""

from __future__ import annotations

import json

from relaydesk.inbound.parse import Attachment

MAX_TEXT_JSON_BYTES = 120_000  # the comment's text as stored (JSON-escaped UTF-8); DynamoDB items: 400 KB
MAX_HTML_JSON_BYTES = 100_000
# With 100 attachment references of at most ~1.4 KB each (file name 255 bytes, content type 255, Content-ID 250, key),
# a comment stays under ~365 KB: inside the item budget (store/item_budget.py) with room for keys and names.
MAX_ATTACHMENTS = 100  # attachment references on one comment; the raw mail in S3 still holds every part


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _cut(text: str, limit: int) -> str:
    """The longest prefix whose stored size fits (binary search: escaping makes size non-linear)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _json_size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _as_attachment(name: str, content_type: str, text: str) -> Attachment:
    data = text.encode("utf-8", "replace")
    return Attachment(filename=name, content_type=f"{content_type}; charset=utf-8", payload=lambda: data)


def fit(text: str, html: str | None,
        attachments: list[Attachment]) -> tuple[str, str | None, list[Attachment], list[str]]:
    """(text, html, attachments, what was left off the comment). A cut text or a moved HTML body is attached whole."""
    extra: list[Attachment] = []
    omitted: list[str] = []
    if _json_size(text) > MAX_TEXT_JSON_BYTES:
        extra.append(_as_attachment("message.txt", "text/plain", text))
        text = _cut(text, MAX_TEXT_JSON_BYTES - 200) + "\n\n[The message is longer; the full text is attached as " \
            "message.txt.]"
        omitted.append("the text after its first 120 KB (attached whole as message.txt)")
    if html is not None and _json_size(html) > MAX_HTML_JSON_BYTES:
        extra.append(_as_attachment("message.html", "text/html", html))
        html = None
        omitted.append("the HTML body over 100 KB (attached whole as message.html)")
    kept = attachments[:MAX_ATTACHMENTS - len(extra)]
    if len(attachments) > len(kept):
        text += (f"\n\n[{len(attachments) - len(kept)} more attachments were not stored separately; the original "
                 "message is kept whole.]")
        omitted.append(f"{len(attachments) - len(kept)} attachments after the first {len(kept)}")
    return text, html, [*kept, *extra], omitted
