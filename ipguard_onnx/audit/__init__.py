"""Audit: ask a suspect for labels of the fingerprint points and compare (IPGuard's Verify, Section 3.2).

A suspect is anything that labels a batch: an ONNX file (networks and skl2onnx exports), an
onnxruntime session, a Python callable, or a remote prediction API (``models``). Never imports torch.

``single``: one bundle against one suspect; ``group``: several bundles against one opened suspect (``scan``)
and every suspect against every bundle; ``judge``: one audit's steps (question, answers, verdict, result);
``sequential_asking``: the sequential test's asking; ``screen``: a group audit's rounds; ``result``: what comes back.
"""

from .group import (
    SuspectGroup,
    audit_each,
    audit_group,
    audit_many,
    sequential_settings_for,
    shared_classes,
    suspect_groups,
)
from .judge import map_labels
from .result import (
    DEFAULT_MIN_ANSWERED,
    MIN_ANSWERED_POINTS,
    OUT_OF_RANGE_LIMIT,
    AuditOptions,
    AuditResult,
    Expectation,
    PartResult,
    Verdict,
    VerdictRule,
    check_false_accusation_rate,
    check_min_answered,
    check_threshold,
)
from .screen import SCREEN_ROUNDS
from .single import audit, audit_with

__all__ = [
    "DEFAULT_MIN_ANSWERED",
    "MIN_ANSWERED_POINTS",
    "OUT_OF_RANGE_LIMIT",
    "SCREEN_ROUNDS",
    "AuditOptions",
    "AuditResult",
    "Expectation",
    "PartResult",
    "SuspectGroup",
    "Verdict",
    "VerdictRule",
    "audit",
    "audit_each",
    "audit_group",
    "audit_many",
    "audit_with",
    "check_false_accusation_rate",
    "check_min_answered",
    "check_threshold",
    "map_labels",
    "sequential_settings_for",
    "shared_classes",
    "suspect_groups",
]
