"""With active tracing, a traced handler's AWS calls reach X-Ray as subsegments (powertools Tracer on the
functions), with the dependencies the layer pins (the X-Ray SDK on wrapt 1.17, chosen for cold start)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.bench_coldstart import ROOT, lambda_env

# In the child: a loopback UDP socket plays the X-Ray daemon; one invocation-like traced method calls S3 (moto).
_INVOCATION = """
import json, os, socket, sys
daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
daemon.bind(("127.0.0.1", 0))
daemon.settimeout(5)
os.environ["AWS_XRAY_DAEMON_ADDRESS"] = "127.0.0.1:%d" % daemon.getsockname()[1]
os.environ["_X_AMZN_TRACE_ID"] = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
sys.path.insert(0, {path!r})
import app
from moto import mock_aws
with mock_aws():
    import boto3

    @app.tracer.capture_method
    def invocation():
        return boto3.client("s3", region_name="us-east-1").list_buckets()

    invocation()
documents = []
try:
    while len(documents) < 2:
        header, body = daemon.recv(65535).decode().split("\\n", 1)
        documents.append(json.loads(body))
except socket.timeout:
    pass
print(json.dumps(documents))
"""


@pytest.mark.parametrize("function", ["attachments", "inbound", "relay"])
def test_traced_handler_sends_its_aws_calls_to_xray(function):
    code = _INVOCATION.format(path=str(ROOT / "functions" / function))
    completed = subprocess.run([sys.executable, "-c", code], env=lambda_env(function), cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    documents = json.loads(completed.stdout.strip().splitlines()[-1])

    aws_calls = [d for d in documents if d.get("namespace") == "aws"]
    assert [(d["name"], d["aws"]["operation"]) for d in aws_calls] == [("s3", "ListBuckets")]
    assert aws_calls[0]["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    method = next(d for d in documents if d["name"].endswith(".invocation"))
    assert aws_calls[0]["parent_id"] == method["id"]  # nested under the traced method, as in an invocation
