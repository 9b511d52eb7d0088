"""A new user's first hour on the local stack, in a real shell: the env file puts `relaydesk` and `acme-admin` on
PATH, DKIM records "published" with acme-admin make `dns check` pass and `dkim enable` work without skipping the
DNS check, and a second `make up` on the same folder is refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from local.stack import DEFAULT_STATE_DIR, DEMO_STATE_DIR, ROOT, LocalStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("up")) as running:
        (running.state_dir / "up.pid").write_text(f"{os.getpid()}\n")  # what `make up` writes: acme-admin checks it
        yield running


def shell(stack: LocalStack, commands: str) -> subprocess.CompletedProcess:
    """Commands typed into a new bash after sourcing the env file (nothing of this process's environment)."""
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin"}
    script = f"source {stack.state_dir / 'env.sh'}\n{commands}"
    return subprocess.run(["bash", "-c", script], cwd="/", env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_the_env_file_puts_the_cli_on_path_and_dkim_goes_on_once_the_records_are_published(stack):
    done = shell(stack, """
        set -e
        relaydesk accounts create --subdomain acme --name Acme --admin-email it@acme.test > /dev/null
        relaydesk accounts list
        relaydesk dkim setup acme.test > /dev/null
        relaydesk dns check acme.test > /dev/null && exit 9 || echo "check failed before publishing: $?"
        acme-admin dns publish-dkim acme.test
        relaydesk dns check acme.test
    """)

    assert done.returncode == 0, done.stderr
    assert "support@acme.mail.relaydesk.test" in done.stdout
    assert "check failed before publishing: 1" in done.stdout
    assert "acme.test: ready" in done.stdout and "Traceback" not in done.stderr


def test_a_second_make_up_on_the_same_folder_is_refused_in_one_line(stack, tmp_path):
    env = {**os.environ, "RELAYDESK_LOCAL_STATE": str(tmp_path)}
    first = subprocess.Popen([sys.executable, "-c", "import time; from local.up import only_one_stack\n"
                              f"from pathlib import Path\nwith only_one_stack(Path({str(tmp_path)!r})): "
                              "print('up', flush=True); time.sleep(30)"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert first.stdout.readline().strip() == "up"
        second = subprocess.run([sys.executable, "-m", "local.up"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=60, check=False)
    finally:
        first.kill()
        first.wait()

    assert second.returncode == 1 and "already running" in second.stderr and "Traceback" not in second.stderr


def test_make_up_and_make_demo_never_share_a_folder():
    assert DEFAULT_STATE_DIR != DEMO_STATE_DIR and DEMO_STATE_DIR.parent == DEFAULT_STATE_DIR.parent


def banner_commands(banner: str, after: str, until: str) -> list[str]:
    """The shell commands a section of the `make up` printout shows, continuation lines joined."""
    section = banner.split(after, 1)[1].split(until, 1)[0]
    commands, current = [], ""
    for line in section.splitlines():
        text = line.strip()
        if not current and not text.startswith(("relaydesk ", "echo ", "curl ")):
            continue
        current += text.removesuffix("\\") + " "
        if not text.endswith("\\"):
            commands.append(current.split("  #", 1)[0].strip())
            current = ""
    return commands


def test_an_agent_follows_the_make_up_printout_and_works_a_sample_ticket(stack, tmp_path):
    import shutil

    from local.up import SAMPLE_REQUESTER, demo_tenants, tenant_banner

    tenants = demo_tenants(stack, stack.state_dir)
    banner = tenant_banner(stack, stack.state_dir, tenants)
    commands = banner_commands(banner, "An agent works the tickets", "(the mail lands")
    if shutil.which("curl") is None:  # a machine without curl: the CLI's lines still run
        commands = [c for c in commands if not c.startswith("curl ")]
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}  # the agent's session file in a home of its own
    script = f"set -e\nsource {stack.state_dir / 'env.sh'}\n" + "\n".join(commands)

    done = subprocess.run(["bash", "-c", script], cwd="/", env=env, capture_output=True, text=True, timeout=180,
                          check=False)

    assert done.returncode == 0, done.stderr
    assert len(commands) >= 7 and "Traceback" not in done.stderr
    ticket = tenants[0].ticket_id
    assert f"as agent@northwind.test (agent of account {tenants[0].account.account_id})" in done.stderr
    assert "Northwind Agent  (reply)" in done.stdout and "Northwind Agent  (internal note)" in done.stdout
    worked = stack.mailboxes.wait_for(SAMPLE_REQUESTER, lambda m: ticket in str(m["Subject"]), timeout=60)
    assert worked.message()["From"].addresses[0].display_name.startswith("Northwind Agent")
    if shutil.which("curl"):
        assert '"next_cursor"' in done.stdout and '"request_id":"reply-' in done.stdout
