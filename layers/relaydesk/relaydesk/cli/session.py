"""A tenant user's sign-in: Cognito's USER_PASSWORD_AUTH (over TLS to Cognito; the password is never stored), the
challenges a user may meet (a first password change, a TOTP code when MFA is on), and the tokens kept in a file
only the user can read (mode 0600), refreshed with the refresh token when the ID token is about to expire.

Where the stack's users sign in comes from `relaydesk login` (flags, or RELAYDESK_USER_POOL_ID,
RELAYDESK_CLI_CLIENT_ID and RELAYDESK_TENANT_API_URL, which the operator hands out) and is kept with the tokens.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from relaydesk.errors import ConfigurationError, SignInError
from relaydesk.store.cognito import call as _call
from relaydesk.store.cognito import cognito_client

REFRESH_BEFORE_SECONDS = 60  # a token that would expire within a minute is refreshed before it is sent
DEFAULT_CACHE = Path("~/.config/relaydesk/session.json")


@dataclass
class Session:
    username: str
    user_pool_id: str
    client_id: str
    api_url: str
    id_token: str
    refresh_token: str
    expires_at: float

    @property
    def claims(self) -> dict[str, Any]:
        """The ID token's claims, read for display only; the API checks the signature."""
        payload = self.id_token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    @property
    def account_id(self) -> str:
        return str(self.claims.get("custom:account_id", ""))

    @property
    def role(self) -> str:
        groups = self.claims.get("cognito:groups") or []
        return "admin" if "admin" in groups else "agent" if "agent" in groups else "no role"


def cache_path() -> Path:
    return Path(os.environ.get("RELAYDESK_SESSION_FILE") or DEFAULT_CACHE).expanduser()


def load() -> Session | None:
    path = cache_path()
    if not path.exists():
        return None
    try:
        return Session(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None  # unreadable: treated as signed out


def save(session: Session) -> None:
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    # Created 0600 before anything is written: no moment where another user could read the tokens.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(session), file)
    os.replace(temporary, path)


def forget() -> Session | None:
    session = load()
    cache_path().unlink(missing_ok=True)
    return session


Prompt = Callable[[str], str]  # asks the user (hidden input for secrets)


def sign_in(*, username: str, password: str, user_pool_id: str, client_id: str, api_url: str,
            ask: Prompt, client: Any | None = None, clock: Callable[[], float] = time.time) -> Session:
    """USER_PASSWORD_AUTH, then whatever challenge Cognito sets (new password, TOTP code)."""
    if not api_url.startswith("https://"):
        raise ConfigurationError(f"the tenant API must be https:// ({api_url!r} is not): a token is never sent "
                                 "unencrypted", action="Give the stack's TenantApiUrl output.")
    cognito = client or cognito_client(user_pool_id)
    reply = _call(lambda: cognito.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                                AuthParameters={"USERNAME": username, "PASSWORD": password}))
    for _ in range(3):  # a new password, then possibly an MFA code
        challenge = reply.get("ChallengeName")
        if not challenge:
            break
        answers = {"USERNAME": username}
        if challenge == "NEW_PASSWORD_REQUIRED":
            answers["NEW_PASSWORD"] = ask("your first sign-in: choose a new password: ")
        elif challenge == "SOFTWARE_TOKEN_MFA":
            answers["SOFTWARE_TOKEN_MFA_CODE"] = ask("code from your authenticator app: ")
        else:
            raise SignInError(f"Cognito asked for {challenge}, which the CLI does not answer",
                              action="Sign in once in the admin console, then here again.")
        reply = _call(lambda answers=answers, reply=reply: cognito.respond_to_auth_challenge(
            ClientId=client_id, ChallengeName=reply["ChallengeName"], Session=reply.get("Session", ""),
            ChallengeResponses=answers))
    result = reply.get("AuthenticationResult")
    if not result:
        raise SignInError("Cognito did not sign you in")
    return Session(username=username, user_pool_id=user_pool_id, client_id=client_id, api_url=api_url,
                   id_token=result["IdToken"], refresh_token=result["RefreshToken"],
                   expires_at=clock() + int(result.get("ExpiresIn", 3600)))


def fresh(session: Session, *, client: Any | None = None, clock: Callable[[], float] = time.time) -> Session:
    """The session with an ID token valid for at least a minute (refreshed and saved when needed)."""
    if session.expires_at - REFRESH_BEFORE_SECONDS > clock():
        return session
    cognito = client or cognito_client(session.user_pool_id)
    reply = _call(lambda: cognito.initiate_auth(ClientId=session.client_id, AuthFlow="REFRESH_TOKEN_AUTH",
                                                AuthParameters={"REFRESH_TOKEN": session.refresh_token}),
                  expired=True)
    result = reply["AuthenticationResult"]
    session.id_token = result["IdToken"]
    session.refresh_token = result.get("RefreshToken") or session.refresh_token  # Cognito may rotate it
    session.expires_at = clock() + int(result.get("ExpiresIn", 3600))
    save(session)
    return session


def revoke(session: Session, *, client: Any | None = None) -> None:
    cognito = client or cognito_client(session.user_pool_id)
    _call(lambda: cognito.revoke_token(Token=session.refresh_token, ClientId=session.client_id))
