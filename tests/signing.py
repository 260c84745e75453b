"""A hostile or buggy signer's tool: sign any tensors and any metadata, bypassing the typed record.

``save_bundle`` only writes what a ``FingerprintRecord`` can say; bundles from elsewhere need not. The
loader must treat what this writes as untrusted input even though its signature verifies.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from safetensors.numpy import save

from ipguard_onnx.bundle import SIGNATURE_FIELD, canonical_digest
from ipguard_onnx.keys import key_id, public_key_bytes

GOOD_METADATA = {
    "format": "ipguard-onnx-fingerprint",
    "format_version": "1",
    "input_name": "x",
    "input_shape": "[4]",
    "input_layout": "ND",
    "input_dtype": "float32",
    "num_classes": "3",
    "threshold": "0.85",
    "target_file": "t.onnx",
    "target_sha256": "",
    "output_name": "y",
    "output_kind": "logits",
    "method": "ipguard",
    "variant": "IPGuard-RL",
    "domain": "0.0,1.0",
}
"""The least metadata a bundle the loader accepts holds."""


def good_tensors() -> dict[str, npt.NDArray[np.generic]]:
    return {
        "points": np.zeros((2, 4), np.float32),
        "labels": np.array([0, 2], np.int64),
        "domain_low": np.zeros(4, np.float32),
        "domain_high": np.ones(4, np.float32),
    }


def write_signed(
    path: Path,
    tensors: Mapping[str, npt.NDArray[np.generic]],
    metadata: Mapping[str, str],
    key: Ed25519PrivateKey,
) -> Path:
    """Sign ``metadata`` and ``tensors`` exactly as a bundle is signed, whatever they say."""
    arrays = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    public = key.public_key()
    signed = dict(metadata)
    signed["signer_key_id"] = key_id(public)
    signed["signer_public_key"] = base64.b64encode(public_key_bytes(public)).decode()
    signed[SIGNATURE_FIELD] = base64.b64encode(key.sign(canonical_digest(arrays, signed))).decode()
    path.write_bytes(save(arrays, metadata=signed))
    return path
