"""Which screen rounds (``audit.SCREEN_ROUNDS``) a scan should use (BENCHMARKS.md, "Finer rounds"): every model of
a zoo against its scan bundles, in process, once per setting of the rounds, interleaved; milliseconds a suspect,
the share of the points asked, and the verdict counts (which must not change with the rounds).

    python benchmarks/scan_speed.py --world fashion --bundles 30 --calibrated ...   # makes the bundles first
    python benchmarks/screen_rounds.py [--world fashion] [--calibrated] [--repeats 2]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ipguard_onnx import load_bundle  # noqa: E402
from ipguard_onnx.scan import ScanOptions, scan_suspect  # noqa: E402

SETTINGS = (
    (0.2, 0.4, 1.0),
    (0.1, 0.2, 0.4, 1.0),
    (0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
    (0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0),
    (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="fashion")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibrated", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    zoo = ROOT / "benchmarks" / "out" / f"{args.world}-seed{args.seed}"
    folder = zoo / ("scan-bundles-calibrated" if args.calibrated else "scan-bundles")
    bundles = [load_bundle(path) for path in sorted(folder.glob("*.safetensors"))]
    if not bundles:
        raise SystemExit(f"no bundles in {folder}: run benchmarks/scan_speed.py first")
    suspects = sorted(str(path) for path in zoo.glob("*.onnx"))
    screen = importlib.import_module("ipguard_onnx.audit.screen")  # the package re-exports a function `audit`
    options = ScanOptions()
    for suspect in suspects:  # warm: imports, caches
        scan_suspect(suspect, bundles, options)
    seconds: dict[tuple[float, ...], list[float]] = {setting: [] for setting in SETTINGS}
    shares: dict[tuple[float, ...], float] = {}
    verdicts: dict[tuple[float, ...], Counter[str]] = {}
    for _ in range(args.repeats):
        for setting in SETTINGS:
            screen.SCREEN_ROUNDS = setting
            asked = total = 0
            counted: Counter[str] = Counter()
            started = time.perf_counter()
            for suspect in suspects:
                for row in scan_suspect(suspect, bundles, options):
                    asked, total = asked + row.points_queried, total + row.points_in_bundle
                    counted[row.verdict or row.status] += 1
            seconds[setting].append(time.perf_counter() - started)
            shares[setting], verdicts[setting] = asked / max(total, 1), counted
    print(f"{len(suspects)} suspects × {len(bundles)} bundles ({folder.name}); medians of {args.repeats}")
    print("| rounds | ms a suspect | points asked | verdicts |")
    print("|---|---|---|---|")
    for setting in SETTINGS:
        milliseconds = 1000 * statistics.median(seconds[setting]) / len(suspects)
        print(f"| {setting} | {milliseconds:.1f} | {shares[setting]:.1%} | {dict(sorted(verdicts[setting].items()))} |")


if __name__ == "__main__":
    main()
