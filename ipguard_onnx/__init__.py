"""ipguard-onnx: prove that a deployed classifier is a copy of yours (IPGuard, Cao et al. AsiaCCS 2021).

The public API; everything else lives in submodules. Importing this package does not import torch.
"""

from __future__ import annotations

from ._version import __version__
from .audit import AuditResult, audit
from .bundle import Bundle, load_bundle
from .calibrate import Calibration, calibrate
from .errors import (
    AuditError,
    BundleError,
    IPGuardError,
    ModelLoadError,
    ReportError,
    SearchError,
    SignatureError,
    SigningKeyError,
    SurrogateError,
    UnsupportedModelError,
    UsageError,
)
from .evidence import sign_report, verify_report
from .fingerprint import FingerprintResult, FingerprintSettings, fingerprint
from .licensing import IssuedCopy, issue
from .models import Classifier, OnnxClassifier
from .types import Answers

__all__ = [
    "Answers",
    "AuditError",
    "AuditResult",
    "Bundle",
    "BundleError",
    "Calibration",
    "Classifier",
    "FingerprintResult",
    "FingerprintSettings",
    "IPGuardError",
    "IssuedCopy",
    "ModelLoadError",
    "OnnxClassifier",
    "ReportError",
    "SearchError",
    "SignatureError",
    "SigningKeyError",
    "SurrogateError",
    "UnsupportedModelError",
    "UsageError",
    "__version__",
    "audit",
    "calibrate",
    "fingerprint",
    "issue",
    "load_bundle",
    "sign_report",
    "verify_report",
]
