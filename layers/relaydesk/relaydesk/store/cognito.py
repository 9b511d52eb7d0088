"""Cognito's user-facing calls (sign in, answer a challenge, refresh, revoke) for `relaydesk login`: unsigned, so a
tenant user needs no AWS credentials, and every refusal as a SignInError that never says which credential was wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from relaydesk.errors import SignInError


def cognito_client(user_pool_id: str) -> Any:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    region = user_pool_id.split("_", 1)[0]  # a pool id is <region>_<id>
    return boto3.session.Session().client("cognito-idp", region_name=region, config=Config(signature_version=UNSIGNED))


def call(request: Callable[[], dict], *, expired: bool = False) -> dict:
    try:
        return request()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if expired:
            raise SignInError("your session has ended (the refresh token expired or was revoked)",
                              action="Sign in again: `relaydesk login`.") from None
        if code in ("NotAuthorizedException", "UserNotFoundException"):
            raise SignInError("the username or password is not right") from None  # never which of the two
        if code == "CodeMismatchException":
            raise SignInError("the code from the authenticator app is not right") from None
        if code == "InvalidPasswordException":
            raise SignInError("the new password does not meet the password policy",
                              action="Use at least 12 characters with upper and lower case letters and digits.") \
                from None
        raise SignInError(f"Cognito refused ({code or 'error'})") from None
    except BotoCoreError as error:
        raise SignInError(f"Cognito could not be reached ({type(error).__name__})",
                          action="Check the network and the user pool id.") from None
