"""What the process exit status means: one table for every command (docs/reference/exit-codes.md).

The core raises ``IPGuardError`` subclasses and returns results; this module alone turns them into
exit codes, so a CI step reads the same number for the same outcome whichever command ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

from .errors import IPGuardError, MissingDependencyError, SignatureError, SigningKeyError, UsageError

if TYPE_CHECKING:
    from .audit import AuditResult, Expectation
    from .scan import ScanSummary

__all__ = ["ExitCode", "audit_exit_code", "error_exit_code", "scan_exit_code"]


class ExitCode(IntEnum):
    """What the process exit status means (docs/reference/exit-codes.md)."""

    no_match = 0
    """No suspect matched; for the other commands: success. With --expect: every result as expected."""
    match = 1
    """A suspect matched; with --expect: a result was not as expected."""
    usage = 2
    input = 3
    """A missing or unsupported model, a malformed bundle, a failed surrogate, or an inconclusive audit."""
    trust = 4
    """A bad, missing or untrusted signature, or an unusable key."""
    internal = 5
    """An exception nobody planned (a bug here or in a dependency): never a verdict."""
    environment = 6
    """A package the command needs is not installed (onnxruntime: [cpu]/[gpu]; torch: [fingerprint])."""
    interrupted = 130
    """Ctrl-C (SIGINT): the command stopped and wrote nothing half-done (128 + SIGINT)."""
    output_closed = 141
    """The reader of stdout closed it before the output was written (``… | head -1``): no verdict delivered
    (128 + SIGPIPE, as the shell reports a process a closed pipe ended)."""


def error_exit_code(error: IPGuardError) -> ExitCode:
    """The exit code of an error: usage 2, trust 4, a missing package 6, every other stage 3."""
    if isinstance(error, MissingDependencyError):
        return ExitCode.environment
    if isinstance(error, UsageError):
        return ExitCode.usage
    if isinstance(error, (SignatureError, SigningKeyError)):
        return ExitCode.trust
    return ExitCode.input


def audit_exit_code(results: Sequence[AuditResult], expect: Expectation | None = None) -> ExitCode:
    """The audit's exit status.

    Without ``expect``: 1 if any suspect matches, else 3 if any audit is inconclusive, else 0.
    With ``expect``: 0 when every result is as expected, 1 when one is not, 3 if inconclusive.
    """
    from .audit import Expectation

    inconclusive = any(r.verdict == "inconclusive" for r in results)
    if expect is None:
        if any(r.matched for r in results):
            return ExitCode.match
    else:
        wanted = "match" if expect is Expectation.match else "no match"
        if any(r.verdict not in (wanted, "inconclusive") for r in results):
            return ExitCode.match
    return ExitCode.input if inconclusive else ExitCode.no_match


def scan_exit_code(summary: ScanSummary) -> ExitCode:
    """A scan's exit status: 5 if a pair ended in an internal error, else 1 on a match, else 3 if a pair
    failed, else 0."""
    if summary.internal_errors:
        return ExitCode.internal
    if summary.matches:
        return ExitCode.match
    return ExitCode.input if summary.errors else ExitCode.no_match
