"""What a command writes: never one of its own inputs, always atomically (SECURITY.md "Nothing is lost").

``check_outputs`` refuses an output that is (or would replace) a file the command reads; ``write_atomic``
writes through a temporary file in the same folder and ``os.replace``, so a failed or interrupted write
leaves the old file whole. Both raise ``UsageError`` with one line (exit 2).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .errors import UsageError
from .text import shown

PathLike = str | os.PathLike[str]


def same_file(first: PathLike, second: PathLike) -> bool:
    """Whether two paths name one file: the same inode when both exist (hard links, symlinks, ``./``),
    else the same absolute path with symlinks in its folders followed."""
    try:
        return os.path.samefile(first, second)
    except (OSError, ValueError):
        pass
    try:
        return os.path.realpath(first) == os.path.realpath(second)
    except (OSError, ValueError):
        return os.path.abspath(first) == os.path.abspath(second)


def check_outputs(outputs: Mapping[str, PathLike | None], inputs: Iterable[tuple[str, PathLike | None]]) -> None:
    """Refuse an output path that names an input of the same command, or another output of it.

    ``outputs`` and ``inputs`` name each path by the option that gave it (``--output``, ``MODEL``), so
    the one-line error says which two collide.
    """
    named_inputs = [(name, path) for name, path in inputs if path is not None]
    given = [(name, path) for name, path in outputs.items() if path is not None]
    for index, (name, path) in enumerate(given):
        for input_name, input_path in named_inputs:
            if same_file(path, input_path):
                raise UsageError(
                    f"{name} {shown(os.fspath(path))} is {input_name} {shown(os.fspath(input_path))}, an input of "
                    "this command: writing it would destroy that file; choose another path"
                )
        for other_name, other in given[index + 1 :]:
            if same_file(path, other):
                raise UsageError(
                    f"{name} and {other_name} are the same file {shown(os.fspath(path))}; choose two paths"
                )


def check_writable_location(path: PathLike, option: str) -> None:
    """Refuse before any work an output that can never be written: a folder, or a path under a file."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {shown(os.fspath(path))} is a folder; pass a file path")
    for parent in target.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{option} {shown(os.fspath(path))} lies under {shown(str(parent))}, which is a file")
            return


REPORT = "an ipguard-onnx report"
PNG = "a PNG image"
PEM = "a PEM key"


def _head(path: Path, size: int = 4096) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


MAX_REPORT_BYTES = 64 << 20


def _is_report(path: Path) -> bool:
    """A report this tool wrote: a JSON envelope saying ``"tool": "ipguard-onnx"`` (SARIF: its driver), an
    in-toto attestation (DSSE envelope), or an HTML evidence report titled ``ipguard-onnx …``.
    A scan journal or a settings file that merely mentions the name is no report."""
    if path.stat().st_size > MAX_REPORT_BYTES:
        return False
    head = _head(path)
    if head.startswith(b"<!DOCTYPE html>") and b"<title>ipguard-onnx " in head:  # an HTML evidence report
        return True
    document = json.loads(path.read_bytes())
    if not isinstance(document, dict):
        return False
    if document.get("tool") == "ipguard-onnx" or document.get("payloadType") == "application/vnd.in-toto+json":
        return True
    runs = document.get("runs")
    first = runs[0] if isinstance(runs, list) and runs else None
    driver = first.get("tool", {}).get("driver", {}) if isinstance(first, dict) else None
    return isinstance(driver, dict) and driver.get("name") == "ipguard-onnx"


LOOKS_LIKE: dict[str, Callable[[Path], bool]] = {
    REPORT: _is_report,
    PNG: lambda path: _head(path, 8) == b"\x89PNG\r\n\x1a\n",
    PEM: lambda path: _head(path, 64).lstrip().startswith(b"-----BEGIN"),
}
"""How each kind of output is recognised when a command is about to replace one (``check_replaceable``)."""


def check_replaceable(
    path: PathLike | None, option: str, kind: str, looks_like: Callable[[Path], bool] | None = None
) -> None:
    """An existing output is replaced only when it is what the command writes (a report by a report, a key
    by a key): a model, a bundle or notes given as ``--output`` by mistake are refused before any work."""
    if path is None:
        return
    target = Path(path)
    check_writable_location(target, option)
    if not target.is_file() or target.stat().st_size == 0:
        return
    try:
        recognised = (looks_like or LOOKS_LIKE[kind])(target)
    except (OSError, ValueError, AttributeError, TypeError, IndexError, RecursionError):
        recognised = False
    if not recognised:
        raise UsageError(
            f"{option} {shown(os.fspath(path))} exists and is not {kind}: it is not replaced; remove it or "
            "choose another path"
        )


def check_regular_file(path: PathLike, option: str) -> None:
    """Refuse an input that exists but is no regular file or folder (a FIFO, a device): reading it could
    wait for ever."""
    target = Path(path)
    if target.exists() and not target.is_file() and not target.is_dir():
        raise UsageError(f"{option} {shown(os.fspath(path))} is not a regular file (a pipe or a device); pass a file")


def _write_stream(path: Path, data: bytes, option: str) -> None:
    """Write to a pipe or device; a named pipe nobody reads is refused at once, not waited on for ever."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        reason = "a pipe nobody reads" if error.errno == errno.ENXIO else error.strerror
        raise UsageError(f"cannot write {option} {shown(os.fspath(path))}: {reason}") from None
    try:
        os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    except BrokenPipeError:
        raise
    except OSError as error:
        raise UsageError(f"cannot write {option} {shown(os.fspath(path))}: {error.strerror}") from None


def write_atomic(
    path: PathLike, data: bytes, *, option: str = "--output", mode: int = 0o644, stream: bool = False
) -> None:
    """Write ``data`` to ``path`` through a temporary file in its folder: readers see the old file or the
    new one, never half of it, and a failure leaves the old file as it was. A symlink is written through
    (the link stays). With ``stream``, a pipe or device (``/dev/stdout | head``) is written as a stream;
    without it such an output is refused — it is never replaced by a file."""
    link = Path(path)
    check_writable_location(link, option)
    if link.exists() and not link.is_file():  # stat through the link: /dev/stdout is this process's stdout
        if not stream:
            raise UsageError(f"{option} {shown(os.fspath(path))} is not a regular file (a pipe, device or socket)")
        _write_stream(link, data, option)
        return
    target = Path(os.path.realpath(link))
    temporary: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
        temporary = None
    except OSError as error:
        raise UsageError(
            f"cannot write {option} {shown(os.fspath(path))}: {error.strerror or type(error).__name__}"
        ) from None
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
