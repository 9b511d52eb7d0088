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


class CognitoUsers:
    """The operator's side of the user pool: a user of one account (custom:account_id, set once) in one role group."""

    ACCOUNT_ATTRIBUTE = "custom:account_id"
    ROLES = ("admin", "agent")

    def __init__(self, client: Any, user_pool_id: str) -> None:
        self._client = client
        self._pool = user_pool_id

    def add(self, email: str, account_id: str, role: str, *, password: str | None = None,
            name: str | None = None) -> None:
        """Without `password`, Cognito emails the user an invitation with a temporary password (changed at the
        first sign-in); with one, the password is set as the user's own (scripts, the local stack). `name` is how
        the user's replies are signed (the From's display name); without it, the address's local part."""
        attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"},
                      {"Name": self.ACCOUNT_ATTRIBUTE, "Value": account_id}]
        if name:
            attributes.append({"Name": "name", "Value": name})
        kwargs: dict[str, Any] = {"UserPoolId": self._pool, "Username": email, "UserAttributes": attributes}
        if password is not None:
            kwargs["MessageAction"] = "SUPPRESS"
        else:
            kwargs["DesiredDeliveryMediums"] = ["EMAIL"]
        try:
            self._client.admin_create_user(**kwargs)
            if password is not None:
                self._client.admin_set_user_password(UserPoolId=self._pool, Username=email, Password=password,
                                                     Permanent=True)
        except ClientError as error:
            raise _user_error(error, email) from None
        self.set_role(email, role)

    def set_role(self, email: str, role: str) -> None:
        """Exactly one role group: the other one is left."""
        try:
            for other in self.ROLES:
                if other != role:
                    self._client.admin_remove_user_from_group(UserPoolId=self._pool, Username=email, GroupName=other)
            self._client.admin_add_user_to_group(UserPoolId=self._pool, Username=email, GroupName=role)
        except ClientError as error:
            raise _user_error(error, email) from None


def _user_error(error: ClientError, email: str) -> Exception:
    from relaydesk.errors import ConfigurationError, ConflictError, NotFoundError

    code = error.response.get("Error", {}).get("Code", "")
    if code == "UsernameExistsException":
        return ConflictError(f"{email} is already a user", action="Change its role with `relaydesk users role`.")
    if code == "UserNotFoundException":
        return NotFoundError(f"{email} is not a user")
    if code == "InvalidPasswordException":
        return ConfigurationError("the password does not meet the pool's policy",
                                  action="At least 12 characters with upper and lower case letters and digits.")
    return ConfigurationError(f"Cognito refused ({code or 'error'})")
