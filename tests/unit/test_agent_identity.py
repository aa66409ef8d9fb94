"""The agent's identity client (vigil_agent.identity) against a loopback stand-in for IMDSv2.

Nothing here contacts 169.254.169.254: a ThreadingHTTPServer on 127.0.0.1 answers the token PUT
and the two GETs the way IMDSv2 does (401 without a valid token), and the agent's batch header is
then checked by the same verifier ingest uses.
"""

from __future__ import annotations

import base64
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `local` (the offline stack's test signer) lives at the repo root
    sys.path.insert(0, str(REPO))

from local.identity import TestIdentityAuthority, test_authority  # noqa: E402
from vigil import wire  # noqa: E402
from vigil.identity import IdentityVerifier, VerifiedIdentity  # noqa: E402
from vigil.sample import T0  # noqa: E402
from vigil_agent import config  # noqa: E402
from vigil_agent.agent import signed_host  # noqa: E402
from vigil_agent.identity import (  # noqa: E402
    IdentitySource,
    IdentityUnavailable,
    fetch_imds,
    load_files,
)
from vigil_agent.ship import Batcher  # noqa: E402

INSTANCE = "i-0123456789abcdef0"
TOKEN = "AQAEAexampletoken=="


class FakeImds(ThreadingHTTPServer):
    document: bytes
    signature: str
    requests: list[tuple[str, str, dict[str, str]]]
    broken: str = ""  # "token" | "document": answer 500 there


class _Handler(BaseHTTPRequestHandler):
    server: FakeImds

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        self.server.requests.append(("PUT", self.path, dict(self.headers)))
        if self.server.broken == "token":
            return self._answer(500)
        if self.path != "/latest/api/token" or "X-aws-ec2-metadata-token-ttl-seconds" not in self.headers:
            return self._answer(400)
        self._answer(200, TOKEN.encode())

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, dict(self.headers)))
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self._answer(401)  # IMDSv2: no token, no answer
        if self.path == "/latest/dynamic/instance-identity/document":
            if self.server.broken == "document":
                return self._answer(500)
            return self._answer(200, self.server.document)
        if self.path == "/latest/dynamic/instance-identity/signature":
            sig = self.server.signature
            return self._answer(200, "\n".join(sig[i : i + 64] for i in range(0, len(sig), 64)).encode())
        self._answer(404)


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    server = FakeImds(("127.0.0.1", 0), _Handler)
    doc = TestIdentityAuthority.document(INSTANCE, instance_type="m7i.large", image_id="ami-0feed")
    server.document = doc
    server.signature = base64.b64encode(test_authority().sign(doc)).decode()
    server.requests = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url(server: FakeImds) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_the_agent_fetches_the_signed_identity_with_imdsv2(imds: FakeImds) -> None:
    # WHEN the agent asks the (loopback) IMDS for its identity
    ident = fetch_imds(url(imds), timeout_s=2)
    # THEN it used IMDSv2: a token PUT first, then the document and signature with the token
    assert [(m, p) for m, p, _ in imds.requests] == [
        ("PUT", "/latest/api/token"),
        ("GET", "/latest/dynamic/instance-identity/document"),
        ("GET", "/latest/dynamic/instance-identity/signature"),
    ]
    assert all(h.get("X-aws-ec2-metadata-token") == TOKEN for _, _, h in imds.requests[1:])
    # AND it kept the document's exact bytes and the signature without IMDS's line breaks
    assert ident.document == imds.document and ident.signature == imds.signature
    assert (ident.instance_id, ident.instance_type, ident.image_id) == (INSTANCE, "m7i.large", "ami-0feed")
    # AND the batch header it makes verifies in ingest
    v = IdentityVerifier.from_pem(test_authority().cert_pem)
    got = v.verify(ident.wire.document, ident.wire.signature)
    assert isinstance(got, VerifiedIdentity) and got.instance_id == INSTANCE


def test_the_batch_header_carries_the_identity_encoded_once(imds: FakeImds) -> None:
    # GIVEN a host block (DMI says nothing: not EC2) and the fetched identity
    host = signed_host(wire.Host(instance_id="host-web-1", hostname="web-1"), fetch_imds(url(imds)))
    # THEN the header names the signed instance (the partition key the shipper will use)
    assert host.instance_id == INSTANCE and host.instance_type == "m7i.large" and host.identity is not None
    # AND the batcher's precomputed header line holds it (no per-event cost)
    sent: list[Any] = []

    class Sink:
        plain = True

        def submit(self, batch: Any, lines: list[bytes], hold_s: float = 0.0) -> None:
            sent.append(lines)

        def close(self, timeout: float) -> None:
            pass

    b = Batcher(Sink(), host, compress=False)
    b.add(wire.Heartbeat(time=T0, seq=1))
    b.add(wire.Heartbeat(time=T0 + 1, seq=2))
    b.seal()
    events, errors = wire.decode_batch(b"\n".join(sent[0]))
    assert not errors and events[0].host == host and events[1].host is None


@pytest.mark.parametrize(
    ("broken", "reason"),
    [("token", "HTTP 500"), ("document", "HTTP 500")],
)
def test_imds_errors_are_reasons_not_crashes(imds: FakeImds, broken: str, reason: str) -> None:
    imds.broken = broken
    with pytest.raises(IdentityUnavailable, match=reason):
        fetch_imds(url(imds))


def test_no_imds_is_a_reason_for_the_heartbeat() -> None:
    # GIVEN nothing listens where IMDS should be (a closed loopback port)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # WHEN the agent asks THEN it gets the reason its heartbeat will carry
    with pytest.raises(IdentityUnavailable, match="identity: IMDS unreachable"):
        IdentitySource(imds_url=f"http://127.0.0.1:{port}", timeout_s=0.5).get()
    with pytest.raises(IdentityUnavailable, match="IMDS disabled"):
        IdentitySource(imds=False).get()


def test_a_static_identity_from_files_for_the_offline_stack(tmp_path: Path) -> None:
    # GIVEN the offline stack's files for the local agent
    doc, sig = test_authority().agent_files(tmp_path, wire.Host(instance_id="i-0demolive0000001"))
    # WHEN the agent is configured with them
    cfg = config.parse(f'[identity]\ndocument_file = "{doc}"\nsignature_file = "{sig}"\n')
    ident = IdentitySource(
        document_file=cfg.identity.document_file, signature_file=cfg.identity.signature_file
    ).get()
    # THEN that identity verifies for that instance
    v = IdentityVerifier.from_pem(test_authority().cert_pem)
    got = v.verify(ident.wire.document, ident.wire.signature)
    assert isinstance(got, VerifiedIdentity) and got.instance_id == "i-0demolive0000001"
    # AND a missing or garbage file is a reason, not a crash
    with pytest.raises(IdentityUnavailable, match="cannot read"):
        load_files(str(tmp_path / "nope"), str(sig))
    (tmp_path / "bad.b64").write_text("%%%")
    with pytest.raises(IdentityUnavailable, match="not base64"):
        load_files(str(doc), str(tmp_path / "bad.b64"))


def test_the_static_files_go_together() -> None:
    with pytest.raises(config.ConfigError, match="go together"):
        config.parse('[identity]\ndocument_file = "/x"\n')


def test_an_agent_without_imds_runs_on_and_its_heartbeat_says_why(tmp_path: Path, imds: FakeImds) -> None:
    import socket

    from vigil_agent.agent import Agent

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    sent: list[list[bytes]] = []

    class Sink:
        plain = True

        def submit(self, batch: Any, lines: list[bytes], hold_s: float = 0.0) -> None:
            sent.append(lines)

        def close(self, timeout: float) -> None:
            pass

    cfg = config.parse(
        f'[agent]\nstate_dir = "{tmp_path}"\ninstance_id = "{INSTANCE}"\n[identity]\nimds_url = "http://127.0.0.1:{closed}"\ntimeout_s = 0.5\n'
    )
    # GIVEN an agent on a machine without IMDS
    agent = Agent(cfg, lambda stats, host: Sink())
    # WHEN it sends its heartbeat
    agent.heartbeat()
    agent.batcher.seal()
    # THEN it runs, unsigned, and says why
    (hb,), _ = wire.decode_batch(b"\n".join(sent[-1]))
    assert isinstance(hb, wire.Heartbeat) and hb.host is not None and hb.host.identity is None
    assert hb.sensors_unavailable["identity"].startswith("identity: IMDS unreachable")
    # AND once IMDS answers (the rare refresh), the next batch header is signed and the reason gone
    agent.identity_source.imds_url = url(imds)
    agent._refresh_identity()
    assert "identity" not in agent.unavailable and agent.identity_problem == ""
    agent.heartbeat()
    agent.batcher.seal()
    (hb,), _ = wire.decode_batch(b"\n".join(sent[-1]))
    assert hb.host is not None and hb.host.identity is not None and "identity" not in hb.sensors_unavailable
    v = IdentityVerifier.from_pem(test_authority().cert_pem)
    assert isinstance(v.verify(hb.host.identity.document, hb.host.identity.signature), VerifiedIdentity)
