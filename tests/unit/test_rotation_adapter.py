"""The Secrets Manager adapter starts a rotation with the staged token and the stack's rotation function."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from relaydesk.store.secrets import SecretsManagerStore

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:relaydesk/connector/A1/support@acme.com-AbC123"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:relaydesk-rotation"
TOKEN = "6f1c2a8e-9b4d-4e27-a3c5-0d8f7b61e942"


def test_start_rotation_calls_rotate_secret_with_the_staged_token_and_no_schedule():
    client = boto3.client("secretsmanager", region_name="us-east-1")
    store = SecretsManagerStore(client)
    with Stubber(client) as stub:
        stub.add_response("rotate_secret", {"ARN": SECRET, "VersionId": TOKEN},
                          expected_params={"SecretId": SECRET, "ClientRequestToken": TOKEN,
                                           "RotationLambdaARN": FUNCTION, "RotateImmediately": True})

        store.start_rotation(SECRET, TOKEN, FUNCTION)

        stub.assert_no_pending_responses()


def test_a_rotation_already_pending_for_the_staged_version_counts_as_started():
    client = boto3.client("secretsmanager", region_name="us-east-1")
    store = SecretsManagerStore(client)
    with Stubber(client) as stub:
        stub.add_client_error("rotate_secret", service_error_code="InvalidRequestException",
                              service_message="A previous rotation isn't complete. That rotation will be reattempted.")

        store.start_rotation(SECRET, TOKEN, FUNCTION)  # no error: Secrets Manager re-runs the staged rotation


def test_other_rotate_secret_errors_reach_the_caller():
    client = boto3.client("secretsmanager", region_name="us-east-1")
    store = SecretsManagerStore(client)
    with Stubber(client) as stub:
        stub.add_client_error("rotate_secret", service_error_code="AccessDeniedException",
                              service_message="not authorized to perform secretsmanager:RotateSecret")

        with pytest.raises(ClientError):
            store.start_rotation(SECRET, TOKEN, FUNCTION)
