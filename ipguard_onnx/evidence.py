"""Signed audit reports: an Ed25519 signature over the report's canonical JSON, to archive as evidence.

The signature covers every field of the JSON document except ``signature`` itself, serialised with
sorted keys and no whitespace, so reformatting the file keeps it valid and any change of content does not.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import ReportError, SignatureError
from .keys import key_id, public_key_bytes, strict_b64decode

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


def verify_report(path: str | os.PathLike[str], *, trusted_key: Ed25519PublicKey | None = None) -> ReportVerification:
    """Check a signed JSON report; raise ``SignatureError`` if it was altered or signed by another key."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"report not found: {path}; write one with 'ipguard-onnx audit ... --sign-report KEY'")
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise ReportError(f"{path} is larger than {MAX_REPORT_BYTES >> 20} MiB; it is not an ipguard-onnx report")
    try:
        document = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ReportError(f"{path} is not JSON; pass a report written with --format json --sign-report") from None
    if not isinstance(document, dict) or document.get("tool") != "ipguard-onnx":
        raise ReportError(f"{path} is not an ipguard-onnx report")
    block = document.get(SIGNATURE_FIELD)
    if not isinstance(block, dict):
        raise SignatureError(f"{path} is not signed; sign reports with 'ipguard-onnx audit ... --sign-report KEY'")
    try:
        public_raw = strict_b64decode(str(block["public_key"]))
        value = strict_b64decode(str(block["value"]))
        public = Ed25519PublicKey.from_public_bytes(public_raw)
        public.verify(value, _canonical(document))
    except (KeyError, ValueError, binascii.Error, InvalidSignature):
        raise SignatureError(f"{path} failed signature verification: it was altered after signing") from None
    signer = key_id(public)
    if block.get("key_id") != signer:
        raise SignatureError(f"{path} names signer {block.get('key_id')} but is signed by {signer}")
    if trusted_key is not None and public_key_bytes(trusted_key) != public_raw:
        raise SignatureError(f"{path} is signed by {signer}, not by the trusted key {key_id(trusted_key)}")
    results = document.get("results")
    return ReportVerification(path, signer, trusted_key is not None, len(results) if isinstance(results, list) else 0)
