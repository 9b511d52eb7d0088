"""Benchmarks run by `make bench` (`python -m bench`): each `bench_*.py` owns one section of docs/BENCHMARKS.md."""

import os

# Every benchmark's smarthost and token endpoint listen on loopback, which the relay's destination guard refuses
# unless the operator allows it (relaydesk/destinations.py, docs/DEPLOY.md): here the bench is that operator.
os.environ.setdefault("RELAYDESK_ALLOWED_DESTINATIONS", "127.0.0.0/8,::1/128")
os.environ.setdefault("RELAYDESK_ALLOWED_TOKEN_HOSTS", "127.0.0.1,localhost")
