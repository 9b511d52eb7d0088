"""A browser's file upload, from the CLI: multipart/form-data POSTed to S3's presigned POST URL (standard library
only; the certificate is verified as urllib always does)."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request

from relaydesk.errors import UploadRefusedError

TIMEOUT_SECONDS = 60


def _quoted(value: str) -> str:
    return value.replace("\\", "_").replace('"', "_").replace("\r", " ").replace("\n", " ")


def form_data(fields: dict[str, str], filename: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    """The body and its Content-Type: every policy field first, the file last (S3 ignores fields after it)."""
    boundary = "----relaydesk" + secrets.token_hex(16)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{_quoted(filename)}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_form(url: str, fields: dict[str, str], filename: str, content_type: str, data: bytes) -> None:
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise UploadRefusedError("the upload URL is not https", action="Check the stack's S3 endpoint.")
    body, kind = form_data(fields, filename, content_type, data)
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": kind})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as error:
        detail = error.read(500).decode("utf-8", "replace")
        raise UploadRefusedError(f"S3 refused the upload ({error.code}): {' '.join(detail.split())[:200]}",
                                 action="Check the file's size and type against the attachment limits.") from None
    except OSError as error:
        raise UploadRefusedError(f"the upload failed: {error}", action="Try again.") from None
