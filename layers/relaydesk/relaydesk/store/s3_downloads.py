"""S3 adapter of the attachments function: does an attachment exist, and a short pre-signed GET to download it."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

# The function may only s3:GetObject under attachments/ (no s3:ListBucket), so S3 answers HEAD on a missing key with
# 403 instead of 404: for a key already verified to be under attachments/, both mean "not there".
_MISSING = {"NoSuchKey", "404", "NotFound", "403", "Forbidden", "AccessDenied"}


def s3_downloads(bucket: str) -> S3Downloads:
    """SigV4 pre-signing: objects encrypted with SSE-KMS (the bucket's default) refuse any other signature."""
    import boto3
    from botocore.config import Config

    return S3Downloads(boto3.session.Session().client("s3", config=Config(signature_version="s3v4")), bucket)


class S3Downloads:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise
        return True

    def presigned_get(self, key: str, expires_in: int, content_disposition: str) -> str:
        return self._client.generate_presigned_url(
            "get_object", ExpiresIn=expires_in,
            Params={"Bucket": self._bucket, "Key": key, "ResponseContentDisposition": content_disposition})
