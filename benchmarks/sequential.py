"""Sequential audits (BENCHMARKS.md, "Sequential audits"): queries to a verdict, and whether the verdict equals
the fixed-n audit's, on every suspect of the zoos an earlier ``run_zoo.py`` left; then against a rate-limited
prediction API on loopback that answers 429 with Retry-After.

    python benchmarks/sequential.py [--worlds digits wine fashion] [--seeds 0 1 2]
        [--configs "ipguard-RL_k=1" "ipguard-TR_unique_k=1"] [--batch 10] [--verdict-error 0.01]

Copies are the zoo's positives and hard positives (fine-tuned, pruned, quantized, distilled, extracted);
independent models its negatives. Each bundle is audited at its own threshold.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ipguard_onnx import audit, load_bundle  # noqa: E402
from ipguard_onnx.models import HttpClassifier, as_classifier  # noqa: E402
from ipguard_onnx.sequential import DEFAULT_BATCH, DEFAULT_VERDICT_ERROR, SequentialSettings  # noqa: E402
from tests.http_server import Behaviour, PredictionServer  # noqa: E402


def _summary(queries: list[int], points: int) -> str:
    if not queries:
        return "—"
    median = statistics.median(queries)
    return f"{median:.0f} ({median / points:.0%}) / {max(queries)} ({max(queries) / points:.0%})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worlds", nargs="+", default=["digits", "wine", "fashion"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=["ipguard-RL_k=1", "ipguard-TR_unique_k=1"])
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--verdict-error", type=float, default=DEFAULT_VERDICT_ERROR)
    parser.add_argument("--rate-limit", type=float, default=5.0, help="requests per second the loopback API allows")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    settings = SequentialSettings(batch=args.batch, verdict_error=args.verdict_error)
    rows: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    disagreements: list[str] = []
    counted: dict[tuple[str, str], int] = defaultdict(int)
    points_of: dict[tuple[str, str], int] = {}
    for world in args.worlds:
        for seed in args.seeds:
            folder = args.out / f"{world}-seed{seed}"
            if not (folder / "manifest.json").exists():
                print(f"skip {folder.name}: no zoo (run benchmarks/run_zoo.py --worlds {world} first)")
                continue
            suspects = json.loads((folder / "manifest.json").read_text())["suspects"]
            for config in args.configs:
                path = folder / f"fp-{config}.safetensors"
                if not path.exists():
                    print(f"skip {folder.name} {config}: no bundle")
                    continue
                bundle = load_bundle(path)
                points_of[(world, config)] = len(bundle.points)
                for name, role, _family in suspects:
                    classifier = as_classifier(folder / name, num_classes=bundle.num_classes)
                    fixed = audit(bundle, classifier)
                    early = audit(bundle, classifier, sequential=settings)
                    kind = "independent" if role == "negative" else "copy"
                    verdict_kind = f"{kind}, fixed verdict {fixed.verdict}"
                    rows[(world, config)][verdict_kind].append(early.points_queried)
                    counted[(world, config)] += 1
                    if early.verdict != fixed.verdict:
                        disagreements.append(
                            f"{world} seed {seed} {config} {name}: fixed {fixed.verdict} ({fixed.matching_rate:.2f}),"
                            f" sequential {early.verdict} after {early.points_queried}"
                        )
                print(f"{folder.name} {config}: {len(suspects)} suspects audited both ways", flush=True)

    print(f"\nsequential: batch {args.batch}, verdict error {args.verdict_error}; median / worst queries (share of n)")
    print("| world | bundle | suspects | group | count | median / worst queries |")
    print("|---|---|---|---|---|---|")
    for (world, config), groups in sorted(rows.items()):
        for group, queries in sorted(groups.items()):
            print(
                f"| {world} | {config} | {counted[(world, config)]} | {group} | {len(queries)} "
                f"| {_summary(queries, points_of[(world, config)])} |"
            )
    every = [q for groups in rows.values() for qs in groups.values() for q in qs]
    print(f"verdicts differing from the fixed-n audit: {len(disagreements)} of {len(every)}")
    for line in disagreements:
        print("  " + line)

    # A rate-limited prediction API on loopback: the digits seed-0 zoo, its first copy the fixed audit
    # calls a match and its first independent model.
    folder = args.out / "digits-seed0"
    path = folder / f"fp-{args.configs[0]}.safetensors"
    if not path.exists():
        return
    bundle = load_bundle(path)
    print(
        f"\nloopback API limited to {args.rate_limit:g} requests/s (429 + Retry-After beyond), batches of "
        f"{args.batch} points, {args.configs[0]} digits seed 0"
    )
    print("| suspect | mode | verdict | points sent | requests (429s) | wall time |")
    print("|---|---|---|---|---|---|")
    suspects = json.loads((folder / "manifest.json").read_text())["suspects"]
    copy = next(n for n, role, _ in suspects if role == "positive" and audit(bundle, folder / n).matched)
    independent = next(n for n, role, _ in suspects if role == "negative")
    for name in (copy, independent):
        for mode in ("fixed", "sequential"):
            behaviour = Behaviour(rate_limit=args.rate_limit)
            with PredictionServer(folder / name, behaviour) as server:
                remote = HttpClassifier(f"{server.base}/predict", batch_size=args.batch, retries=8)
                started = time.perf_counter()
                result = audit(bundle, remote, sequential=settings if mode == "sequential" else None)
                wall = time.perf_counter() - started
            print(
                f"| {name} | {mode} | {result.verdict} | {behaviour.answered_points} "
                f"| {behaviour.requests} ({behaviour.rejected}) | {wall:.1f} s |"
            )


if __name__ == "__main__":
    main()
