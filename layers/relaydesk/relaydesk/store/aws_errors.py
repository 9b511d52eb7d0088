"""AWS SDK failures the admin can fix, as one sentence and what to do (the CLI prints them instead of a traceback):
no region, no credentials, an endpoint that does not answer, a stack that does not exist, access denied."""

from __future__ import annotations

import os

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from relaydesk.errors import RelaydeskError

LOCAL_STACK_HINT = "If it is the local stack, is `make up` still running? Start it again and `source` its env file."
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
           "InvalidClientTokenId", "SignatureDoesNotMatch"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}


class AwsProblem(RelaydeskError):
    code = "aws_problem"


def explain(error: BaseException) -> AwsProblem | None:
    """The problem in plain words, or None when `error` is not an AWS SDK failure we can explain."""
    if isinstance(error, NoRegionError):
        return AwsProblem("no AWS region is set", action=(
            "Set AWS_REGION (or AWS_DEFAULT_REGION), a region in your AWS profile, or `region` in samconfig.toml's "
            "section of the environment (docs/DEPLOY.md). For the local stack, `source` the env file `make up` "
            "printed."))
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return AwsProblem("no AWS credentials were found", action=(
            "Sign in (`aws configure`, `aws sso login --profile NAME` and AWS_PROFILE=NAME), or for the local stack "
            "`source` the env file `make up` printed."))
    if isinstance(error, ProfileNotFound):
        return AwsProblem(f"the AWS profile {os.environ.get('AWS_PROFILE', '')!r} does not exist",
                          action="Check AWS_PROFILE against `aws configure list-profiles`.")
    if isinstance(error, (TokenRetrievalError, UnauthorizedSSOTokenError)):
        return AwsProblem("your AWS SSO session has expired", action="Run `aws sso login` and try again.")
    if isinstance(error, EndpointConnectionError):
        url = getattr(error, "kwargs", {}).get("endpoint_url", "the AWS endpoint")
        local = " " + LOCAL_STACK_HINT if os.environ.get("AWS_ENDPOINT_URL") else ""
        return AwsProblem(f"could not connect to {url}",
                          action=f"Check your network and the region.{local}")
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code, message = details.get("Code", ""), details.get("Message", "")
        operation = getattr(error, "operation_name", "the call")
        if code in _EXPIRED:
            return AwsProblem("your AWS credentials have expired", action="Sign in again and retry.")
        if code in _DENIED:
            return AwsProblem(f"AWS refused {operation}: {code}", action=(
                "Attach the stack's admin policy (its AdminPolicyArn output) to the IAM user or role you run "
                "relaydesk as, and check AWS_PROFILE and the region (docs/DEPLOY.md)."))
        if operation == "DescribeStacks" and code == "ValidationError" and "does not exist" in message:
            return AwsProblem(message.rstrip("."), action=(
                "Check --stack / --env and the region; `sam deploy` creates the stack (docs/DEPLOY.md)."))
        return AwsProblem(f"AWS refused {operation}: {code}: {message}".rstrip(": "))
    return None
