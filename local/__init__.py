"""The whole Relaydesk system on one machine: local CA, SMTP servers, moto, pollers (never shipped in the layer)."""
