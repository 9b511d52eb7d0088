"""Tickets: their model, thread tokens and the operations inbound and relay perform on them."""
