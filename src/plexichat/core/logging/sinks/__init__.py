"""Sinks: where serialized events go (console, segment files) and their maintenance."""
