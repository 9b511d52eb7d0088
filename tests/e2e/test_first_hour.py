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
