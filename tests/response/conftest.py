"""Fixtures for the response workflows on emulated AWS (see response_harness.py)."""

from response_harness import stack, tag_writes, throttle  # noqa: F401  (pytest fixtures)
