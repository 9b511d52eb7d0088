"""The fault-injection suite (`make chaos`): the real handlers in worker processes, faults at every boundary."""
