"""Scan throughput on a hub built from the quickstart's models (BENCHMARKS.md, "Scanning a model hub"):
suspects per second, and per core, for one ``ipguard-onnx scan`` process.

    python benchmarks/scan_hub.py [--copies 20] [--bundles 20] [--repeats 3] [--source DIR]

The hub: the quickstart's six digits models (target, pirated, innocent, three independent), each copied
``--copies`` times under other names; ``--bundles`` distinct bundles of the target (the demo bundle
calibrated at other false-accusation rates, so each has its own digest). Everything is made once under
``benchmarks/out/scan-hub``. ``--source DIR`` runs the scan from another checkout of the project (e.g. a
``git worktree`` of an earlier commit) for a before/after in one run on one machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "scan-hub"


def _cli(
    *arguments: object, source: Path = ROOT, check: bool = True, threads: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    environment = {**os.environ, "PYTHONPATH": str(source), "IPGUARD_ONNX_PROGRESS_SECONDS": "3600"}
    if threads is not None:  # onnxruntime's intra-op threads (ipguard-onnx reads OMP_NUM_THREADS)
        environment["OMP_NUM_THREADS"] = str(threads)
    completed = subprocess.run(
        [sys.executable, "-m", "ipguard_onnx", *map(str, arguments)], env=environment, capture_output=True
    )
    if check and completed.returncode not in (0, 1):
        raise SystemExit(completed.stderr.decode(errors="replace")[-2000:])
    return completed


def _hub(copies: int, bundles: int) -> tuple[Path, Path]:
    demo = OUT / "demo"
    if not (demo / "demo-target.fingerprint.safetensors").is_file():
        subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--out", str(demo)], check=True)
    models = [demo / "demo-target.onnx", demo / "pirated.onnx", demo / "innocent.onnx"]
    models += sorted((demo / "independent").glob("*.onnx"))
    hub = OUT / f"hub-{copies}"
    if not hub.is_dir():
        hub.mkdir(parents=True)
        for model in models:
            for copy in range(copies):
                shutil.copy(model, hub / f"{model.stem}-{copy}.onnx")
    folder = OUT / f"bundles-{bundles}"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        for index in range(bundles):
            _cli(
                "calibrate",
                demo / "demo-target.fingerprint.safetensors",
                "--negative",
                demo / "independent",
                "--key",
                demo / "demo-key.pem",
                "--false-accusation-rate",
                f"{(index + 1) * 1e-7:.1e}",
                "-o",
                folder / f"bundle-{index}.safetensors",
            )
    return hub, folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--bundles", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--source", type=Path, action="append", help="a checkout to run the scan from (repeatable)")
    parser.add_argument("--threads", type=int, help="onnxruntime threads (per core = rate / threads) [default: all]")
    args = parser.parse_args()
    hub, folder = _hub(args.copies, args.bundles)
    suspects = len(list(hub.glob("*.onnx")))
    sources = args.source or [ROOT]
    cores = args.threads or os.cpu_count() or 1
    print(f"{suspects} suspects × {args.bundles} bundles, {cores} core(s), medians of {args.repeats} runs", flush=True)
    times: dict[Path, list[float]] = {source: [] for source in sources}
    for _ in range(args.repeats):
        for source in sources:  # interleaved: a slower minute hits every source alike
            journal = OUT / "journal.jsonl"
            journal.unlink(missing_ok=True)
            started = time.perf_counter()
            completed = _cli("scan", hub, "--fingerprints", folder, "-o", journal, source=source, threads=args.threads)
            times[source].append(time.perf_counter() - started)
            assert completed.returncode == 1, completed.stderr[-500:]  # the hub holds copies: matches
            assert len(journal.read_text().splitlines()) == suspects * args.bundles
    for source in sources:
        wall = statistics.median(times[source])
        print(
            f"{source}: {wall:.2f} s, {suspects / wall:.1f} suspects/s, {suspects / wall / cores:.1f} per core, "
            f"{suspects * args.bundles / wall:.0f} audits/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
