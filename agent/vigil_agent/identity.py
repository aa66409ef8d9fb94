"""The instance's signed identity from IMDSv2, for the batch header (``host.identity``).

Ingest accepts a batch only with the instance identity document and its AWS signature
(docs/identity.md): an agent can speak only for the instance it runs on. The agent fetches both
once at start (a token PUT, then two GETs; IMDSv2 only, hop limit 1 is enough) and again rarely
(``identity.refresh_s``, or sooner while it has none). Without IMDS (not EC2, IMDS disabled, a
container without the hop) the agent keeps running and says why in every heartbeat; ingest then
rejects its batches, which is right: nothing proves where they come from.

For tests and the offline stack only: a static document + signature from files
(``identity.document_file`` / ``identity.signature_file``) instead of IMDS.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
import urllib.parse
from dataclasses import dataclass

from vigil import wire

log = logging.getLogger("vigil_agent.identity")

IMDS_URL = "http://169.254.169.254"
TOKEN_PATH = "/latest/api/token"
DOCUMENT_PATH = "/latest/dynamic/instance-identity/document"
SIGNATURE_PATH = "/latest/dynamic/instance-identity/signature"
TOKEN_TTL_S = 60  # the token is used at once; a short TTL leaves nothing useful lying around
MAX_BODY = 8192


class IdentityUnavailable(Exception):
    """Why there is no identity (the heartbeat's reason)."""


@dataclass(frozen=True, slots=True)
class InstanceIdentity:
    document: bytes  # exactly as IMDS served it: the signature covers these bytes
    signature: str  # base64, as IMDS serves it
    instance_id: str
    account_id: str
    region: str
    instance_type: str
    image_id: str
    availability_zone: str

    @property
    def wire(self) -> wire.Identity:
        return wire.Identity(document=base64.b64encode(self.document).decode(), signature=self.signature)


def parse(document: bytes, signature: bytes | str) -> InstanceIdentity:
    """Check the pair is usable (the agent cannot verify AWS's signature; ingest does)."""
    sig = (signature.decode("ascii", "replace") if isinstance(signature, bytes) else signature).strip()
    sig = "".join(sig.split())  # IMDS serves the base64 in lines
    try:
        base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise IdentityUnavailable("identity: the signature is not base64") from None
    if not sig:
        raise IdentityUnavailable("identity: the signature is empty")
    try:
        doc = json.loads(document)
    except ValueError:
        raise IdentityUnavailable("identity: the document is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("instanceId"), str) or not doc["instanceId"]:
        raise IdentityUnavailable("identity: the document has no instanceId")

    def field(name: str) -> str:
        v = doc.get(name)
        return v if isinstance(v, str) else ""

    return InstanceIdentity(
        document=document,
        signature=sig,
        instance_id=doc["instanceId"],
        account_id=field("accountId"),
        region=field("region"),
        instance_type=field("instanceType"),
        image_id=field("imageId"),
        availability_zone=field("availabilityZone"),
    )


def fetch_imds(base_url: str = IMDS_URL, timeout_s: float = 1.0) -> InstanceIdentity:
    """IMDSv2: PUT a session token, then GET the document and its signature with it."""
    url = urllib.parse.urlsplit(base_url)
    if url.scheme != "http" or not url.hostname:
        raise IdentityUnavailable(f"identity: IMDS URL {base_url!r} is not http://host[:port]")
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout_s)
    try:
        token = _call(conn, "PUT", TOKEN_PATH, {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_S)})
        headers = {"X-aws-ec2-metadata-token": token.decode("ascii", "replace").strip()}
        document = _call(conn, "GET", DOCUMENT_PATH, headers)
        signature = _call(conn, "GET", SIGNATURE_PATH, headers)
    except (OSError, http.client.HTTPException) as exc:
        raise IdentityUnavailable(f"identity: IMDS unreachable at {base_url} ({exc})") from None
    finally:
        conn.close()
    return parse(document, signature)


def _call(conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str]) -> bytes:
    conn.request(method, path, headers=headers)
    resp = conn.getresponse()
    body = resp.read(MAX_BODY + 1)
    if resp.status != 200:
        raise IdentityUnavailable(f"identity: IMDS {method} {path} answered HTTP {resp.status}")
    if len(body) > MAX_BODY:
        raise IdentityUnavailable(f"identity: IMDS {path} answered more than {MAX_BODY} bytes")
    return body


def load_files(document_file: str, signature_file: str) -> InstanceIdentity:
    """The static identity of the offline stack and tests (never on EC2: use IMDS there)."""
    try:
        with open(document_file, "rb") as f:
            document = f.read(MAX_BODY + 1)
        with open(signature_file, "rb") as f:
            signature = f.read(MAX_BODY + 1)
    except OSError as exc:
        raise IdentityUnavailable(f"identity: cannot read {exc.filename}: {exc.strerror}") from None
    return parse(document, signature)


class IdentitySource:
    """Where the agent's identity comes from, per its ``[identity]`` configuration."""

    def __init__(
        self,
        *,
        imds: bool = True,
        imds_url: str = IMDS_URL,
        timeout_s: float = 1.0,
        document_file: str = "",
        signature_file: str = "",
    ) -> None:
        self.imds = imds
        self.imds_url = imds_url
        self.timeout_s = timeout_s
        self.document_file = document_file
        self.signature_file = signature_file

    def get(self) -> InstanceIdentity:
        """The identity, or IdentityUnavailable with the reason for the heartbeat."""
        if self.document_file or self.signature_file:
            return load_files(self.document_file, self.signature_file)
        if not self.imds:
            raise IdentityUnavailable("identity: IMDS disabled (identity.imds = false)")
        return fetch_imds(self.imds_url, self.timeout_s)
