"""boto3 clients, built lazily on first use and cached for the life of the container.

Never at import time: importing a handler must not need credentials, a region or a network, and
tests can swap the endpoint (moto) before the first call. One session for all clients, so the
service models are loaded once; the lock makes creation safe when invocations share a process
(the offline stack runs several functions in one).
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

# Fail fast inside a Lambda time budget; the SDK's standard mode retries throttling with backoff.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10)
_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    """The process-wide client for ``service`` (region and endpoint from the environment)."""
    found = _clients.get(service)
    if found is not None:
        return found
    global _session
    with _lock:
        if service not in _clients:
            if _session is None:
                _session = boto3.session.Session()
            _clients[service] = _session.client(service, config=_CONFIG)  # type: ignore[call-overload]
        return _clients[service]


def reset() -> None:
    """Forget every cached client and the session (tests that start a new emulated AWS)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
