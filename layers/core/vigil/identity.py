"""The EC2 instance identity document and its AWS signature: who really sent a batch.

Whoever owns an instance owns its agent, so every field the agent writes is a claim. The one
thing it cannot forge is the instance identity document from IMDS
(``/latest/dynamic/instance-identity/document``) with its signature: AWS signs the document's
bytes, and only the instance itself can read them from IMDS. The agent sends both, base64, in the
batch header's ``host.identity`` (``vigil.wire.Identity``); ingest verifies them here.

Which of IMDS's three signatures: the ``signature`` endpoint (base64 RSA PKCS#1 v1.5 over
SHA-256 of the document's exact bytes, checked with the public key of AWS's regional "RSA"
certificate). It is one public-key operation with ``cryptography``'s stable API
(``RSAPublicKey.verify``), over bytes we hold as sent. The ``rsa2048`` endpoint is a PKCS#7
SignedData envelope: ``cryptography`` can build those but has no API to verify one, and the
``pkcs7`` endpoint is DSA over SHA-1.

What the signature does not prove: freshness. The document is the same for the instance's whole
life and carries no nonce, so a copy replayed by someone who once read it speaks for that
instance; ingest therefore also requires the Kinesis partition key to match, and the agent's IAM
policy lets instances put records but never read the stream.

Certificates are only carriers of AWS's public keys here (``openssl ... -noverify`` in AWS's own
procedure): their validity dates are not checked (no clock in the core), only the signature.

Pure: no clock, no environment, no network; certificates are passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

import msgspec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAX_DOCUMENT_BYTES: Final = 4096  # a real document is ~500 bytes
MAX_SIGNATURE_BYTES: Final = 1024  # RSA-4096 at most (512 bytes); AWS's are 128
MAX_ID_CHARS: Final = 64
DEFAULT_CACHE_SIZE: Final = 4096
_PEM_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"
_PEM_END: Final = b"-----END CERTIFICATE-----"


class _Document(msgspec.Struct, frozen=True, rename="camel"):
    """The identity document as IMDS serves it (camelCase JSON). Unknown keys are ignored."""

    instance_id: str
    account_id: str
    region: str
    instance_type: str = ""
    image_id: str = ""
    availability_zone: str = ""
    architecture: str = ""
    private_ip: str | None = None
    pending_time: str = ""
    version: str = ""


class VerifiedIdentity(msgspec.Struct, frozen=True):
    """A document whose AWS signature checked out: these fields are authoritative."""

    instance_id: str
    account_id: str
    region: str
    instance_type: str = ""
    image_id: str = ""
    availability_zone: str = ""
    architecture: str = ""
    private_ip: str = ""
    pending_time: str = ""


class IdentityRejected(msgspec.Struct, frozen=True):
    """Why a claimed identity was not accepted (goes to the dead-letter queue and a metric)."""

    reason: str


IdentityResult = VerifiedIdentity | IdentityRejected

_decode_document = msgspec.json.Decoder(_Document).decode


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle (one or many ``BEGIN CERTIFICATE`` blocks).

    Raises ValueError naming the block that does not parse; an empty bundle is an error too:
    a verifier that trusts nothing would reject every instance.
    """
    certs: list[x509.Certificate] = []
    for n, block in enumerate(_pem_blocks(pem), start=1):
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError as exc:
            raise ValueError(f"certificate {n} in the bundle does not parse: {exc}") from None
    if not certs:
        raise ValueError("no PEM certificate (-----BEGIN CERTIFICATE-----) in the bundle")
    return certs


def _pem_blocks(pem: bytes) -> Iterable[bytes]:
    pos = 0
    while True:
        start = pem.find(_PEM_BEGIN, pos)
        if start < 0:
            return
        end = pem.find(_PEM_END, start)
        if end < 0:
            yield pem[start:]  # unterminated: let the parser say so
            return
        pos = end + len(_PEM_END)
        yield pem[start:pos] + b"\n"


def _b64(value: str, what: str, limit: int) -> bytes | str:
    """Decoded bytes, or the reason they are not acceptable."""
    if not value:
        return f"identity {what} is empty"
    if len(value) > limit * 4 // 3 + 4:
        return f"identity {what} is larger than {limit} bytes"
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return f"identity {what} is not valid base64"


class IdentityVerifier:
    """Verifies (document, signature) pairs against trusted RSA certificates, with a cache.

    A busy shard sees the same instance's header in every record: each distinct pair is verified
    once and its result (accepted or rejected) kept under the SHA-256 of the pair, up to
    ``cache_size`` entries (then the cache starts over: bounded memory whatever is sent).
    """

    def __init__(self, certificates: Sequence[x509.Certificate], *, cache_size: int = DEFAULT_CACHE_SIZE):
        keys: list[rsa.RSAPublicKey] = []
        for cert in certificates:
            key = cert.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError(
                    f"certificate {cert.subject.rfc4514_string()!r} holds a {type(key).__name__}, not an "
                    "RSA key: the base64 signature is verified with AWS's RSA certificates (not DSA/RSA-2048)"
                )
            keys.append(key)
        if not keys:
            raise ValueError("an identity verifier needs at least one trusted certificate")
        self._keys: tuple[rsa.RSAPublicKey, ...] = tuple(keys)
        self._cache: dict[bytes, IdentityResult] = {}
        self.cache_size = cache_size
        self.hits = 0
        self.misses = 0

    @classmethod
    def from_pem(cls, pem: bytes, *, cache_size: int = DEFAULT_CACHE_SIZE) -> IdentityVerifier:
        return cls(load_certificates(pem), cache_size=cache_size)

    def verify(self, document_b64: str, signature_b64: str) -> IdentityResult:
        """The wire form (both base64, as ``vigil.wire.Identity`` carries them). Never raises."""
        key = hashlib.sha256(
            document_b64.encode("utf-8", "surrogatepass")
            + b"\x00"
            + signature_b64.encode("utf-8", "surrogatepass")
        ).digest()
        cached = self._cache.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        result = self._verify_b64(document_b64, signature_b64)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _verify_b64(self, document_b64: str, signature_b64: str) -> IdentityResult:
        document = _b64(document_b64, "document", MAX_DOCUMENT_BYTES)
        if isinstance(document, str):
            return IdentityRejected(document)
        signature = _b64(signature_b64, "signature", MAX_SIGNATURE_BYTES)
        if isinstance(signature, str):
            return IdentityRejected(signature)
        return self.verify_raw(document, signature)

    def verify_raw(self, document: bytes, signature: bytes) -> IdentityResult:
        """The document's exact bytes and the decoded signature (not cached). Never raises."""
        if len(document) > MAX_DOCUMENT_BYTES:
            return IdentityRejected(f"identity document is larger than {MAX_DOCUMENT_BYTES} bytes")
        if not signature or len(signature) > MAX_SIGNATURE_BYTES:
            return IdentityRejected("identity signature is empty or too large")
        if not any(self._signed_by(k, document, signature) for k in self._keys):
            return IdentityRejected(
                "identity document signature does not verify with any trusted certificate"
            )
        try:
            doc = _decode_document(document)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return IdentityRejected(f"signed identity document is not a valid document: {exc}")
        for name in ("instance_id", "account_id", "region"):
            value = getattr(doc, name)
            if not value or len(value) > MAX_ID_CHARS or not value.isprintable():
                return IdentityRejected(f"signed identity document has an unusable {name}: {value[:80]!r}")
        return VerifiedIdentity(
            instance_id=doc.instance_id,
            account_id=doc.account_id,
            region=doc.region,
            instance_type=doc.instance_type,
            image_id=doc.image_id,
            availability_zone=doc.availability_zone,
            architecture=doc.architecture,
            private_ip=doc.private_ip or "",
            pending_time=doc.pending_time,
        )

    @staticmethod
    def _signed_by(key: rsa.RSAPublicKey, document: bytes, signature: bytes) -> bool:
        try:
            key.verify(signature, document, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True


__all__ = [
    "IdentityRejected",
    "IdentityResult",
    "IdentityVerifier",
    "VerifiedIdentity",
    "load_certificates",
]
