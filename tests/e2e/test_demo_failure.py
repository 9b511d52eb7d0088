"""When a step of the demo fails, the demo says which one and why, exits non-zero, and still shows no password."""

from __future__ import annotations

import secrets

import pytest

from local import demo

pytestmark = pytest.mark.e2e


def test_demo_exits_nonzero_naming_the_step_when_the_smarthost_refuses_the_password(tmp_path, capsys, monkeypatch):
    password = "Pw-" + secrets.token_urlsafe(18)
    monkeypatch.setenv(demo.PASSWORD_ENV, password)

    def admin_sets_another_password(self):  # the mailbox password differs from what the admin gives Relaydesk
        self.stack.customer.set_password(demo.SUPPORT, "something-else-" + secrets.token_hex(4))
        self.stack.customer.forward(demo.SUPPORT, self.system_address)

    monkeypatch.setattr(demo.Demo, "configure_customer_server", admin_sets_another_password)

    code = demo.main(["--state-dir", str(tmp_path)])

    out = capsys.readouterr()
    assert code == 1
    assert "DEMO FAILED at [3] Connect support@acme.test through acme.test's smarthost" in out.out
    assert "`relaydesk addresses connect` exited 7: error: live check failed at auth" in out.out
    assert "Ticket created" not in out.out  # it stopped at the failing step
    assert password not in out.out + out.err
    assert all(password.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
