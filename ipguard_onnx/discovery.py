"""Discovery: what the user names on the command line, turned into suspects and bundles.

Suspects are paths, folders (every ``.onnx`` inside), quoted globs, manifests (one per line) and http(s)
URLs of prediction APIs; bundles are ``--fingerprint`` files, a ``--fingerprints`` folder and a
``--licensees`` registry. The CLI and the core (``scan``, ``models.as_classifier``) share these rules.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

from .errors import UsageError
from .files import check_regular_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from .bundle import Bundle

__all__ = [
    "bundle_paths",
    "is_url",
    "load_bundles",
    "local_files",
    "read_manifest",
    "suspect_names",
    "suspects",
]

URL_SCHEMES = ("http://", "https://")


def is_url(reference: object) -> TypeGuard[str]:
    """Whether a suspect reference is the URL of a prediction API (http or https)."""
    return isinstance(reference, str) and reference.startswith(URL_SCHEMES)


def suspect_names(patterns: Iterable[str], option: str, *, recursive: bool) -> list[str]:
    """URLs as given; folders (every .onnx inside, below too when ``recursive``), quoted globs, and paths —
    even missing ones, which the audit reports; a folder or glob that finds nothing is a usage error."""
    found: list[str] = []
    for pattern in patterns:
        if is_url(pattern):
            found.append(pattern)
            continue
        path = Path(pattern)
        if path.is_dir():
            inside = path.rglob("*.onnx") if recursive else path.glob("*.onnx")
            matches = sorted(str(p) for p in inside if p.is_file())
        elif path.exists():  # a file named m[1].onnx is that file, not the pattern m1.onnx
            matches = [pattern]
        elif glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=recursive))
        else:
            matches = [pattern]
        if not matches:
            raise UsageError(f"{option} {pattern} matches no .onnx model")
        found.extend(matches)
    return found


def suspects(patterns: Iterable[str], option: str) -> list[str | Path]:
    """Suspects for ``audit``-like commands: paths (folders not searched below) and URLs kept as strings
    (the core opens them for each fingerprint's inputs, ``models.as_classifier``)."""
    return [found if is_url(found) else Path(found) for found in suspect_names(patterns, option, recursive=False)]


def local_files(references: Sequence[object]) -> list[tuple[str, Path]]:
    """Suspects that are files (not URLs), named as inputs for ``files.check_outputs``."""
    return [
        ("a suspect", Path(os.fspath(r))) for r in references if isinstance(r, (str, os.PathLike)) and not is_url(r)
    ]


def read_manifest(path: Path) -> list[str]:
    """A manifest: one suspect per line (path, glob, folder or URL); blank lines and ``#`` comments skipped.
    Relative paths are relative to the manifest's folder."""
    check_regular_file(path, "--manifest")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a byte-order mark is no part of a path
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--manifest {path} could not be read ({type(error).__name__}); pass a text file") from None
    entries = []
    for line in lines:
        entry = line.split("#", 1)[0].strip() if not line.lstrip().startswith("http") else line.strip()
        if not entry:
            continue
        if not is_url(entry) and not Path(entry).is_absolute():
            entry = str(path.parent / entry)
        entries.append(entry)
    return entries


def bundle_paths(fingerprints: Sequence[Path], folder: Path | None, licensees: Path | None = None) -> list[Path]:
    """The bundles named by ``--fingerprint`` (repeatable), ``--fingerprints DIR`` and ``--licensees DIR``:
    each once, in order; a folder that holds none is a usage error."""
    paths = list(fingerprints)
    if licensees is not None:
        if not licensees.is_dir():
            raise UsageError(f"--licensees {licensees} is not a folder; pass the registry folder given to 'issue'")
        found = sorted(licensees.glob("*.licensee.safetensors"))
        if not found:
            raise UsageError(f"--licensees {licensees} holds no .licensee.safetensors bundles (made by 'issue')")
        paths.extend(found)
    if folder is not None:
        if not folder.is_dir():
            raise UsageError(f"--fingerprints {folder} is not a folder; pass a folder of .safetensors bundles")
        found = sorted(folder.glob("*.safetensors"))
        if not found:
            raise UsageError(f"--fingerprints {folder} holds no .safetensors bundles")
        paths.extend(found)
    if not paths:
        raise UsageError("pass --fingerprint FILE (repeatable), --fingerprints DIR or --licensees DIR")
    # Each bundle once, in order; absolute, not resolved: a symlink loop is then "not found", not a crash.
    return list({Path(os.path.abspath(path)): path for path in paths}.values())


def load_bundles(paths: Sequence[Path], trusted_key: Ed25519PublicKey | None) -> list[Bundle]:
    """The bundles, each verified (and pinned to ``trusted_key`` when given)."""
    from .bundle import load_bundle

    return [load_bundle(path, trusted_key=trusted_key) for path in paths]
