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
    import numpy as np

    from ipguard_onnx.bundle import save_bundle
    from ipguard_onnx.keys import write_keypair

    folder.mkdir(parents=True, exist_ok=True)
    seed = folder / "seed.safetensors"
    if not seed.exists():
        keys = Path(tempfile.mkdtemp(prefix="ipguard-fuzz-key-"))
        pair = write_keypair(keys / "k.pem", keys / "k.pub.pem")
        from ipguard_onnx.keys import load_private_key

        metadata = {
            "format": "ipguard-onnx-fingerprint", "format_version": "1", "input_name": "x", "input_shape": "[4]",
            "input_layout": "ND", "input_dtype": "float32", "num_classes": "3", "threshold": "0.85",
        }  # fmt: skip
        tensors = {
            "points": np.zeros((2, 4), np.float32), "labels": np.array([0, 2], np.int64),
            "domain_low": np.zeros(4, np.float32), "domain_high": np.ones(4, np.float32),
        }  # fmt: skip
        save_bundle(seed, tensors, metadata, load_private_key(pair.private_path))
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
