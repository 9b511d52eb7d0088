"""DKIM for customer domains: keys, the per-domain keyring and its rotation, DNS records and their check."""
