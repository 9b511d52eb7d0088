"""Break acme.test's smarthost and fix it the way an admin would, in the local stack, through the `relaydesk` CLI:

1. the server's password changes, then is put back, then `addresses verify`;
2. the server's password changes, then `addresses rotate` with the new one;
3. the server stops offering STARTTLS, then offers it again;
4. the server presents a wrong certificate, then the right one, then `addresses verify`.

In each: nothing is lost (every notification reaches the smarthost exactly once), what was held goes out as soon as
the fix is in, `addresses show` and the API's view show no stale error, and the server sees at most one failed login
per credential version, even though it offers CRAM-MD5, PLAIN and LOGIN.
"""

from __future__ import annotations

import json
import secrets
import smtplib
import time
from collections import Counter
from email.message import EmailMessage

import pytest

from tests.fixtures_local_stack import admin_cli, observed_stores

SUPPORT = "support@acme.test"
JANE = "jane@example.net"

# One stack for the four episodes, in order (`make test` keeps a module on one worker: --dist loadfile).
# (A function with nothing to count in an invocation, such as the hold alerts' stream, makes powertools warn.)
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore:No application metrics to publish")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from local.stack import LocalStack

    with LocalStack(tmp_path_factory.mktemp("break-and-fix")) as running:
        yield running


@pytest.fixture(scope="module")
def admin(stack):
    """`relaydesk ...` in its own process, as an admin runs it, with the environment the local stack wrote."""
    return admin_cli(stack, timeout=150)


@pytest.fixture(scope="module")
def stores(stack):
    return observed_stores()


class Site:
    """The shared story: acme's account, its connected support address and the password its server expects."""

    def __init__(self, stack, admin, stores) -> None:
        self.stack, self.admin, self.stores = stack, admin, stores
        self.server = stack.customer.submission
        self.password = "Pw-" + secrets.token_urlsafe(12)
        self.sent: list[str] = []  # subjects Jane wrote
        self.account_id = ""

    def write(self, subject: str) -> None:
        """Jane writes to support@acme.test; its server forwards it, Relaydesk answers with a notification."""
        message = EmailMessage()
        message["From"] = f"Jane Doe <{JANE}>"
        message["To"] = SUPPORT
        message["Subject"] = subject
        message["Message-ID"] = f"<{secrets.token_hex(8)}@mail.example.net>"
        message.set_content("Hello, the printer is jammed again.\n")
        mx = self.stack.customer.mx
        with smtplib.SMTP(mx.host, mx.port, local_hostname="mail.example.net", timeout=30) as client:
            client.starttls(context=self.stack.client_tls())
            client.send_message(message, from_addr=JANE, to_addrs=[SUPPORT])
        self.sent.append(subject)

    def records(self) -> dict[str, list]:
        """Each ticket's notification records, by the ticket's subject."""
        return {t.subject: t.notifications for t in self.stores.tickets.list_tickets(self.account_id)}

    def wait(self, what: str, done, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = done()
            if found:
                return found
            time.sleep(0.25)
        raise AssertionError(f"{what}: not within {timeout} s; address: {self.address().model_dump_json()}")

    def status(self, subject: str) -> str | None:
        records = self.records().get(subject) or []
        return records[-1].status.value if records else None

    def wait_status(self, subjects: list[str], status: str) -> None:
        self.wait(f"{subjects} {status}", lambda: all(self.status(s) == status for s in subjects))

    def address(self):
        return self.stores.directory.get_address(SUPPORT)

    def show(self) -> dict:
        """What the admin sees (`addresses show --json`) and what the API shows, which must agree."""
        from relaydesk.api.schemas import AddressOut

        code, out, err = self.admin("addresses", "show", SUPPORT, "--json")
        assert code == 0, err
        shown = json.loads(out)
        api = AddressOut.of(self.address()).model_dump(mode="json")
        assert (api["last_error"], api["connector"]["state"]) == (shown["last_error"], shown["connector"]["state"])
        return shown

    def held(self) -> int:
        return len(self.stores.held.list(SUPPORT))

    def delivered_once(self) -> None:
        """Every notification of every ticket reached the smarthost, and none twice (X-Relaydesk-Email-Id)."""
        ids = Counter(line.split(b":", 1)[1].strip().decode() for received in self.server.received
                      for line in received.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
                      if line.lower().startswith(b"x-relaydesk-email-id:"))
        notified = {record.notification_id for records in self.records().values() for record in records}
        assert notified and notified <= set(ids), notified - set(ids)
        assert max(ids[n] for n in notified) == 1

    def reload(self) -> None:
        """The admin reloads the server after changing it: open sessions end (the relay's warm, already
        authenticated connection with them), so the next notification meets the server as it is now."""
        self.server.drop_connections()

    def failed_logins(self, password: str, since: int) -> int:
        return len([a for a in self.server.auth_log[since:] if not a.ok
                    and a.digest == _digest(password)])


def _digest(password: str) -> str:
    from local.smarthost import password_digest

    return password_digest(password)


@pytest.fixture(scope="module")
def site(stack, admin, stores):
    site = Site(stack, admin, stores)
    code, out, err = admin("accounts", "create", "--subdomain", "acme", "--name", "Acme", "--json")
    assert code == 0, err
    account = json.loads(out)
    site.account_id = account["account_id"]
    stack.customer.forward(SUPPORT, account["system_address"])
    stack.customer.set_password(SUPPORT, site.password)
    code, _, err = admin("addresses", "connect", SUPPORT, "--account", site.account_id, "--host", site.server.host,
                         "--port", str(site.server.port), "--tls", "starttls", "--username", SUPPORT,
                         "--password-stdin", "--ca-bundle", str(stack.ca.pem_path), stdin=site.password + "\n")
    assert code == 0, err
    code, _, err = admin("addresses", "verify", SUPPORT, "--timeout", "60", "--poll", "0.2")
    assert code == 0, err
    assert site.server.cram_md5 and {a.mechanism for a in site.server.auth_log} == {"PLAIN"}  # offered, unused
    site.write("Before anything broke")
    site.wait_status(["Before anything broke"], "delivered")
    return site


def test_the_password_changes_then_is_put_back_then_verify_releases_everything(site):
    mark = len(site.server.auth_log)
    site.stack.customer.set_password(SUPPORT, "changed-by-someone-" + secrets.token_hex(4))
    site.reload()
    site.write("E1 while the password is wrong")
    site.wait("the hold", lambda: site.address().connector.state.value == "auth_failed" and site.held() == 1)
    site.write("E1 still wrong")
    site.wait("two held", lambda: site.held() == 2)
    shown = site.show()
    assert shown["connector"]["state"] == "auth_failed" and "535" in shown["last_error"]

    site.stack.customer.set_password(SUPPORT, site.password)  # put back on the server; the secret never changed
    code, _, err = site.admin("addresses", "verify", SUPPORT, "--timeout", "60", "--poll", "0.2")

    assert code == 0, err
    assert "the hold has ended" in err
    site.wait_status(["E1 while the password is wrong", "E1 still wrong"], "delivered")
    shown = site.show()
    assert shown["connector"]["state"] == "active" and shown["last_error"] is None and site.held() == 0
    # The secret's one version was refused once, while the server had another password; never again after.
    assert site.failed_logins(site.password, mark) == 1
    assert len([a for a in site.server.auth_log[mark:] if not a.ok]) == 1
    assert {a.mechanism for a in site.server.auth_log[mark:]} == {"PLAIN"}
    site.delivered_once()


def test_the_password_changes_then_rotate_with_the_new_one_releases_everything(site):
    mark = len(site.server.auth_log)
    new_password = "Pw-" + secrets.token_urlsafe(12)
    site.stack.customer.set_password(SUPPORT, new_password)
    site.reload()
    site.write("E2 before the rotation")
    site.wait("the hold", lambda: site.address().connector.state.value == "auth_failed" and site.held() == 1)

    code, out, err = site.admin("addresses", "rotate", SUPPORT, "--password-stdin", "--json",
                                stdin=new_password + "\n")

    assert code == 0, err
    assert json.loads(out)["rotation"] == "promoted"
    site.wait_status(["E2 before the rotation"], "delivered")
    site.write("E2 after the rotation")  # a new connection: the new version, never the cached old one
    site.wait_status(["E2 after the rotation"], "delivered")
    shown = site.show()
    assert shown["connector"]["state"] == "active" and shown["last_error"] is None and site.held() == 0
    assert site.failed_logins(site.password, mark) == 1  # the old version: once
    assert site.failed_logins(new_password, mark) == 0  # the new one: never
    assert len([a for a in site.server.auth_log[mark:] if not a.ok]) == 1
    assert {a.mechanism for a in site.server.auth_log[mark:]} == {"PLAIN"}
    assert new_password not in out + err
    site.password = new_password
    site.delivered_once()


def test_starttls_goes_missing_then_comes_back_and_the_next_notification_takes_the_held_ones_along(site):
    mark = len(site.server.auth_log)
    site.server.offer_starttls(False)
    site.reload()
    site.write("E3 without STARTTLS")
    site.wait("the TLS hold", lambda: site.address().connector.state.value == "tls_failed" and site.held() == 1)
    shown = site.show()
    assert "did not offer STARTTLS" in shown["last_error"]
    assert site.server.auth_log[mark:] == []  # no credentials leave without TLS

    site.server.offer_starttls(True)
    site.write("E3 with STARTTLS again")

    site.wait_status(["E3 without STARTTLS", "E3 with STARTTLS again"], "delivered")
    shown = site.show()
    assert shown["connector"]["state"] == "active" and shown["last_error"] is None and site.held() == 0
    assert not any(not a.ok for a in site.server.auth_log[mark:])
    site.delivered_once()


def test_a_wrong_certificate_then_the_right_one_then_verify_releases_everything(site):
    mark = len(site.server.auth_log)
    good_names = ["127.0.0.1", "localhost", site.stack.customer.hostname]
    site.server.use_certificate(["wrong.example.net"])
    site.reload()
    site.write("E4 with the wrong certificate")
    site.wait("the TLS hold", lambda: site.address().connector.state.value == "tls_failed" and site.held() == 1)
    shown = site.show()
    assert "did not verify" in shown["last_error"] and "certificate" in shown["last_error"]
    assert site.server.auth_log[mark:] == []

    site.server.use_certificate(good_names)
    code, _, err = site.admin("addresses", "verify", SUPPORT, "--timeout", "60", "--poll", "0.2")

    assert code == 0, err
    site.wait_status(["E4 with the wrong certificate"], "delivered")
    shown = site.show()
    assert shown["connector"]["state"] == "active" and shown["last_error"] is None and site.held() == 0
    assert not any(not a.ok for a in site.server.auth_log[mark:])
    site.delivered_once()
