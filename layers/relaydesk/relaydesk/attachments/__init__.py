"""Durable attachment links: signed, expiring tokens, the attachments function behind them, the links in mail."""
