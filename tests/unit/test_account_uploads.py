"""Upload forms are signed by an account's own role session, and never by one that ends before the form does."""

from __future__ import annotations

from datetime import UTC, datetime

from relaydesk.store.account_secrets import AccountSessions
from relaydesk.store.account_uploads import UPLOAD_FORM_SECONDS, AccountUploads


class FakeSts:
    def __init__(self, clock) -> None:
        self.clock = clock
        self.calls: list[dict] = []

    def assume_role(self, **kwargs) -> dict:
        self.calls.append(kwargs)
        return {"Credentials": {"AccessKeyId": f"ASIA{len(self.calls)}", "SecretAccessKey": "s",
                                "SessionToken": f"token-{len(self.calls)}",
                                "Expiration": datetime.fromtimestamp(self.clock() + 900, UTC)}}


def test_a_session_is_renewed_while_it_still_outlives_the_longest_form():
    now = [1_000_000.0]
    sts = FakeSts(lambda: now[0])
    sessions = AccountSessions(sts, "arn:role", lambda service, **keys: keys["aws_session_token"],
                               clock=lambda: now[0], service="s3", renew_before=UPLOAD_FORM_SECONDS + 60)

    first = sessions.client("A1")
    now[0] += 900 - UPLOAD_FORM_SECONDS - 61  # 361 s of the session left: still enough for a 300 s form
    same = sessions.client("A1")
    now[0] += 2  # 359 s left: a form signed now could outlive its session
    renewed = sessions.client("A1")

    assert (first, same, renewed) == ("token-1", "token-1", "token-2")
    assert [call["Tags"] for call in sts.calls] == [[{"Key": "relaydesk:account-id", "Value": "A1"}]] * 2


def test_only_the_form_is_signed_by_the_account_session_everything_else_is_the_functions(memory_stores):
    signed: list[tuple[str, str]] = []

    class Sessions:
        def client(self, account_id):
            class Signer:
                def generate_presigned_post(self, **kwargs):
                    signed.append((account_id, kwargs["Key"]))
                    return {"url": "https://bucket.s3.eu-west-1.amazonaws.com/", "fields": {"key": kwargs["Key"]}}
            return Signer()

    blobs = AccountUploads(memory_stores.blobs, Sessions(), "A1", "bucket")
    blobs.put("attachments/A1/uploads/U1/a.txt", b"hi", "text/plain")

    form = blobs.presigned_post("attachments/A1/uploads/U2/b.txt", "text/plain", 10, 300)

    assert signed == [("A1", "attachments/A1/uploads/U2/b.txt")] and form["fields"]["key"].endswith("b.txt")
    assert blobs.describe("attachments/A1/uploads/U1/a.txt") == (2, "text/plain")
