"""JSON documents: one envelope (tool, version, then the payload) for every command's --format json."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._version import __version__
from ..audit import AuditResult
from ..bundle import Bundle
from ..calibrate import Calibration
from ..evaluate import Evaluation
from ..schemas import schema_id

if TYPE_CHECKING:
    from ..fingerprint_settings import FingerprintResult
    from ..licensing import IssuedCopy
    from ..scan import ScanSummary


def envelope(kind: str, **payload: Any) -> dict[str, Any]:
    """``{"schema": "ipguard-onnx/KIND/v1", "tool": "ipguard-onnx", "version": ..., **payload}``: every JSON
    document the CLI writes names the schema it follows (``schemas``)."""
    return {"schema": schema_id(kind), "tool": "ipguard-onnx", "version": __version__, **payload}


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, default=str)


def audit_row(result: AuditResult) -> dict[str, Any]:
    row = dataclasses.asdict(result)
    row["matched"] = result.matched
    row["providers"] = list(result.providers)
    row["input_adaptation"] = list(result.input_adaptation)
    return row


def audit_document(results: Sequence[AuditResult]) -> dict[str, Any]:
    """``{"tool", "version", "created_at", "results": [one row per suspect × fingerprint]}``
    (docs/guides/verdict.md)."""
    created = min((r.audited_at for r in results if r.audited_at), default="")
    return envelope("audit", created_at=created, results=[audit_row(r) for r in results])


def audit_json(results: Sequence[AuditResult], document: dict[str, Any] | None = None) -> str:
    return _dumps(document if document is not None else audit_document(results))


def fingerprint_json(result: FingerprintResult) -> str:
    row = dataclasses.asdict(result)
    row["bundle_path"] = str(result.bundle_path)
    row["providers"] = list(result.providers)
    return _dumps(envelope("fingerprint", fingerprint=row))


def bundle_json(bundle: Bundle) -> str:
    return _dumps(
        envelope(
            "inspect",
            fingerprint=bundle.name,
            sha256=bundle.sha256,
            signature="valid",
            signer_key_id=bundle.signer_key_id,
            signer_pinned=bundle.signer_pinned,
            points=len(bundle.points),
            metadata=dict(sorted(bundle.metadata.items())),
        )
    )


def evaluation_json(evaluation: Evaluation) -> str:
    """Top-level ``aruc``, ``gap``, ``roc_auc`` and TPR at 1 %/5 % FPR, and one row per suspect with
    ``suspect``, ``group``, ``matching_rate``."""
    hard = evaluation.hard_positive_robustness
    return _dumps(
        envelope(
            "evaluate",
            fingerprint=evaluation.fingerprint,
            threshold=evaluation.threshold,
            aruc=evaluation.aruc,
            gap=evaluation.gap,
            robustness=evaluation.robustness,
            uniqueness=evaluation.uniqueness,
            hard_positive_robustness=None if np.isnan(hard) else hard,
            roc_auc=None if np.isnan(evaluation.roc_auc) else evaluation.roc_auc,
            tpr_at_1_percent_fpr=None if np.isnan(evaluation.tpr_at_1_percent_fpr) else evaluation.tpr_at_1_percent_fpr,
            tpr_at_5_percent_fpr=None if np.isnan(evaluation.tpr_at_5_percent_fpr) else evaluation.tpr_at_5_percent_fpr,
            r=evaluation.r,
            rows=[dataclasses.asdict(row) for row in evaluation.rows],
        )
    )


def calibration_json(result: Calibration) -> str:
    row = dataclasses.asdict(result)
    row["bundle_path"] = str(result.bundle_path)
    return _dumps(envelope("calibrate", calibration=row))


def issued_json(result: IssuedCopy) -> str:
    row = dataclasses.asdict(result)
    row["model_path"] = str(result.model_path)
    row["registry_bundle"] = str(result.registry_bundle)
    row["accuracy_change_points"] = result.accuracy_change
    return _dumps(envelope("issue", issued=row))


def scan_json(summary: ScanSummary) -> str:
    """The scan's summary; the results themselves are the journal's lines (docs/getting-started/hub.md)."""
    row = dataclasses.asdict(summary)
    row["journal"] = str(summary.journal)
    return _dumps(envelope("scan", scan=row))
