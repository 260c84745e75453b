"""Audit speed (BENCHMARKS.md, "Audit"): a whole audit process next to a bare onnxruntime import,
and points per second for a folder of 100 bundles against one suspect.

    python benchmarks/audit_speed.py [--repeats 10] [--bundles 100]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ipguard_onnx import demo, fingerprint, load_bundle
from ipguard_onnx.audit import audit_many
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key, write_keypair


def wall(command: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return times


def quickstart_models(folder: Path) -> Ed25519PrivateKey:
    """The quickstart's target and a fine-tuned, pruned copy (target.onnx, pirated.onnx), and a fresh key."""
    x, y = demo.digits()
    target = demo.train(demo.digits_cnn(seed=0), x, y, seed=0)
    demo.export_onnx(target, x, folder / "target.onnx")
    demo.export_onnx(demo.pruned(demo.fine_tuned(target, x, y, seed=1), 0.2), x, folder / "pirated.onnx")
    return load_private_key(write_keypair(folder / "k.pem", folder / "k.pub.pem").private_path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--bundles", type=int, default=100)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ipguard-audit-bench-"))
    key = quickstart_models(folder)
    bundles = folder / "bundles"
    started = time.perf_counter()
    for seed in range(args.bundles):
        fingerprint(
            folder / "target.onnx",
            bundles / f"fp{seed:03d}.safetensors",
            signing_key=key,
            settings=FingerprintSettings(seed=seed),
        )
    print(f"made {args.bundles} bundles of 100 points in {time.perf_counter() - started:.1f} s")

    audit_cmd = [
        sys.executable,
        "-m",
        "ipguard_onnx",
        "audit",
        str(folder / "pirated.onnx"),
        "-f",
        str(bundles / "fp000.safetensors"),
        "--format",
        "json",
    ]
    bare = [sys.executable, "-c", "import onnxruntime"]
    audit_times, bare_times = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        audit_times += wall(audit_cmd, 1)
        bare_times += wall(bare, 1)
    print(
        f"whole audit process (1 bundle, 100 points): median {statistics.median(audit_times):.3f} s, "
        f"min {min(audit_times):.3f} s over {args.repeats} runs"
    )
    print(
        f"bare python -c 'import onnxruntime':         median {statistics.median(bare_times):.3f} s, "
        f"min {min(bare_times):.3f} s"
    )

    loaded = [load_bundle(path) for path in sorted(bundles.glob("*.safetensors"))]
    started = time.perf_counter()
    results = audit_many(loaded, [folder / "pirated.onnx"])
    seconds = time.perf_counter() - started
    points = sum(r.points_queried for r in results)
    rate = points / seconds
    print(f"in process: {len(results)} bundles × 1 suspect, {points} points in {seconds:.2f} s = {rate:,.0f} points/s")
    folder_cmd = [
        sys.executable,
        "-m",
        "ipguard_onnx",
        "audit",
        str(folder / "pirated.onnx"),
        "--fingerprints",
        str(bundles),
        "--format",
        "json",
    ]
    folder_times = wall(folder_cmd, 3)
    print(
        f"whole process, --fingerprints with {args.bundles} bundles: median {statistics.median(folder_times):.2f} s "
        f"= {points / statistics.median(folder_times):,.0f} points/s"
    )


if __name__ == "__main__":
    main()
