"""PrivilegeEscalation:Runtime/DockerSocketAccessed: a process inside a container connected to the Docker socket."""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import NetworkActivity

SOCKET_NAMES: Final = ("/docker.sock", "/podman.sock", "/dockershim.sock")


class DockerSocketAccessed(Detection):
    meta = Meta(
        type="PrivilegeEscalation:Runtime/DockerSocketAccessed",
        severity=severity.MEDIUM,
        title="A container process accessed the Docker socket",
        description=(
            "A process inside a container connected to the Docker daemon's socket: whoever can talk to dockerd can start a "
            "privileged container and own the host."
        ),
        mitre=("T1611", "T1610"),
        runbook=(
            "Find the container (resource / process containerUid) and why it has the socket mounted. Unless it is a "
            "sanctioned agent (CI runner, monitoring), remove the mount and check dockerd for containers it created."
        ),
        false_positives=(
            "Containers that manage Docker by design (CI runners, Portainer, Watchtower): suppress by image.",
        ),
        references=("https://attack.mitre.org/techniques/T1611/",),
    )
    kinds = frozenset({"unix_connect"})

    def match(self, event: NetworkActivity, ctx: Context) -> bool:
        return bool(event.process.container_uid) and event.dst_endpoint.path.endswith(SOCKET_NAMES)

    def dedup_key(self, event: NetworkActivity) -> str:
        return f"{event.process.container_uid}|{event.dst_endpoint.path}"

    def context(self, event: NetworkActivity, ctx: Context) -> dict[str, Any]:
        return {"socketPath": event.dst_endpoint.path}

    fires: ClassVar = (
        Example("curl in a container talking to dockerd", (s.unix_connect(s.proc("/usr/bin/curl", "--unix-socket", "/var/run/docker.sock", "http://x/containers/json", container="c0ffee"), "/var/run/docker.sock"),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("the docker CLI on the host", (s.unix_connect(s.proc("/usr/bin/docker", "ps"), "/var/run/docker.sock"),)),
        Example("a container talking to its own app socket", (s.unix_connect(s.proc("/usr/bin/php-fpm", container="c0ffee"), "/run/php/php-fpm.sock"),)),
    )  # fmt: skip
