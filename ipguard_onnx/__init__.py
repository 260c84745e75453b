"""ipguard-onnx: prove that a deployed classifier is a copy of yours (IPGuard, Cao et al. AsiaCCS 2021).

The public API; everything else lives in submodules. Names are imported on first use (PEP 562), so
``import ipguard_onnx`` costs almost nothing and an audit never imports torch or the search.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .audit import AuditOptions, AuditResult, audit, audit_many
    from .bundle import Bundle, BundlePart, load_bundle
    from .calibrate import Calibration, calibrate
    from .errors import (
        AuditError,
        BundleError,
        DeadlineError,
        IPGuardError,
        MissingDependencyError,
        ModelLoadError,
        ReportError,
        ScanError,
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
    from .models import Classifier, OnnxClassifier, OnnxSuspect
    from .parts import PartKind
    from .types import Answers

_HOMES = {
    "Answers": "types",
    "AuditError": "errors",
    "AuditOptions": "audit",
    "AuditResult": "audit",
    "Bundle": "bundle",
    "BundleError": "errors",
    "BundlePart": "bundle",
    "Calibration": "calibrate",
    "Classifier": "models",
    "DeadlineError": "errors",
    "FingerprintResult": "fingerprint",
    "FingerprintSettings": "fingerprint",
    "IPGuardError": "errors",
    "IssuedCopy": "licensing",
    "MissingDependencyError": "errors",
    "ModelLoadError": "errors",
    "OnnxClassifier": "models",
    "OnnxSuspect": "models",
    "PartKind": "parts",
    "ReportError": "errors",
    "ScanError": "errors",
    "SearchError": "errors",
    "SignatureError": "errors",
    "SigningKeyError": "errors",
    "SurrogateError": "errors",
    "UnsupportedModelError": "errors",
    "UsageError": "errors",
    "audit": "audit",
    "audit_many": "audit",
    "calibrate": "calibrate",
    "fingerprint": "fingerprint",
    "issue": "licensing",
    "load_bundle": "bundle",
    "sign_report": "evidence",
    "verify_report": "evidence",
}
"""Each public name and the submodule it lives in."""

__all__ = [
    "Answers",
    "AuditError",
    "AuditOptions",
    "AuditResult",
    "Bundle",
    "BundleError",
    "BundlePart",
    "Calibration",
    "Classifier",
    "DeadlineError",
    "FingerprintResult",
    "FingerprintSettings",
    "IPGuardError",
    "IssuedCopy",
    "MissingDependencyError",
    "ModelLoadError",
    "OnnxClassifier",
    "OnnxSuspect",
    "PartKind",
    "ReportError",
    "ScanError",
    "SearchError",
    "SignatureError",
    "SigningKeyError",
    "SurrogateError",
    "UnsupportedModelError",
    "UsageError",
    "__version__",
    "audit",
    "audit_many",
    "calibrate",
    "fingerprint",
    "issue",
    "load_bundle",
    "sign_report",
    "verify_report",
]


def __getattr__(name: str) -> Any:
    """Import a public name's submodule on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ipguard_onnx' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


class _PublicApi(types.ModuleType):
    """The package, where ``audit``, ``calibrate`` and ``fingerprint`` stay the functions.

    Importing a submodule sets the package attribute of the same name to the module; the public API
    names the function there, so that assignment is skipped (the module stays in ``sys.modules``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _HOMES.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _PublicApi
