"""atheris fuzz target: the bundle loader must refuse any bytes with an IPGuardError, nothing else.

    python tests/fuzz/fuzz_bundle.py -max_total_time=600 [corpus-dir]     (make fuzz)

Seeds: a real signed bundle (written on first run next to this file, in ``corpus/``). Any other
exception, a crash, or a hang is a finding; so is an accepted input that differs from a seed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from ipguard_onnx import IPGuardError, load_bundle

_SCRATCH = Path(tempfile.mkdtemp(prefix="ipguard-fuzz-")) / "input.safetensors"
_SEEDS: set[bytes] = set()


def test_one_input(data: bytes) -> None:
    _SCRATCH.write_bytes(data)
    try:
        load_bundle(_SCRATCH)
    except IPGuardError:
        return
    if data not in _SEEDS:
        raise AssertionError("the loader accepted bytes that are not a signed seed bundle")


def _seed_corpus(folder: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.signing import GOOD_METADATA, good_tensors, write_signed

    folder.mkdir(parents=True, exist_ok=True)
    seed = folder / "seed.safetensors"
    if not seed.exists():
        write_signed(seed, good_tensors(), GOOD_METADATA, Ed25519PrivateKey.generate())
    _SEEDS.update(p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name.startswith("seed"))


if __name__ == "__main__":
    arguments = list(sys.argv)
    folders = [a for a in arguments[1:] if not a.startswith("-")]
    if not folders:
        folders = [str(Path(__file__).resolve().parent / "corpus")]
        arguments.append(folders[0])
    _seed_corpus(Path(folders[0]))
    os.environ.setdefault("IPGUARD_ONNX_HOME", tempfile.mkdtemp(prefix="ipguard-fuzz-home-"))
    atheris.Setup(arguments, test_one_input)
    atheris.Fuzz()
