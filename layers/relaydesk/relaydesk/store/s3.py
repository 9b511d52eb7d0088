"""S3 adapter for raw mail and attachments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from relaydesk.errors import NotFoundError


class S3Blobs:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def get(self, key: str) -> bytes:
        return self._body(key).read()

    def chunks(self, key: str, size: int = 1 << 16) -> Iterator[bytes]:
        """GetObject now (NotFoundError here), its body read `size` bytes at a time as the caller iterates."""
        return _streamed(self._body(key), size)

    def _body(self, key: str) -> Any:
        try:
            return self._client.get_object(Bucket=self._bucket, Key=key)["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise NotFoundError(f"no object {key!r} in the raw mail bucket") from error
            raise

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return False
            raise
        return True

    def url_for(self, key: str, expires_in: int = 7 * 24 * 3600) -> str:
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in)

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict:
        """S3 itself enforces the policy: exactly this key, this Content-Type, 1..max_bytes bytes."""
        return self._client.generate_presigned_post(
            Bucket=self._bucket, Key=key, Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in)

    def describe(self, key: str) -> tuple[int, str]:
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                raise NotFoundError(f"no object {key!r}") from None
            raise
        return int(head["ContentLength"]), str(head.get("ContentType") or "application/octet-stream")


def _streamed(body: Any, size: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(size)
    finally:
        body.close()  # also when the reader stops early: the connection is released, not left half-read
