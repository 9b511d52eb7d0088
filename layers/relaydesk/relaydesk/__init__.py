"""Relaydesk: a multi-tenant help desk's mail system with an authenticated SMTP connector."""

__version__ = "0.1.0"
