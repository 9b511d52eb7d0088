"""Secrets Manager adapter, by staging label. It never caches: the relay's credential cache decides freshness."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from relaydesk.errors import ConflictError, NotFoundError
from relaydesk.store.ports import SecretVersion


class SecretsManagerStore:
    def __init__(self, client: Any, kms_key_id: str | None = None) -> None:
        self._client = client
        self._kms_key_id = kms_key_id

    def get(self, secret_id: str, version_stage: str = "AWSCURRENT") -> SecretVersion:
        try:
            reply = self._client.get_secret_value(SecretId=secret_id, VersionStage=version_stage)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"ResourceNotFoundException", "InvalidRequestException"}:
                # The message names only the stage: the secret's id is an ARN, not a secret, but stays out anyway.
                raise NotFoundError(f"the connector secret has no {version_stage} version") from None
            raise
        return SecretVersion(reply["VersionId"], reply["SecretString"], tuple(reply.get("VersionStages", ())))

    def create(self, name: str, value: str, tags: dict[str, str]) -> str:
        kwargs: dict[str, Any] = {"Name": name, "SecretString": value,
                                  "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        if self._kms_key_id:
            kwargs["KmsKeyId"] = self._kms_key_id
        try:
            return self._client.create_secret(**kwargs)["ARN"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            # A secret scheduled for deletion keeps its name until the recovery window ends.
            scheduled = code == "InvalidRequestException" and "deletion" in str(error).lower()
            if code == "ResourceExistsException" or scheduled:
                raise ConflictError("a connector secret for this address exists already") from None
            raise

    def put_version(self, secret_id: str, value: str, stages: list[str], token: str | None = None) -> str:
        kwargs: dict[str, Any] = {"SecretId": secret_id, "SecretString": value, "VersionStages": stages}
        if token:
            kwargs["ClientRequestToken"] = token
        return self._client.put_secret_value(**kwargs)["VersionId"]

    def move_stage(self, secret_id: str, stage: str, to_version: str | None, from_version: str | None) -> None:
        kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage}
        if to_version:
            kwargs["MoveToVersionId"] = to_version
        if from_version:
            kwargs["RemoveFromVersionId"] = from_version
        self._client.update_secret_version_stage(**kwargs)

    def describe_stages(self, secret_id: str) -> dict[str, list[str]]:
        try:
            return self._client.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise NotFoundError("no such connector secret") from None
            raise

    def schedule_deletion(self, secret_id: str, recovery_days: int = 7) -> None:
        self._client.delete_secret(SecretId=secret_id, RecoveryWindowInDays=recovery_days)

    def restore(self, secret_id: str) -> None:
        self._client.restore_secret(SecretId=secret_id)

    def start_rotation(self, secret_id: str, token: str, rotation_function_arn: str) -> None:
        """RotateSecret with the token of the staged AWSPENDING version: Secrets Manager then runs the four steps.

        No rotation schedule is set: a scheduled rotation has no staged credentials and would only be refused."""
        try:
            self._client.rotate_secret(SecretId=secret_id, ClientRequestToken=token,
                                       RotationLambdaARN=rotation_function_arn, RotateImmediately=True)
        except ClientError as error:
            # With AWSPENDING on a version other than AWSCURRENT, Secrets Manager answers "A previous rotation
            # isn't complete. That rotation will be reattempted." and re-runs the rotation of that pending
            # version: the one just staged, which is the rotation asked for.
            reply = error.response.get("Error", {})
            message = reply.get("Message", "").lower()
            if reply.get("Code") == "InvalidRequestException" and "previous rotation" in message:
                return
            raise
