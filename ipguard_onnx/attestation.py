"""Attestations: the audit as a signed in-toto statement in a DSSE envelope (``audit --attest FILE``).

The statement's subjects are the suspects' digests — a file's SHA-256, which is the per-file digest the
OpenSSF model-signing specification records — and its predicate carries each verdict, its evidence and the
fingerprint's digest, plus each suspect's model-signing *root digest* (``model_root_digest``), the digest
model-signing puts in its own statement's subject, so the two can reference each other. The envelope is
signed with Ed25519 over DSSE's pre-authentication encoding; ``verify-report`` verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import ReportError, SignatureError, UsageError
from .keys import key_id, public_key_bytes, verify_signature
from .models.base import sha256_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from .audit import AuditResult

__all__ = [
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "AttestationVerification",
    "attest",
    "is_envelope",
    "model_root_digest",
    "pae",
    "verify_attestation",
    "write_attestation",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://github.com/ipguard-onnx/ipguard-onnx/attestation/audit/v1"
"""What the predicate is: an ipguard-onnx audit (verdicts, evidence, fingerprint digests), version 1."""
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1's pre-authentication encoding: what the signature covers (type and body, length-prefixed)."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def model_root_digest(path: str | os.PathLike[str]) -> str:
    """The OpenSSF model-signing v1 root digest of a model file or folder (its default "files" hashing):
    SHA-256 over the SHA-256 digests of every file, in the order of their paths relative to the model
    (a file alone: its own name), ``.git`` paths left out. Symbolic links are refused, as model-signing does."""
    root = Path(path)
    if root.is_symlink():
        raise UsageError(f"{root}: a symbolic link; model-signing hashes no links")
    if root.is_file():
        files = [(root.name, root)]
    elif root.is_dir():
        files = []
        for item in sorted(root.rglob("*")):
            relative = item.relative_to(root)
            if ".git" in relative.parts or item.is_dir():
                continue
            if item.is_symlink():
                raise UsageError(f"{item}: a symbolic link inside the model; model-signing hashes no links")
            files.append((relative.as_posix(), item))
        files.sort(key=lambda pair: pair[0])
    else:
        raise UsageError(f"{root}: no such model file or folder")
    combined = hashlib.sha256()
    for _, item in files:
        combined.update(bytes.fromhex(sha256_file(item)))
    return combined.hexdigest()


def _subject(result: AuditResult, files: Mapping[str, Path]) -> dict[str, Any]:
    path = files.get(result.suspect_sha256 or "")
    if path is None or result.suspect_sha256 is None:
        raise UsageError(
            f"--attest names models by their digest: {result.suspect} has none (a remote API); attest audits "
            "of model files"
        )
    return {"name": result.suspect, "digest": {"sha256": result.suspect_sha256}}


def attest(results: Sequence[AuditResult], suspects: Sequence[Path], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed DSSE envelope of an in-toto statement about ``results`` (every suspect a file)."""
    files = {sha256_file(path): path for path in suspects if path.is_file()}  # by content: names may repeat
    subjects: dict[str, dict[str, Any]] = {}
    for result in results:
        subject = _subject(result, files)
        subjects[subject["digest"]["sha256"]] = subject
    public = private_key.public_key()
    predicate = {
        "tool": {"name": "ipguard-onnx", "version": __version__},
        "signer": {"key_id": key_id(public), "public_key": base64.b64encode(public_key_bytes(public)).decode()},
        "results": [
            {
                "suspect": {
                    "name": result.suspect,
                    "digest": {"sha256": result.suspect_sha256},
                    "model_signing_root_digest": {"sha256": model_root_digest(files[result.suspect_sha256 or ""])},
                },
                "fingerprint": {
                    "name": result.fingerprint,
                    "digest": {"sha256": result.fingerprint_sha256},
                    "signer_key_id": result.signer_key_id,
                    "signer_pinned": result.signer_pinned,
                },
                "verdict": result.verdict,
                "why": result.why,
                "rule": result.rule,
                "matching_rate": result.matching_rate,
                "p_value": result.p_value,
                "false_accusation_rate": result.false_accusation_rate,
                "points_queried": result.points_queried,
                "points_matched": result.points_matched,
                "points_skipped": result.points_skipped,
                "parts": [asdict(part) for part in result.parts],
                "licensee": result.licensee,
                "audited_at": result.audited_at,
            }
            for result in results
        ],
    }
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": list(subjects.values()),
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": key_id(public), "sig": base64.b64encode(signature).decode("ascii")}],
    }


def write_attestation(
    path: str | os.PathLike[str],
    results: Sequence[AuditResult],
    suspects: Sequence[Path],
    private_key: Ed25519PrivateKey,
) -> None:
    """``attest`` written to ``path`` atomically (a reader never sees half an envelope)."""
    from .files import write_atomic

    envelope = attest(results, suspects, private_key)
    write_atomic(Path(path), (json.dumps(envelope, indent=2) + "\n").encode("utf-8"))


def is_envelope(document: object) -> bool:
    """Whether a parsed JSON document is a DSSE envelope (rather than a signed JSON report)."""
    return isinstance(document, dict) and "payloadType" in document and "signatures" in document


@dataclass(frozen=True)
class AttestationVerification:
    """A verified attestation: who signed it, whether pinned, the subjects' sha256 and the results it holds."""

    path: Path
    signer_key_id: str
    pinned: bool
    subjects: tuple[str, ...]
    results: int


def _mapping(value: object) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else a ``TypeError`` (a malformed envelope, never a crash)."""
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value


def verify_attestation(
    path: str | os.PathLike[str], document: Mapping[str, Any], *, trusted_key: Ed25519PublicKey | None = None
) -> AttestationVerification:
    """Check a DSSE envelope written by ``audit --attest``: its signature over the PAE, the key the predicate
    names, and the pinned ``trusted_key``. A malformed or altered envelope is a ``SignatureError`` (exit 4)."""
    path = Path(path)
    if document.get("payloadType") != PAYLOAD_TYPE:
        raise ReportError(f"{path} is a DSSE envelope of {str(document.get('payloadType'))[:80]!r}, not in-toto")
    try:
        payload = base64.b64decode(str(document["payload"]), validate=True)
        statement = _mapping(json.loads(payload))
        signatures = document["signatures"]
        if not isinstance(signatures, list) or len(signatures) != 1:
            raise TypeError("one signature expected")
        only = _mapping(signatures[0])
        signer = _mapping(_mapping(statement["predicate"])["signer"])
        subjects = tuple(str(_mapping(_mapping(item)["digest"])["sha256"]) for item in statement["subject"])
        results = statement["predicate"]["results"]
        if not isinstance(results, list):
            raise TypeError("results is not a list")
    except (KeyError, ValueError, TypeError, RecursionError):
        raise SignatureError(f"{path} is not a well-formed ipguard-onnx attestation; do not trust it") from None
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise ReportError(f"{path} is an in-toto statement of another kind, not an ipguard-onnx audit")
    checked = verify_signature(
        pae(PAYLOAD_TYPE, payload),
        public_key=str(signer.get("public_key", "")),
        signature=str(only.get("sig", "")),
        claimed_key_id=only.get("keyid"),
        trusted_key=trusted_key,
        subject=str(path),
    )
    if signer.get("key_id") != checked:
        raise SignatureError(f"{path} names signer {signer.get('key_id')} but is signed by {checked}")
    return AttestationVerification(path, checked, trusted_key is not None, subjects, len(results))


def read_envelope(path: Path) -> dict[str, Any] | None:
    """The file's DSSE envelope, or None when it holds something else (a signed JSON report)."""
    if path.stat().st_size > MAX_ENVELOPE_BYTES:
        return None
    try:
        document = json.loads(path.read_bytes())
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return document if is_envelope(document) else None
