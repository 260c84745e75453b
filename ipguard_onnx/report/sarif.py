"""SARIF 2.1.0 for code-scanning views: one result per suspect × fingerprint (``audit --format sarif``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import quote

from .._version import __version__
from ..audit import AuditResult, Expectation
from .documents import audit_row

_RULES = {
    "match": ("IPG001", "FingerprintMatch", "The model answers a protected model's fingerprint: likely a copy"),
    "no match": ("IPG002", "NoFingerprintMatch", "The model does not answer the fingerprint like the protected model"),
    "inconclusive": (
        "IPG003",
        "AuditInconclusive",
        "No verdict either way: too few answers, answers from the wrong output, or a fingerprint whose evidence "
        "cannot reach its false-accusation rate",
    ),
}


def audit_sarif(results: Sequence[AuditResult], expect: Expectation | None = None) -> str:
    """SARIF 2.1.0: one result per suspect × fingerprint; ``error`` where --expect is not met."""
    wanted = None if expect is None else ("match" if expect == "match" else "no match")
    sarif_results = []
    for result in results:
        rule_id, _, _ = _RULES[result.verdict]
        if wanted is None:
            level = "note" if result.verdict == "no match" else "warning"
        else:
            level = "note" if result.verdict == wanted else ("warning" if result.verdict == "inconclusive" else "error")
        location = result.suspect_details.get("path") or result.suspect_details.get("endpoint") or result.suspect
        if not location.startswith(("http://", "https://")):  # a URI reference: spaces, '#' and '%' encoded
            location = quote(location)
        text = (
            f"{result.suspect}: {result.verdict} against {result.fingerprint} (matching rate "
            f"{result.matching_rate:.1%}, threshold {result.threshold:.0%}, {result.points_skipped} of "
            f"{result.points_queried} points skipped)"
        )
        if wanted is not None and result.verdict != wanted:
            text += f"; expected {wanted}"
        sarif_results.append(
            {
                "ruleId": rule_id,
                "level": level,
                "message": {"text": text},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": location}}}],
                "properties": audit_row(result),
            }
        )
    rules = [
        {"id": rule_id, "name": name, "shortDescription": {"text": description}}
        for rule_id, name, description in _RULES.values()
    ]
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "ipguard-onnx", "version": __version__, "rules": rules}},
                "results": sarif_results,
            }
        ],
    }
    return json.dumps(document, indent=2)
