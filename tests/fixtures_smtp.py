"""Fixtures: local SMTP servers with STARTTLS, AUTH and a local CA (owned by LOCAL)."""
