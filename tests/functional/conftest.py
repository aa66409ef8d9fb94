"""Fixtures for the functional tests; the helpers live in handler_harness (a unique module name)."""

from handler_harness import aws, ingest, publish

__all__ = ["aws", "ingest", "publish"]
