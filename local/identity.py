"""A test certificate authority for instance identities: the offline stack's stand-in for AWS.

On EC2, AWS signs each instance's identity document and ingest verifies the signature with AWS's
published certificate (``vigil.identity``). Offline there is no AWS, so the offline stack makes a
test RSA key and a self-signed certificate at deploy, gives the certificate to IngestFunction
(template parameter ``InstanceIdentityCertificates``) and signs, the same way AWS does
(RSA PKCS#1 v1.5, SHA-256, over the document's bytes), the batch headers of what the demo,
tests, benchmarks and the local agent put on its stream.

    from local.identity import sign_batch, sign_events, sign_host, test_authority

    data = sign_batch(gzip_or_plain_ndjson)        # its header's host block, signed
    events = sign_events(events)                   # wire events: the first one's host, signed
    host = sign_host(wire.Host(instance_id="i-0...", account_id="123456789012", region="us-east-1"))
    pem = test_authority().cert_pem                # what the verifier must trust

Every helper signs with ``test_authority()`` (one per process, made on first use) unless given
another ``TestIdentityAuthority``; the offline stack uses the same one, so anything in the
stack's process signs for it. Another process finds the stack's authority in
``local/.state/identity/`` (``TestIdentityAuthority.load``). Never for production: the key
is written unencrypted for the tools that need it.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import threading
from collections.abc import Sequence
from pathlib import Path

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from vigil import wire

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"


class TestIdentityAuthority:
    """Signs instance identity documents with a test key; ``cert_pem`` is what ingest trusts."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self._signed: dict[tuple[str, str, str, str, str, str], wire.Identity] = {}

    @classmethod
    def generate(
        cls, common_name: str = "Vigil offline stack - test instance identity"
    ) -> TestIdentityAuthority:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vigil (test only)"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # fixed: the verifier checks no dates
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=365 * 30))
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    # --- persistence: the stack's authority for other processes -------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        key_path = directory / "key.pem"
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        (directory / "cert.pem").write_bytes(self.cert_pem)

    @classmethod
    def load(cls, directory: Path) -> TestIdentityAuthority:
        key = serialization.load_pem_private_key((directory / "key.pem").read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{directory / 'key.pem'}: not an RSA key")
        return cls(key, x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes()))

    # --- documents and signatures, as IMDS serves them ----------------------------------------
    @staticmethod
    def document(
        instance_id: str,
        *,
        account_id: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        instance_type: str = "t3.micro",
        image_id: str = "ami-0abcdef1234567890",
        availability_zone: str = "",
    ) -> bytes:
        """An identity document shaped like IMDS's (pretty-printed JSON, the same keys)."""
        doc = {
            "accountId": account_id,
            "architecture": "x86_64",
            "availabilityZone": availability_zone or f"{region}a",
            "billingProducts": None,
            "devpayProductCodes": None,
            "marketplaceProductCodes": None,
            "imageId": image_id,
            "instanceId": instance_id,
            "instanceType": instance_type,
            "kernelId": None,
            "pendingTime": "2025-11-24T16:00:00Z",
            "privateIp": "10.0.1.23",
            "ramdiskId": None,
            "region": region,
            "version": "2017-09-30",
        }
        return json.dumps(doc, indent=2).encode()

    def sign(self, document: bytes) -> bytes:
        """The raw signature (IMDS's ``signature`` endpoint serves it base64)."""
        return self.key.sign(document, padding.PKCS1v15(), hashes.SHA256())

    def identity(
        self,
        instance_id: str,
        *,
        account_id: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        instance_type: str = "",
        image_id: str = "",
        availability_zone: str = "",
    ) -> wire.Identity:
        """The wire block for an instance (signed once per distinct set of fields, then reused)."""
        key = (instance_id, account_id, region, instance_type, image_id, availability_zone)
        found = self._signed.get(key)
        if found is None:
            extra = {"instance_type": instance_type, "image_id": image_id}
            doc = self.document(
                instance_id,
                account_id=account_id,
                region=region,
                availability_zone=availability_zone,
                **{k: v for k, v in extra.items() if v},
            )
            found = self._signed[key] = wire.Identity(
                document=base64.b64encode(doc).decode(), signature=base64.b64encode(self.sign(doc)).decode()
            )
        return found

    def sign_host(self, host: wire.Host) -> wire.Host:
        """``host`` with an identity for what it says (instance, account and region; the defaults
        for account and region when it leaves them empty)."""
        ident = self.identity(
            host.instance_id,
            account_id=host.account_id or DEFAULT_ACCOUNT,
            region=host.region or DEFAULT_REGION,
            instance_type=host.instance_type,
            image_id=host.image_id,
            availability_zone=host.availability_zone,
        )
        return msgspec.structs.replace(host, identity=ident)

    def sign_events(self, events: Sequence[wire.WireEvent]) -> list[wire.WireEvent]:
        """A batch's wire events with the header (the first event's host block) signed. Events
        without a host block at the head are returned unchanged (they are rejected in ingest)."""
        out = list(events)
        if out and out[0].host is not None:
            out[0] = msgspec.structs.replace(out[0], host=self.sign_host(out[0].host))
        return out

    def sign_batch(self, data: bytes) -> bytes:
        """A recorded batch (gzip or plain NDJSON) with its header line's host block signed.

        Only the first line changes, by JSON re-encoding of that one object; the other lines
        keep their exact bytes. Input that is not a batch with a host in its first line (garbage,
        a truncated gzip, a header-less batch) comes back unchanged: tests send those on purpose.
        """
        compressed = data[:2] == GZIP_MAGIC
        try:
            payload = gzip.decompress(data) if compressed else data
        except (OSError, EOFError):
            return data
        first, nl, rest = payload.partition(b"\n")
        try:
            head = json.loads(first)
            host = msgspec.convert(head["host"], wire.Host)
        except (ValueError, TypeError, KeyError, msgspec.ValidationError):
            return data
        head["host"] = msgspec.to_builtins(self.sign_host(host))
        signed = json.dumps(head, separators=(",", ":")).encode() + nl + rest
        return gzip.compress(signed, compresslevel=6) if compressed else signed

    def agent_files(self, directory: Path, host: wire.Host) -> tuple[Path, Path]:
        """The document and the base64 signature as files, for the agent's ``[identity]``
        ``document_file`` / ``signature_file`` (the offline stack's local agent: no IMDS)."""
        ident = self.sign_host(host).identity
        assert ident is not None
        directory.mkdir(parents=True, exist_ok=True)
        doc, sig = directory / "identity-document.json", directory / "identity-signature.b64"
        doc.write_bytes(base64.b64decode(ident.document))
        sig.write_text(ident.signature + "\n")
        return doc, sig


_lock = threading.Lock()
_default: TestIdentityAuthority | None = None


def test_authority() -> TestIdentityAuthority:
    """This process's test authority (made on first use; the offline stack trusts it)."""
    global _default
    with _lock:
        if _default is None:
            _default = TestIdentityAuthority.generate()
        return _default


test_authority.__test__ = False  # type: ignore[attr-defined]


def sign_host(host: wire.Host, authority: TestIdentityAuthority | None = None) -> wire.Host:
    return (authority or test_authority()).sign_host(host)


def sign_events(
    events: Sequence[wire.WireEvent], authority: TestIdentityAuthority | None = None
) -> list[wire.WireEvent]:
    return (authority or test_authority()).sign_events(events)


def sign_batch(data: bytes, authority: TestIdentityAuthority | None = None) -> bytes:
    return (authority or test_authority()).sign_batch(data)
