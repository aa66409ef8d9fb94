"""Fixtures for the response workflows on emulated AWS (see response_harness.py)."""

from response_harness import stack, throttle  # noqa: F401  (pytest fixtures)
