"""What API Gateway's authorizers do before an HTTP API invokes its function, for the local stack and the tests:

- `JwtAuthorizer`: the JWT authorizer of template.yaml (issuer, audience) against the Cognito user pool's JWKS
  (moto serves it at `/<pool id>/.well-known/jwks.json`): an RS256 signature by a key of the set, the issuer, `aud`
  or `client_id` among the audiences, `exp` in the future and `nbf`/`iat` not in it. Its claims go to the function as
  API Gateway hands them over: every value a string, arrays as "[a b]".
- `IamAuthorizer`: AWS Signature Version 4 for `execute-api`, recomputed with the caller's secret key (the local
  stack's credentials) and compared; a request older or newer than 5 minutes is refused, as AWS does.

Nothing is skipped: a token or a signature that does not verify gets API Gateway's own answer (401, 403).
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MAX_SIGNATURE_SKEW = dt.timedelta(minutes=5)  # API Gateway refuses a signature dated further from its clock
_SIGV4 = re.compile(r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
                    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?"
                    r"Signature=(?P<sig>[0-9a-f]+)$")


class Unauthorized(Exception):
    """API Gateway's 401 (a JWT authorizer refused)."""


class Forbidden(Exception):
    """API Gateway's 403 (the IAM authorizer refused)."""


def claims_as_api_gateway_passes_them(claims: Mapping[str, Any]) -> dict[str, str]:
    def text(value: Any) -> str:
        if isinstance(value, list):
            return "[" + " ".join(str(item) for item in value) + "]"
        return str(value).lower() if isinstance(value, bool) else str(value)
    return {name: text(value) for name, value in claims.items()}


class JwtAuthorizer:
    """`issuer` and `audience` as template.yaml's JwtConfiguration resolves them; `jwks_url` where the keys are."""

    def __init__(self, *, issuer: str, audience: list[str], jwks_url: str) -> None:
        self.issuer = issuer
        self.audience = list(audience)
        self.jwks_url = jwks_url
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300)

    def authorize(self, headers: Mapping[str, str]) -> dict:
        """The `requestContext.authorizer` of the event, or Unauthorized."""
        header = headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else header.strip()
        if not token:
            raise Unauthorized("no token")
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            # exp, nbf and iat against the clock, no leeway; the audience below (aud or client_id, as AWS accepts).
            claims = jwt.decode(token, key.key, algorithms=["RS256"], issuer=self.issuer,
                                options={"require": ["exp", "iss"], "verify_aud": False})
        except (jwt.PyJWTError, ValueError) as error:
            raise Unauthorized(type(error).__name__) from None
        audience = claims.get("aud", claims.get("client_id"))
        if audience not in self.audience:
            raise Unauthorized("InvalidAudienceError")
        scopes = str(claims.get("scope", "")).split() or None
        return {"jwt": {"claims": claims_as_api_gateway_passes_them(claims), "scopes": scopes}}


@dataclass(frozen=True)
class IamCaller:
    access_key: str
    account_id: str
    user_arn: str


class IamAuthorizer:
    """`secrets`: access key id -> (secret key, the caller's identity)."""

    def __init__(self, secrets: Mapping[str, tuple[str, IamCaller]], *, region: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._secrets = dict(secrets)
        self._region = region
        self._clock = clock

    def authorize(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict:
        """The `requestContext.authorizer` of the event, or Forbidden."""
        match = _SIGV4.match(headers.get("authorization", ""))
        if not match or match["service"] != "execute-api" or match["region"] != self._region:
            raise Forbidden("missing or malformed signature")
        known = self._secrets.get(match["key"])
        stamp = headers.get("x-amz-date", "")
        try:
            signed_at = dt.datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=dt.UTC)
        except ValueError:
            raise Forbidden("no X-Amz-Date") from None
        if known is None or abs(dt.datetime.fromtimestamp(self._clock(), dt.UTC) - signed_at) > MAX_SIGNATURE_SKEW:
            raise Forbidden("unknown key or stale signature")
        secret, caller = known
        names = match["signed"].split(";")
        if "host" not in names or any(name not in headers for name in names):
            raise Forbidden("a signed header is missing")
        request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in names})
        request.context["timestamp"] = stamp
        auth = SigV4Auth(Credentials(match["key"], secret, headers.get("x-amz-security-token")), "execute-api",
                         self._region)
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        if not hmac.compare_digest(expected, match["sig"]):
            raise Forbidden("signature mismatch")
        return {"iam": {"accessKey": caller.access_key, "accountId": caller.account_id,
                        "callerId": caller.access_key, "userArn": caller.user_arn, "userId": caller.access_key}}
