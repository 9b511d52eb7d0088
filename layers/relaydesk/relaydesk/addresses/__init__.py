"""Support addresses: their model, lifecycle rules and verification."""
