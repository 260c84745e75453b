"""Errors: one base, one subclass per stage; the message is one line the user can act on.

Which exit code each one becomes is decided in one table (``exit_codes.ExitCode``, docs/reference/exit-codes.md).
"""

from __future__ import annotations


class IPGuardError(Exception):
    """Base of every error ipguard-onnx raises on purpose; the message is one line for the user."""


class UsageError(IPGuardError):
    """An option value the user can fix (a malformed --domain, a bad --n)."""


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


class SigningKeyError(IPGuardError):
    """A signing or public key is missing, malformed, or has the wrong password."""


class AuditError(IPGuardError):
    """A suspect could not be queried with the fingerprint's points."""


class ScanError(IPGuardError):
    """A scan's journal (its JSON Lines --output) cannot be read back or written."""


class ReportError(IPGuardError):
    """An audit report to verify is missing or not an ipguard-onnx JSON report."""


class MissingDependencyError(IPGuardError):
    """A package this command needs is not installed; the message names the extra that installs it."""


class DeadlineError(IPGuardError):
    """A model run, a remote audit or a wait ran past its deadline (``--model-timeout``, ``--deadline``)."""
