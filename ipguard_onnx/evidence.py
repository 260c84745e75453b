"""Signed audit reports: an Ed25519 signature over the report's canonical JSON, to archive as evidence.

The signature covers every field of the JSON document except ``signature`` itself, serialised with
sorted keys and no whitespace, so reformatting the file keeps it valid and any change of content does not.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import ReportError, SignatureError
from .keys import key_id, public_key_bytes, verify_signature

SIGNATURE_FIELD = "signature"
_DOMAIN = b"ipguard-onnx report v1\x00"
MAX_REPORT_BYTES = 64 * 1024 * 1024


def _canonical(document: Mapping[str, Any]) -> bytes:
    unsigned = {key: value for key, value in document.items() if key != SIGNATURE_FIELD}
    return _DOMAIN + json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_report(document: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The document with a ``signature`` block: algorithm, key id, public key and value (base64)."""
    public = private_key.public_key()
    signed = dict(document)
    signed[SIGNATURE_FIELD] = {
        "algorithm": "Ed25519",
        "key_id": key_id(public),
        "public_key": base64.b64encode(public_key_bytes(public)).decode(),
        "value": base64.b64encode(private_key.sign(_canonical(document))).decode(),
    }
    return signed


@dataclass(frozen=True)
class ReportVerification:
    path: Path
    signer_key_id: str
    pinned: bool
    results: int


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object whose keys are all different: with a repeated key, what one parser shows is not what
    another signed (Python keeps the last value, others the first)."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a key is repeated")
    return document


def verify_report(path: str | os.PathLike[str], *, trusted_key: Ed25519PublicKey | None = None) -> ReportVerification:
    """Check a signed JSON report; raise ``SignatureError`` if it was altered or signed by another key."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"report not found: {path}; write one with 'ipguard-onnx audit ... --sign-report KEY'")
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise ReportError(f"{path} is larger than {MAX_REPORT_BYTES >> 20} MiB; it is not an ipguard-onnx report")
    try:
        document = json.loads(path.read_bytes(), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ReportError(
            f"{path} is not JSON (or repeats a key, which parsers read differently); pass a report written with "
            "--format json --sign-report"
        ) from None
    if not isinstance(document, dict) or document.get("tool") != "ipguard-onnx":
        raise ReportError(f"{path} is not an ipguard-onnx report")
    block = document.get(SIGNATURE_FIELD)
    if not isinstance(block, dict):
        raise SignatureError(f"{path} is not signed; sign reports with 'ipguard-onnx audit ... --sign-report KEY'")
    signer = verify_signature(
        _canonical(document),
        public_key=str(block.get("public_key", "")),
        signature=str(block.get("value", "")),
        claimed_key_id=block.get("key_id"),
        trusted_key=trusted_key,
        subject=str(path),
    )
    results = document.get("results")
    return ReportVerification(path, signer, trusted_key is not None, len(results) if isinstance(results, list) else 0)
