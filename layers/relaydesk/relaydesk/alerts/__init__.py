"""Telling an account's admins about an address's hold: one email when it starts, a reminder a day, one on release."""
