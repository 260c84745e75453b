"""Scan throughput on the real-world corpus (BENCHMARKS.md, "A scan of the real-world corpus (issue 28)"): every
classifier ``benchmarks/realworld.py`` knows, as a hub, against bundles of some of them.

    python benchmarks/scan_corpus.py [--copies 1] [--repeats 2] [--bundles oww-alexa ppocr-cls ...]

The hub: each corpus model (its files hard-linked, extra data files included) under ``--copies`` names, in
``benchmarks/out/realworld/scan-hub-COPIES``. The bundles: 100-point fingerprints of the ``--bundles`` models
with the corpus's own settings (seed 0), made once into ``benchmarks/out/realworld/scan-bundles``. Each
configuration is its own ``ipguard-onnx scan`` process (``scan_speed.py``'s), with a one-suspect scan for the
fixed cost; the rate once running is (N − 1) / (wall_N − wall_1). Then where the time went: each suspect's
rows' seconds summed, by suspect, and what the rows say (verdicts, failures, points asked).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import realworld  # noqa: E402
from scan_speed import CONFIGURATIONS, scan_process  # noqa: E402

from ipguard_onnx import fingerprint  # noqa: E402
from ipguard_onnx.errors import IPGuardError  # noqa: E402

BUNDLED = (
    "oww-alexa",
    "oww-hey-jarvis",
    "oww-hey-marvin",
    "oww-hey-rhasspy",
    "oww-hey-mycroft-0.4.0",
    "ppocr-cls",
    "mtcnn-rnet",
    "mtcnn-onet",
    "atspm-function",
)
"""Corpus models whose 100-point fingerprints take seconds, not minutes (BENCHMARKS.md, "Real-world corpus")."""


def _hub(copies: int) -> tuple[Path, int]:
    """Every corpus model's folder, hard-linked (or copied) ``copies`` times; the number of suspects."""
    hub = realworld.CACHE / f"scan-hub-{copies}"
    models = [realworld.fetch(model).parent for model in realworld.CORPUS]
    for folder in models:
        for copy in range(copies):
            target = hub / f"{folder.name}-{copy}"
            if target.exists():
                continue
            staging = hub / f".{folder.name}-{copy}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            for source in folder.iterdir():
                try:
                    os.link(source, staging / source.name)
                except OSError:
                    shutil.copy2(source, staging / source.name)
            staging.rename(target)
    return hub, len(models) * copies


def _bundles(names: list[str]) -> Path:
    """100-point fingerprints of ``names`` (corpus settings, seed 0), made once."""
    folder = realworld.CACHE / "scan-bundles"
    folder.mkdir(parents=True, exist_ok=True)
    by_name = {model.name: model for model in realworld.CORPUS}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise SystemExit(f"not in the corpus: {', '.join(unknown)}")
    for name in names:
        path = folder / f"{name}.fingerprint.safetensors"
        if path.exists():
            continue
        model = by_name[name]
        settings, data_path = realworld.settings_for(model, n=100)
        try:
            key = realworld.signing_key()
            fingerprint(realworld.fetch(model), path, signing_key=key, settings=settings, data_path=data_path)
        except IPGuardError as error:
            raise SystemExit(f"{name}: {error}") from None
        print(f"fingerprinted {name}", flush=True)
    for extra in folder.glob("*.safetensors"):
        if extra.name.removesuffix(".fingerprint.safetensors") not in names:
            extra.unlink()
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--bundles", nargs="*", default=list(BUNDLED))
    parser.add_argument("--configurations", nargs="*", default=["one process", "one process, every point"])
    args = parser.parse_args()
    hub, suspects = _hub(args.copies)
    bundles = _bundles(args.bundles)
    print(
        f"{suspects} suspects ({len(realworld.CORPUS)} corpus models × {args.copies}) × {len(args.bundles)} bundles "
        f"of 100 points; {os.cpu_count()} cores, python {sys.version.split()[0]}"
    )
    work = Path(tempfile.mkdtemp(prefix="ipguard-scan-corpus-"))
    single = work / "single"
    single.mkdir()
    first = sorted(hub.iterdir())[0]
    shutil.copytree(first, single / first.name)
    walls: dict[str, list[float]] = defaultdict(list)
    fixed: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.repeats):
        for name in args.configurations:
            threads, *extra = CONFIGURATIONS[name]
            options = [str(option) for option in extra]
            walls[name].append(scan_process(hub, bundles, work / f"{name}.jsonl", threads, *options))
            fixed[name].append(scan_process(single, bundles, work / f"{name}-1.jsonl", threads, *options))
    cores = os.cpu_count() or 1
    print(f"medians of {args.repeats} runs, configurations interleaved")
    print("| configuration | whole scan | fixed cost (1-suspect scan) | suspects/s once running | per core |")
    print("|---|---|---|---|---|")
    for name in args.configurations:
        wall, one = statistics.median(walls[name]), statistics.median(fixed[name])
        rate = (suspects - 1) / max(wall - one, 1e-9)
        print(f"| {name} | {wall:.1f} s | {one:.1f} s | {rate:.2f} | {rate / cores:.2f} |")
    for name in args.configurations:
        rows = [json.loads(line) for line in (work / f"{name}.jsonl").read_text().splitlines()]
        assert len(rows) == suspects * len(args.bundles), f"{name}: a pair is missing or duplicated"
        statuses = Counter(row["status"] for row in rows)
        verdicts = Counter(row["verdict"] for row in rows if row["verdict"])
        asked = sum(row["points_queried"] for row in rows) / max(1, sum(row["points_in_bundle"] for row in rows))
        print(f"{name}: statuses {dict(statuses)}; verdicts {dict(verdicts)}; {asked:.1%} of the points asked")
        seconds: dict[str, float] = defaultdict(float)
        for row in rows:
            seconds[Path(row["suspect"]).parent.name] += row["seconds"]
        total = sum(seconds.values())
        slowest = sorted(seconds.items(), key=lambda item: -item[1])[:8]
        print(
            f"  audit seconds summed over rows: {total:.1f} s; slowest suspects: "
            + ", ".join(f"{suspect} {value:.1f} s" for suspect, value in slowest)
        )
        matches = sorted(
            (Path(row["suspect"]).parent.name, row["fingerprint"]) for row in rows if row["verdict"] == "match"
        )
        print("  matches: " + "; ".join(f"{suspect} ~ {bundle}" for suspect, bundle in matches))


if __name__ == "__main__":
    main()
