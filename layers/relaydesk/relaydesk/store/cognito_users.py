"""The user pool (Cognito) as the account's user directory: the account is the user's immutable `custom:account_id`,
the role its group. Cognito cannot filter on a custom attribute, so an account's users are read from the two role
groups and kept when their account attribute is the caller's; nothing of another account leaves this module."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from relaydesk.errors import ConfigurationError, ConflictError
from relaydesk.tickets.model import Agent, agent_name
from relaydesk.users import AccountUser, UserRole

ACCOUNT_ATTRIBUTE = "custom:account_id"
PAGE = 60  # ListUsersInGroup's largest page


def _attributes(user: dict) -> dict[str, str]:
    return {a["Name"]: a["Value"] for a in user.get("Attributes") or user.get("UserAttributes") or []}


class CognitoUsers:
    def __init__(self, client: Any, pool_id: str) -> None:
        self._client = client  # a function returning the cognito-idp client (made at the first call)
        self._pool = pool_id

    def list_users(self, account_id: str) -> list[AccountUser]:
        found: dict[str, AccountUser] = {}
        for role in sorted(UserRole, key=lambda r: r is UserRole.ADMIN):  # admin last: it wins for a user in both
            for user in self._group(role.value):
                attributes = _attributes(user)
                if attributes.get(ACCOUNT_ATTRIBUTE) != account_id:
                    continue
                email = attributes.get("email", user["Username"])
                found[email] = AccountUser(email=email, role=role, status=user.get("UserStatus", ""),
                                           enabled=user.get("Enabled", True), created_at=user.get("UserCreateDate"),
                                           name=agent_name(attributes.get("name")) or None)
        return list(found.values())

    def agent(self, account_id: str, email: str) -> Agent | None:
        """The user by its address (the pool's username), kept only when its account is this one, it is enabled and
        it is in a role group: one AdminGetUser and its groups."""
        client = self._client()
        try:
            user = client.admin_get_user(UserPoolId=self._pool, Username=email)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("UserNotFoundException", "InvalidParameterException"):
                return None
            raise
        attributes = _attributes(user)
        if attributes.get(ACCOUNT_ATTRIBUTE) != account_id or not user.get("Enabled", True):
            return None
        groups = client.admin_list_groups_for_user(UserPoolId=self._pool, Username=email).get("Groups", [])
        if not {g["GroupName"] for g in groups} & {role.value for role in UserRole}:
            return None
        address = attributes.get("email", email).lower()
        return Agent(agent_id=attributes.get("sub") or user["Username"],
                     name=agent_name(attributes.get("name")) or address.partition("@")[0], email=address)

    def _group(self, group: str):
        kwargs: dict[str, Any] = {"UserPoolId": self._pool, "GroupName": group, "Limit": PAGE}
        while True:
            page = self._client().list_users_in_group(**kwargs)
            yield from page.get("Users", [])
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    def invite(self, account_id: str, email: str, role: UserRole) -> AccountUser:
        client = self._client()
        try:
            created = client.admin_create_user(
                UserPoolId=self._pool, Username=email, DesiredDeliveryMediums=["EMAIL"],
                UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"},
                                {"Name": ACCOUNT_ATTRIBUTE, "Value": account_id}])["User"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "UsernameExistsException":
                return self._finish_earlier_invitation(account_id, email, role)
            if code in ("InvalidParameterException", "InvalidPasswordException"):
                raise ConfigurationError("the user pool refused this email address",
                                         action="Check the address; it must be a valid email.") from None
            raise
        client.admin_add_user_to_group(UserPoolId=self._pool, Username=email, GroupName=role.value)
        return AccountUser(email=email, role=role, status=created.get("UserStatus", "FORCE_CHANGE_PASSWORD"),
                           enabled=created.get("Enabled", True), created_at=created.get("UserCreateDate"))

    def _finish_earlier_invitation(self, account_id: str, email: str, role: UserRole) -> AccountUser:
        """An invitation of this account that stopped before the group was set (killed between the two calls)
        is completed; any other existing user is a conflict that names no account."""
        client = self._client()
        user = client.admin_get_user(UserPoolId=self._pool, Username=email)
        groups = client.admin_list_groups_for_user(UserPoolId=self._pool, Username=email).get("Groups", [])
        if _attributes(user).get(ACCOUNT_ATTRIBUTE) != account_id or groups:
            raise ConflictError("this email already signs in to Relaydesk",
                                action="Invite another address, or ask the person which Relaydesk account they "
                                       "use.")
        client.admin_add_user_to_group(UserPoolId=self._pool, Username=email, GroupName=role.value)
        return AccountUser(email=email, role=role, status=user.get("UserStatus", ""),
                           enabled=user.get("Enabled", True), created_at=user.get("UserCreateDate"))
