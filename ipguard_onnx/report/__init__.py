"""Output formats: the core's frozen results rendered for people (``console``), as one JSON envelope
(``documents``) or as SARIF (``sarif``). No logic lives here.

Each command has one format enum: ``AuditFormat`` for ``audit``, ``DocumentFormat`` for the others.
A new format is a new module here, a member of the enums that offer it, and a branch in the CLI.
"""

from __future__ import annotations

from enum import StrEnum

from .console import (
    outside_text,
    plot_evaluation,
    render_audit,
    render_bundle,
    render_calibration,
    render_evaluation,
    render_fingerprint,
    render_issued,
    render_scan,
)
from .documents import (
    audit_document,
    audit_json,
    bundle_json,
    calibration_json,
    envelope,
    evaluation_json,
    fingerprint_json,
    issued_json,
    scan_json,
)
from .sarif import audit_sarif

__all__ = [
    "outside_text",
    "AuditFormat",
    "DocumentFormat",
    "audit_document",
    "audit_json",
    "audit_sarif",
    "bundle_json",
    "calibration_json",
    "envelope",
    "evaluation_json",
    "fingerprint_json",
    "issued_json",
    "scan_json",
    "plot_evaluation",
    "render_audit",
    "render_bundle",
    "render_calibration",
    "render_evaluation",
    "render_fingerprint",
    "render_issued",
    "render_scan",
]


class AuditFormat(StrEnum):
    """``audit --format``: a human report, JSON (signable), or SARIF for code-scanning views."""

    text = "text"
    json = "json"
    sarif = "sarif"


class DocumentFormat(StrEnum):
    """``--format`` of fingerprint, inspect, evaluate, calibrate and issue: a human report or JSON."""

    text = "text"
    json = "json"
