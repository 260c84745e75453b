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
from .cyclonedx import audit_cyclonedx
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
from .html import audit_html, evaluation_html, scan_html
from .sarif import audit_sarif

__all__ = [
    "outside_text",
    "AuditFormat",
    "DocumentFormat",
    "ReportFormat",
    "audit_cyclonedx",
    "audit_html",
    "evaluation_html",
    "scan_html",
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
    """``audit --format``: a human report, JSON (signable), SARIF for code-scanning views, one
    self-contained HTML evidence report (``html``), or a CycloneDX 1.6 ML-BOM fragment (``cyclonedx``)."""

    text = "text"
    json = "json"
    sarif = "sarif"
    html = "html"
    cyclonedx = "cyclonedx"


class ReportFormat(StrEnum):
    """``--format`` of scan and evaluate: a human report, JSON, or one self-contained HTML report."""

    text = "text"
    json = "json"
    html = "html"


class DocumentFormat(StrEnum):
    """``--format`` of fingerprint, inspect, calibrate and issue: a human report or JSON."""

    text = "text"
    json = "json"
