"""Scan throughput (BENCHMARKS.md, "Scanning a model hub"): suspects per second for one process and for Ray
Data with 1 and 2 actor workers on the same suspects and bundles, and the costs a model of a
10⁴-suspect × 10³-bundle scan is built from.

    python benchmarks/scan_speed.py [--world digits] [--seed 0] [--copies 5] [--bundles 20] [--repeats 2]

Suspects: every model of an earlier ``run_zoo.py`` zoo folder, each copied ``--copies`` times under other
names (a hub holds many near-identical uploads); bundles: ``--bundles`` fingerprints of the zoo's target
(seeds 0, 1, …; 100 points each), made once and kept in the zoo folder. Each configuration runs as its
own ``ipguard-onnx scan`` process (Ray's start-up included, then reported apart).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ipguard_onnx import FingerprintSettings, audit, fingerprint, load_bundle  # noqa: E402
from ipguard_onnx.keys import load_private_key  # noqa: E402
from ipguard_onnx.models import as_classifier  # noqa: E402


def _bundles(zoo: Path, count: int) -> Path:
    folder = zoo / "scan-bundles"
    folder.mkdir(exist_ok=True)
    key = load_private_key(ROOT / "benchmarks" / "out" / "bench-key.pem")
    for seed in range(count):
        path = folder / f"fp-seed{seed:04d}.safetensors"
        if not path.exists():
            fingerprint(zoo / "target.onnx", path, signing_key=key, settings=FingerprintSettings(seed=seed))
    for extra in sorted(folder.glob("*.safetensors"))[count:]:
        extra.unlink()
    return folder


def _scan(hub: Path, bundles: Path, journal: Path, *ray: str) -> float:
    journal.unlink(missing_ok=True)
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "ipguard_onnx", "scan", str(hub), "--fingerprints", str(bundles), "--output",
         str(journal), "--format", "json", *ray],
        capture_output=True, text=True, env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"),
    )  # fmt: skip
    wall = time.perf_counter() - started
    if completed.returncode not in (0, 1, 3):
        raise SystemExit(f"scan failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--bundles", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    zoo = args.out / f"{args.world}-seed{args.seed}"
    if not (zoo / "manifest.json").exists():
        raise SystemExit(f"no zoo at {zoo}: run benchmarks/run_zoo.py --worlds {args.world} first")
    bundles = _bundles(zoo, args.bundles)
    work = Path(tempfile.mkdtemp(prefix="ipguard-scan-bench-"))
    hub = work / "hub"
    hub.mkdir()
    models = sorted(zoo.glob("*.onnx"))
    for copy in range(args.copies):
        for model in models:
            shutil.copy(model, hub / f"{model.stem}-{copy}.onnx")
    suspects = len(models) * args.copies
    print(f"{suspects} suspects ({len(models)} zoo models × {args.copies}) × {args.bundles} bundles of 100 points; "
          f"{os.cpu_count()} cores, python {sys.version.split()[0]}")  # fmt: skip

    # The cost model's parts, in process: opening a suspect, and one bundle's audit of an open suspect.
    loaded = [load_bundle(path) for path in sorted(bundles.glob("*.safetensors"))]
    opened, audited = [], []
    for model in models:
        started = time.perf_counter()
        classifier = as_classifier(model, num_classes=loaded[0].num_classes)
        opened.append(time.perf_counter() - started)
        started = time.perf_counter()
        for bundle in loaded:
            audit(bundle, classifier)
        audited.append((time.perf_counter() - started) / len(loaded))
    session, per_bundle = statistics.median(opened), statistics.median(audited)
    print(f"per suspect: open an onnxruntime session {session * 1e3:.1f} ms (median over {len(models)} models); "
          f"per bundle: one 100-point audit {per_bundle * 1e3:.2f} ms "
          f"= {per_bundle / 100 * 1e6:.1f} µs per point")  # fmt: skip

    configurations = {
        "one process": (),
        "Ray, 1 worker": ("--ray", "auto", "--workers", "1"),
        "Ray, 2 workers": ("--ray", "auto", "--workers", "2"),
    }
    walls: dict[str, list[float]] = {name: [] for name in configurations}
    for _ in range(args.repeats):
        for name, extra in configurations.items():
            walls[name].append(_scan(hub, bundles, work / f"{name}.jsonl", *extra))
    startup = min(walls["Ray, 1 worker"]) - min(walls["one process"])  # a rough bound, reported as such
    base = statistics.median(walls["one process"])
    print("| configuration | wall time (median) | suspects/s | vs one process |")
    print("|---|---|---|---|")
    for name, times in walls.items():
        wall = statistics.median(times)
        print(f"| {name} | {wall:.1f} s | {suspects / wall:.2f} | {base / wall:.2f}× |")
    rows = [json.loads(line) for line in (work / "Ray, 2 workers.jsonl").read_text().splitlines()]
    assert len(rows) == suspects * args.bundles, "a pair is missing or duplicated"
    print(f"(Ray's own start-up is inside its wall times; Ray 1 worker minus one process: {startup:.1f} s)")

    # The cost model for 10^4 suspects × 10^3 bundles × 100 points, from the in-process parts above.
    hub_suspects, hub_bundles = 10_000, 1_000
    core_seconds = hub_suspects * (session + hub_bundles * per_bundle)
    print(f"10^4 × 10^3: {hub_suspects} × ({session * 1e3:.1f} ms + {hub_bundles} × {per_bundle * 1e3:.2f} ms) = "
          f"{core_seconds / 3600:.1f} core-hours; on 1 core {core_seconds / 86400:.1f} days; "
          f"for one day: {max(1, round(core_seconds / 86400 + 0.5))} cores; for one hour: "
          f"{max(1, round(core_seconds / 3600 + 0.5))} cores")  # fmt: skip


if __name__ == "__main__":
    main()
