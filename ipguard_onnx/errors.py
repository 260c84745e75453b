"""Errors: one base, one subclass per stage, each with the exit code the CLI uses.

Exit codes (README "Exit codes"): 0 no match, 1 match, 2 usage error, 3 input/model error,
4 signature or trust failure, 5 internal error.
"""

from __future__ import annotations

EXIT_NO_MATCH = 0
EXIT_MATCH = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_TRUST = 4
EXIT_INTERNAL = 5
"""An exception nobody planned (a bug here or in a dependency): never a verdict."""
EXIT_EXPECTATION_FAILED = 1
"""With --expect: a result was not what CI expected."""


class IPGuardError(Exception):
    """Base of every error ipguard-onnx raises on purpose; the message is one line for the user."""

    exit_code: int = EXIT_INPUT


class UsageError(IPGuardError):
    """An option value the user can fix (a malformed --domain, a bad --n)."""

    exit_code = EXIT_USAGE


class ModelLoadError(IPGuardError):
    """A model file is missing, unreadable, or not ONNX."""


class UnsupportedModelError(IPGuardError):
    """An ONNX model that is not a classifier ipguard-onnx can fingerprint or query."""


class SurrogateError(IPGuardError):
    """The ONNX graph could not be converted to PyTorch, or the conversion disagrees with onnxruntime."""


class SearchError(IPGuardError):
    """The boundary search could not produce fingerprint points."""


class BundleError(IPGuardError):
    """A fingerprint bundle is missing, malformed, or could not be written."""


class SignatureError(IPGuardError):
    """A bundle is unsigned, its signature does not verify, or its signer is not the trusted one."""

    exit_code = EXIT_TRUST


class SigningKeyError(IPGuardError):
    """A signing or public key is missing, malformed, or has the wrong password."""

    exit_code = EXIT_TRUST


class AuditError(IPGuardError):
    """A suspect could not be queried with the fingerprint's points."""


class ReportError(IPGuardError):
    """An audit report to verify is missing or not an ipguard-onnx JSON report."""
