"""boto3 clients, built lazily on first use and cached for the life of the container.

Never at import time: importing a handler must not need credentials, a region or a network, and
tests can swap the endpoint (moto) before the first call.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Fail fast inside a Lambda time budget; the SDK's standard mode retries throttling with backoff.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    """The process-wide client for ``service`` (region and endpoint from the environment)."""
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def reset() -> None:
    """Forget every cached client (tests that start a new emulated AWS)."""
    client.cache_clear()
