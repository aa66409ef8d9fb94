"""The Sigma rule bundle shipped in the core layer (``vigil/sigma_rules.json``), loaded once.

``vigil sigma import DIR`` writes it (cli/vigil_cli/sigma.py); ``sam build`` packages it with the
core layer; the ingest runs its enabled rules beside the native detections, and so does
``vigil replay``. No bundle file: no Sigma rules. A bundle that cannot be read or decoded fails
the cold start with its reason (also a ``$VIGIL_SIGMA_BUNDLE`` that does not exist) (a silently missing ruleset is worse than a loud one); one rule
that cannot run is skipped and logged, never the others.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from importlib import resources
from pathlib import Path

from vigil.sigma import LoadedBundle, load_bundle

BUNDLE_NAME = "sigma_rules.json"
BUNDLE_ENV = "VIGIL_SIGMA_BUNDLE"  # another bundle file (tests; an operator's own path)
log = logging.getLogger(__name__)


def bundle_path() -> Path:
    return Path(str(resources.files("vigil") / BUNDLE_NAME))


def load(path: Path | None = None) -> LoadedBundle:
    """The bundle at ``path`` (default: the shipped one; absent: an empty bundle)."""
    p = path or bundle_path()
    if path is None and not p.exists():
        return LoadedBundle(())
    loaded = load_bundle(p.read_bytes())
    for rule_id, reason in loaded.skipped:
        log.warning("sigma rule %s not run: %s", rule_id, reason)
    return loaded


def bundled() -> LoadedBundle:
    """The bundle at ``$VIGIL_SIGMA_BUNDLE``, else the shipped one (read once per path)."""
    return _cached(os.environ.get(BUNDLE_ENV, ""))


@cache
def _cached(path: str) -> LoadedBundle:
    return load(Path(path) if path else None)
