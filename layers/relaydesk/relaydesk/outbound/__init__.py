"""Outbound: compose, sign and deliver notifications through a connector or the default outbound."""
