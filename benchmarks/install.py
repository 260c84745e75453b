"""Installs by role (BENCHMARKS.md, "Install by role"): install time and installed size of each extra in a
fresh virtualenv, then the whole `audit` process of the auditor's install beside a bare
`python -c "import onnxruntime"` in that same virtualenv, interleaved.

    python benchmarks/install.py [--roles cpu dev] [--repeats 15] [--keep DIR]

pip's cache is warmed by one untimed install of each role first ("from a warm pip cache", as the aim
says); then each role is installed, timed, into a new virtualenv. Needs the package index (or a warm cache).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _venv(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    return folder


def _install(venv: Path, role: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", f"{ROOT}[{role}]"],
        check=True,
        env=dict(os.environ, VIRTUAL_ENV=str(venv)),
    )
    return time.perf_counter() - started


def _size_mb(folder: Path) -> float:
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 1e6


def _site_packages(venv: Path) -> Path:
    (site,) = (venv / "lib").glob("python3*/site-packages")
    return site


def _audit_files(folder: Path) -> tuple[Path, Path]:
    """The quickstart's models (``audit_speed.quickstart_models``) and a signed 100-point bundle of the target."""
    from audit_speed import quickstart_models

    from ipguard_onnx import fingerprint
    from ipguard_onnx.fingerprint import FingerprintSettings

    key = quickstart_models(folder)
    bundle = folder / "fp.safetensors"
    fingerprint(folder / "target.onnx", bundle, signing_key=key, settings=FingerprintSettings(seed=0))
    return folder / "pirated.onnx", bundle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--roles", nargs="+", default=["cpu", "dev"])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="make the virtualenvs here and keep them")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ipguard-install-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, virtualenvs under {folder}")
    for role in args.roles:
        _install(_venv(folder / f"warm-{role}"), role)  # warms pip's cache (and builds ipguard-onnx once)
        shutil.rmtree(folder / f"warm-{role}")
        venv = _venv(folder / role)
        seconds = _install(venv, role)
        site = _size_mb(_site_packages(venv))
        print(
            f"[{role}] install {seconds:.1f} s from a warm cache; site-packages {site:.0f} MB, "
            f"whole virtualenv {_size_mb(venv):.0f} MB"
        )

    if "cpu" not in args.roles:
        return
    venv = folder / "cpu"
    suspect, bundle = _audit_files(folder)
    audit = [str(venv / "bin" / "ipguard-onnx"), "audit", str(suspect), "-f", str(bundle), "--format", "json"]
    bare = [str(venv / "bin" / "python"), "-c", "import onnxruntime"]
    from audit_speed import wall

    wall(audit, 2), wall(bare, 2)  # warm the page cache for both
    audit_times, bare_times = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        audit_times += wall(audit, 1)
        bare_times += wall(bare, 1)
    a, b = statistics.median(audit_times), statistics.median(bare_times)
    print(f"[cpu] whole audit process (1 bundle, 100 points): median {a:.3f} s (min {min(audit_times):.3f} s)")
    print(f"[cpu] bare python -c 'import onnxruntime':         median {b:.3f} s (min {min(bare_times):.3f} s)")
    print(f"[cpu] ratio of medians {a / b:.2f}x over {args.repeats} interleaved runs")


if __name__ == "__main__":
    main()
