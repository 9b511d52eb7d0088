"""Debian's Postfix as the latency benchmark runs it: instances under a folder of the bench's own, loopback only.

- `PostfixSmarthost`: a submission server as a customer runs one: STARTTLS required before AUTH (`encrypt`),
  SASL through Cyrus's sasldb (PLAIN, LOGIN), relaying only for authenticated clients, every message delivered to
  one Maildir the bench reads. Its end of DATA asks a policy service (`bench/network_process.py`), which can hold
  the answer, as Exchange Online holds it while it scans.
- `PostfixRelayClient`: what an admin would otherwise run: `relayhost` with SASL and a verified certificate
  (`smtp_tls_security_level = secure`), at most `connections` connections to it. Mail is handed to it before the
  clock starts and held; the clock runs from the release to the last `status=sent` in its log.

Each instance has its own config_directory, queue, data directory and log file (`maillog_file`); `postfix -c`
starts and stops it. Its daemons run as Debian's `postfix` user, so the bench needs root, as `postfix start` does.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
SASLPASSWD = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
NOBODY = 65534  # the Maildir's owner: virtual(8) refuses to deliver as root

# Every service this bench's instances use, none chrooted (Debian's default master.cf chroots most of them into
# /var/spool/postfix, which a queue elsewhere does not have).
SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
tlsproxy  unix  -       -       n       -       0       tlsproxy
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def unavailable() -> str:
    """Why Postfix cannot run here ("" when it can)."""
    if not Path(POSTFIX).exists() or not Path(SASLPASSWD).exists():
        return ("Debian's postfix and sasl2-bin are not installed (`make bench` installs them with apt-get when it "
                "runs as root)")
    if os.geteuid() != 0:
        return "Postfix instances need root (their daemons drop to the postfix user), and the bench is not root"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "the postfix user does not exist (the postfix package was not set up)"
    return ""


@contextlib.contextmanager
def running(*instances):
    """Start the instances at once (a first `postfix start` sets up its queue: seconds) and stop them at once."""
    with ThreadPoolExecutor(max_workers=len(instances)) as pool:
        started = list(pool.map(lambda instance: _attempt(instance.start), instances))
    try:
        failure = next((error for error in started if error is not None), None)
        if failure is not None:
            raise failure
        yield instances
    finally:
        with ThreadPoolExecutor(max_workers=len(instances)) as pool:
            list(pool.map(lambda instance: instance.stop(), instances))


def _attempt(start) -> Exception | None:
    try:
        start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        return error
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostfixInstance:
    """One Postfix under `root`: etc/ (main.cf, master.cf), queue/, data/, maillog."""

    def __init__(self, root: Path, hostname: str, listen_port: int, settings: dict[str, str]) -> None:
        self.root = root
        self.etc = root / "etc"
        self.maillog = root / "maillog"
        self.listen_port = listen_port
        for folder in (self.etc, root / "queue", root / "data"):
            folder.mkdir(parents=True, exist_ok=True)
        os.chown(root / "data", pwd.getpwnam("postfix").pw_uid, -1)
        base = {
            "compatibility_level": "3.6", "queue_directory": str(root / "queue"),
            "data_directory": str(root / "data"), "meta_directory": "/etc/postfix", "mail_owner": "postfix",
            "setgid_group": "postdrop", "myhostname": hostname, "mydestination": "", "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4", "maillog_file_prefixes": str(root), "maillog_file": str(self.maillog),
            "alias_maps": "", "alias_database": "", "local_recipient_maps": "", "biff": "no",
        }
        main = "".join(f"{name} = {value}\n" for name, value in {**base, **settings}.items())
        (self.etc / "main.cf").write_text(main)
        (self.etc / "master.cf").write_text(f"127.0.0.1:{listen_port} inet n - n - - smtpd\n" + SERVICES)

    def run(self, program: str, *arguments: str) -> subprocess.CompletedProcess:
        """`program -c <this instance's etc> arguments` (postfix, postsuper, postqueue)."""
        return subprocess.run([program, "-c", str(self.etc), *arguments], capture_output=True, text=True,
                              timeout=60, check=False)

    def start(self) -> None:
        started = self.run(POSTFIX, "start")
        if started.returncode != 0:
            raise RuntimeError(f"postfix did not start under {self.root}: {started.stderr.strip()}"
                               f"{self.log_tail()}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.listen_port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"postfix under {self.root} does not listen on {self.listen_port}{self.log_tail()}")

    def stop(self) -> None:
        self.run(POSTFIX, "stop")

    def log_tail(self, lines: int = 5) -> str:
        if not self.maillog.exists():
            return ""
        return "; log: " + " | ".join(self.maillog.read_text(errors="replace").splitlines()[-lines:])


class PostfixSmarthost:
    """STARTTLS + SASL submission into a Maildir; `collect(count)` takes what arrived."""

    label = "Postfix smarthost"

    def __init__(self, root: Path, *, cert_path: Path, key_path: Path, ca_pem: str, username: str,
                 password: str, policy_port: int) -> None:
        self.username, self.password, self.ca_pem = username, password, ca_pem
        self.port = free_port()
        self.mail = root / "mail"
        self.mail.mkdir(parents=True, exist_ok=True)
        os.chown(self.mail, NOBODY, NOBODY)
        self.instance = PostfixInstance(root, "smarthost.bench.test", self.port, {
            "smtpd_tls_security_level": "encrypt", "smtpd_tls_cert_file": str(cert_path),
            "smtpd_tls_key_file": str(key_path), "smtpd_tls_auth_only": "yes",
            "smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "cyrus", "smtpd_sasl_path": "smtpd",
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
            "smtpd_end_of_data_restrictions": f"check_policy_service inet:127.0.0.1:{policy_port}",
            "virtual_mailbox_domains": "example.net", "virtual_mailbox_maps": "static:sink/",
            "virtual_mailbox_base": str(self.mail), "virtual_uid_maps": f"static:{NOBODY}",
            "virtual_gid_maps": f"static:{NOBODY}",
        })
        self._users(root, username, password)

    def _users(self, root: Path, username: str, password: str) -> None:
        """Cyrus sasldb with the one user; Debian's smtpd reads `<config_directory>/sasl/smtpd.conf`."""
        sasldb = root / "sasldb2"
        user, _, realm = username.partition("@")
        made = subprocess.run([SASLPASSWD, "-p", "-c", "-f", str(sasldb), "-u", realm, user], input=password,
                              capture_output=True, text=True, timeout=30, check=False)
        if made.returncode != 0:
            raise RuntimeError(f"saslpasswd2 failed: {made.stderr.strip()}")
        os.chown(sasldb, pwd.getpwnam("postfix").pw_uid, -1)
        (self.instance.etc / "sasl").mkdir(exist_ok=True)
        (self.instance.etc / "sasl" / "smtpd.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {sasldb}\n")

    def start(self) -> PostfixSmarthost:
        self.instance.start()
        return self

    def stop(self) -> None:
        self.instance.stop()

    def collect(self, count: int, timeout: float = 60) -> list[bytes]:
        """The next `count` messages delivered (CRLF, as they came over SMTP), removed from the Maildir."""
        new = self.mail / "sink" / "new"
        deadline = time.monotonic() + timeout
        while True:
            files = sorted(new.iterdir()) if new.exists() else []
            if len(files) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        messages = []
        for path in files:
            messages.append(path.read_bytes().replace(b"\n", b"\r\n"))
            path.unlink()
        return messages


class PostfixRelayClient:
    """A Postfix that relays everything to `relay_port` (through the delay proxy) with SASL and a verified
    certificate, over at most `connections` connections; mail comes in on `inject_port`, held until `release`."""

    label = "Postfix relay client"

    def __init__(self, root: Path, *, relay_port: int, ca_path: Path, username: str, password: str,
                 connections: int) -> None:
        self.inject_port = free_port()
        nexthop = f"[localhost]:{relay_port}"  # the certificate names localhost; its own resolver, not DNS
        passwords = root / "etc" / "sasl_passwd"
        passwords.parent.mkdir(parents=True, exist_ok=True)
        passwords.write_text(f"{nexthop} {username}:{password}\n")
        passwords.chmod(0o600)
        self.instance = PostfixInstance(root, "relayclient.bench.test", self.inject_port, {
            "mynetworks": "127.0.0.0/8", "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_recipient_restrictions": "check_client_access static:HOLD",  # queued, not sent until released
            "relayhost": nexthop, "smtp_host_lookup": "native",
            "smtp_sasl_auth_enable": "yes", "smtp_sasl_password_maps": f"texthash:{passwords}",
            "smtp_sasl_security_options": "noanonymous", "smtp_sasl_tls_security_options": "noanonymous",
            "smtp_sasl_mechanism_filter": "plain, login",
            "smtp_tls_security_level": "secure", "smtp_tls_secure_cert_match": "nexthop",
            "smtp_tls_CAfile": str(ca_path), "smtp_tls_loglevel": "1",
            "smtp_tls_session_cache_database": "btree:${data_directory}/smtp_scache",
            "smtp_destination_concurrency_limit": str(connections),
            "initial_destination_concurrency": str(connections),
            # Several deliveries per TLS connection (through tlsproxy; without it Postfix makes a new TLS
            # connection per message), kept for the next run as the relay keeps its pool for a minute.
            "smtp_tls_connection_reuse": "yes",
            "smtp_connection_cache_destinations": nexthop, "smtp_connection_cache_time_limit": "60s",
            "queue_run_delay": "1s", "minimal_backoff_time": "1s", "maximal_backoff_time": "10s",
        })

    def start(self) -> PostfixRelayClient:
        self.instance.start()
        return self

    def stop(self) -> None:
        self.instance.stop()

    def hand_over(self, messages: list[tuple[str, tuple[str, ...], bytes]]) -> None:
        """Queue `messages` (held) over SMTP on loopback, before the clock starts."""
        import smtplib

        with smtplib.SMTP("127.0.0.1", self.inject_port, timeout=60) as smtp:
            for envelope_from, recipients, data in messages:
                smtp.sendmail(envelope_from, list(recipients), data)

    def release_and_wait(self, count: int, timeout: float = 120) -> float:
        """Release the held mail and wait for `count` deliveries in the log; seconds from release to the last."""
        offset = self.instance.maillog.stat().st_size
        started = time.perf_counter()
        for command in (("postsuper", "-H", "ALL"), ("postqueue", "-f")):
            done = self.instance.run(*command)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
        sent = 0
        deadline = started + timeout
        with self.instance.maillog.open("rb") as log:
            log.seek(offset)
            pending = b""
            while sent < count:
                chunk = log.read()
                if not chunk:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"the Postfix relay client sent {sent} of {count}{self.instance.log_tail()}")
                    time.sleep(0.002)
                    continue
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if b" status=sent " in line:
                        sent += 1
                    elif b" status=" in line:
                        raise RuntimeError(f"the Postfix relay client did not send: {line.decode(errors='replace')}")
        return time.perf_counter() - started
