"""The audit as a CycloneDX 1.6 ML-BOM fragment (``audit --format cyclonedx``).

Each suspect is a ``machine-learning-model`` component named by its SHA-256; a suspect that matched carries
the protected model (the fingerprint's target, by its SHA-256) in its ``pedigree.ancestors``, with the
evidence in ``pedigree.notes`` and the verdict, p-value and fingerprint as ``ipguard-onnx:`` properties.
An independent model or an inconclusive audit gets no pedigree: the BOM claims lineage only on a match.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._version import __version__

if TYPE_CHECKING:
    from ..audit import AuditResult
    from ..bundle import Bundle

__all__ = ["SPEC_VERSION", "audit_cyclonedx"]

SPEC_VERSION = "1.6"


def _hashes(sha256: str | None) -> list[dict[str, str]]:
    return [{"alg": "SHA-256", "content": sha256}] if sha256 else []


def _properties(result: AuditResult) -> list[dict[str, str]]:
    values = {
        "verdict": result.verdict,
        "why": result.why,
        "matching_rate": f"{result.matching_rate:.6g}",
        "p_value": f"{result.p_value:.6g}",
        "false_accusation_rate": f"{result.false_accusation_rate:g}",
        "points_matched": str(result.points_matched),
        "points_queried": str(result.points_queried),
        "fingerprint": result.fingerprint,
        "fingerprint_sha256": result.fingerprint_sha256,
        "fingerprint_signer_key_id": result.signer_key_id,
        "audited_at": result.audited_at,
    }
    return [{"name": f"ipguard-onnx:{name}", "value": value} for name, value in values.items() if value]


def audit_cyclonedx(results: Sequence[AuditResult], bundles: Sequence[Bundle] = ()) -> str:
    """A CycloneDX 1.6 JSON BOM of the audited suspects; the serial number is derived from the content, so
    the same audit gives the same BOM."""
    targets = {bundle.sha256: bundle.record.target_sha256 for bundle in bundles}
    components: dict[str, dict[str, Any]] = {}
    for result in results:
        reference = f"suspect-{result.suspect_sha256 or hashlib.sha256(result.suspect.encode()).hexdigest()}"
        component = components.setdefault(
            reference,
            {
                "type": "machine-learning-model",
                "bom-ref": reference,
                "name": result.suspect,
                "hashes": _hashes(result.suspect_sha256),
                "properties": [],
            },
        )
        component["properties"].extend(_properties(result))
        if not result.matched:
            continue
        target = targets.get(result.fingerprint_sha256, "")
        ancestor = {
            "type": "machine-learning-model",
            "bom-ref": f"protected-{target or result.fingerprint_sha256}",
            "name": f"the model protected by {result.fingerprint}",
            "hashes": _hashes(target),
        }
        pedigree = component.setdefault("pedigree", {"ancestors": [], "notes": ""})
        if ancestor["bom-ref"] not in {a["bom-ref"] for a in pedigree["ancestors"]}:
            pedigree["ancestors"].append(ancestor)
        note = (
            f"ipguard-onnx: {result.suspect} answers the fingerprint {result.fingerprint} (sha256 "
            f"{result.fingerprint_sha256}, signed by {result.signer_key_id}) like the protected model: "
            f"{result.points_matched} of {result.points_queried - result.points_skipped} points, p = "
            f"{result.p_value:.2g} ≤ α = {result.false_accusation_rate:g}."
        )
        pedigree["notes"] = f"{pedigree['notes']} {note}".strip()
    body = sorted(components.values(), key=lambda component: str(component["bom-ref"]))
    serial = uuid.uuid5(uuid.NAMESPACE_URL, "ipguard-onnx:" + json.dumps(body, sort_keys=True))
    created = min((result.audited_at for result in results if result.audited_at), default="")
    metadata: dict[str, Any] = {
        "tools": {"components": [{"type": "application", "name": "ipguard-onnx", "version": __version__}]}
    }
    if created:
        metadata["timestamp"] = created
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": serial.urn,
        "version": 1,
        "metadata": metadata,
        "components": body,
    }
    return json.dumps(document, indent=2)
