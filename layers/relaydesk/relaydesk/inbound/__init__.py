"""Inbound: turn one forwarded mail into exactly one ticket outcome."""
