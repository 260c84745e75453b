"""Measure every fingerprinting method on the zoo like the paper (Tables 4, 5 and 8).

    python benchmarks/run_zoo.py [--worlds digits wine] [--seeds 0 1 2] [--out benchmarks/out]

For each world and seed: build the zoo (benchmarks/zoo.py, cached), fingerprint its target with every
method and parameter of the grid (n = 100, -RL), evaluate against all suspects, and print
  * Table 4: the best ARUC per method (mean ± std over seeds, best parameter chosen on the mean),
  * Table 5: mean matching rate per suspect family for each method's best parameter,
  * Table 8: seconds to extract 100 points (median over seeds), and the share of points reaching j.
  * ROC AUC and TPR at 1 %/5 % FPR over every copy, and over the extracted students alone (issue 14).
Raw rows go to OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zoo as zoo_module  # noqa: E402

from ipguard_onnx import fingerprint, load_bundle  # noqa: E402
from ipguard_onnx.errors import SearchError  # noqa: E402
from ipguard_onnx.evaluate import EvaluatedSuspect, evaluate, tpr_at_fpr  # noqa: E402
from ipguard_onnx.fingerprint import FingerprintSettings  # noqa: E402
from ipguard_onnx.keys import load_private_key, write_keypair  # noqa: E402

GRID: list[tuple[str, dict[str, float | bool | str | int], str]] = [
    ("ipguard", {"k": 0.3}, "RL"),
    ("ipguard", {"k": 1.0}, "RL"),
    ("ipguard", {"k": 3.0}, "RL"),
    ("ipguard", {"k": 10.0}, "RL"),
    ("ipguard", {"k": 1.0}, "TL"),
    ("ipguard", {"k": 3.0}, "TL"),
    ("cw-l2", {"k": 0.0}, "RL"),
    ("cw-l2", {"k": 3.0}, "RL"),
    ("cw-l2", {"k": 3.0}, "TL"),
    ("fgsm", {"epsilon": 0.05}, "RL"),
    ("fgsm", {"epsilon": 0.2}, "RL"),
    ("igsm", {"epsilon": 0.05}, "RL"),
    ("igsm", {"epsilon": 0.2}, "RL"),
    ("random", {}, "RL"),
    ("ipguard", {"unique": True, "k": 1.0}, "TR"),  # conferrable search (issue 5), owner data = split A
    ("ipguard", {"unique": True, "k": 1.0, "references": 32}, "TR"),  # the same with twice the references
    ("ipguard", {"unique": True, "k": 1.0, "students": 4}, "TR"),  # issue 14: owner-made extracted students
    # issue 14: owner data with its labels (owner-labelled.npz): references trained on the ground truth, and the
    # target's own mistakes (AKH-style) alone or as a share of the points
    ("ipguard", {"unique": True, "k": 1.0, "students": 4, "truth": True}, "TR"),
    ("ipguard", {"unique": True, "k": 1.0, "truth": True}, "TR"),
    ("ipguard", {"mistakes": 1.0}, "RL"),
    ("ipguard", {"k": 1.0, "mistakes": 0.3}, "RL"),
    ("gradient-free", {"k": 1.0, "mistakes": 0.3}, "RL"),
    ("trajectory", {}, "RL"),
    ("trajectory", {}, "TL"),  # issue 14: ADV-TRA-style trajectories, labels only
    ("ipguard", {"unique": True, "k": 1.0, "mistakes": 0.2}, "TR"),  # issue 14: parts, one combined p-value
    ("ipguard", {"unique": True, "k": 1.0, "students": 4, "mistakes": 0.2}, "TR"),
    ("gradient-free", {"k": 1.0}, "RL"),
    ("gradient-free", {"k": 3.0}, "RL"),  # issue 13: no surrogate
    ("gradient-free", {"k": 1.0}, "TL"),
    ("gradient-free", {"k": 3.0}, "TL"),
    ("zo-adam", {"k": 1.0}, "RL"),
    ("zo-adam", {"k": 1.0}, "TL"),  # issue 13: the option the walk beat
]
"""(method, parameters, the paper's init/label suffix: -RL random starts, -TL owner-data starts)"""


def label(method: str, params: dict[str, float | bool | str | int], suffix: str = "RL") -> str:
    return f"{method}-{suffix}" + "".join(f" {k}" if v is True else f" {k}={v:g}" for k, v in params.items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worlds", nargs="+", default=["digits", "wine"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument(
        "--only", nargs="*", default=[], help="run only settings whose label contains one of these texts"
    )
    parser.add_argument("--skip", nargs="*", default=[], help="skip settings whose label contains one of these")
    parser.add_argument("--tables-from", type=Path, help="print the tables of an earlier run's results JSON")
    args = parser.parse_args()
    if args.tables_from is not None:
        print_tables(json.loads(args.tables_from.read_text()))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    key_path = args.out / "bench-key.pem"
    if not key_path.exists():
        write_keypair(key_path, args.out / "bench-key.pub.pem")
    key = load_private_key(key_path)
    rows = []
    results = args.out / ("results.json" if not args.only else f"results-{'+'.join(args.only).replace(' ', '_')}.json")
    for world in args.worlds:
        for seed in args.seeds:
            started = time.perf_counter()
            zoo = zoo_module.build(world, seed, args.out)
            print(
                f"[{world} seed {seed}] zoo of {len(zoo.suspects)} suspects in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            families = {path.name: family for path, _, family in zoo.suspects}
            owner_data = zoo.folder / "owner-data.npy"
            np.save(owner_data, zoo.train)
            labelled = zoo.folder / "owner-labelled.npz"  # the same inputs with the owner's ground truth
            np.savez(labelled, x=zoo.train, y=zoo.train_labels)
            for method, params, suffix in GRID:
                if args.only and not any(text in label(method, params, suffix) for text in args.only):
                    continue
                if any(text in label(method, params, suffix) for text in args.skip):
                    continue
                init = "data" if suffix.startswith("T") else "random"
                kind = "least-likely" if suffix.endswith("L") else "random"
                chosen = {"unique": False, **params}  # plain unless the row asks for --unique
                with_truth = bool(chosen.pop("truth", False)) or bool(chosen.get("mistakes"))
                settings = FingerprintSettings(n=100, seed=seed, method=method, init=init, label=kind, **chosen)  # type: ignore[arg-type]
                name = f"fp-{label(method, params, suffix).replace(' ', '_')}.safetensors"
                data_path = labelled if with_truth else owner_data if init == "data" else None
                try:
                    result = fingerprint(
                        zoo.target, zoo.folder / name, signing_key=key, settings=settings, data_path=data_path
                    )
                except SearchError as exc:  # e.g. random inputs all in one class: a result, not a crash
                    print(f"  {label(method, params, suffix):25s} no fingerprint: {exc}", flush=True)
                    continue
                bundle_path = zoo.folder / name
                evaluation = evaluate(load_bundle(bundle_path), [(path, group) for path, group, _ in zoo.suspects])
                by_family: dict[str, list[float]] = defaultdict(list)
                for row in evaluation.rows:
                    by_family[families[row.suspect]].append(row.matching_rate)
                rows.append(
                    {
                        "world": world,
                        "seed": seed,
                        "params": params,
                        "method": method + ("-unique" if params.get("unique") else ""),
                        "config": label(method, params, suffix),
                        "aruc": evaluation.aruc,
                        "gap": evaluation.gap,
                        "search_seconds": result.search_seconds,
                        "points": result.points,
                        "hit_rate": float(load_bundle(bundle_path).metadata["hit_rate"]),
                        "families": {f: statistics.mean(v) for f, v in by_family.items()},
                        "family_min": {f: min(v) for f, v in by_family.items()},
                        "family_max": {f: max(v) for f, v in by_family.items()},
                        "roc_auc": evaluation.roc_auc,
                        "tpr_at_1": evaluation.tpr_at_1_percent_fpr,
                        "tpr_at_5": evaluation.tpr_at_5_percent_fpr,
                        "extraction_tpr_at_1": _extraction_tpr(evaluation.rows, families, 0.01),
                        "extraction_tpr_at_5": _extraction_tpr(evaluation.rows, families, 0.05),
                    }
                )
                print(
                    f"  {label(method, params, suffix):25s} ARUC {evaluation.aruc:.3f} gap {evaluation.gap:+.2f} "
                    f"search {result.search_seconds:6.2f} s hit {rows[-1]['hit_rate']:.2f}",
                    flush=True,
                )
                results.write_text(json.dumps(rows, indent=1))  # after every row: a stopped run keeps its rows
    print_tables(rows)


EXTRACTION_FAMILIES = (
    "label extraction 1k",
    "label extraction 1k, other arch",
    "label extraction 10k",
    "probability extraction",
    "adversarial label extraction",
    "extraction + fine-tuning",
)


def _extraction_tpr(rows: Sequence[EvaluatedSuspect], families: dict[str, str], fpr: float) -> float:
    """TPR at ``fpr`` counting only the students extracted through the API (issue 14) as positives."""
    copies = [row.copy_score for row in rows if families[row.suspect] in EXTRACTION_FAMILIES]
    negatives = [row.copy_score for row in rows if row.group == "negative"]
    return tpr_at_fpr(copies, negatives, fpr) if copies else float("nan")


def print_tables(rows: list[dict]) -> None:  # type: ignore[type-arg]
    for world in sorted({r["world"] for r in rows}):
        here = [r for r in rows if r["world"] == world]
        seeds = sorted({r["seed"] for r in here})
        print(f"\n### {world}: {len(seeds)} seeds ({', '.join(map(str, seeds))})\n")
        print("Table 4 — best ARUC per method (mean ± std over seeds), and its gap\n")
        print("| method | best setting | ARUC | gap (mean; min over seeds) |\n|---|---|---|---|")
        best: dict[str, str] = {}
        for method in dict.fromkeys(r["method"] for r in here):
            configs = {r["config"] for r in here if r["method"] == method}
            chosen = max(configs, key=lambda c: statistics.mean(r["aruc"] for r in here if r["config"] == c))
            best[method] = chosen
            arucs = [r["aruc"] for r in here if r["config"] == chosen]
            gaps = [r["gap"] for r in here if r["config"] == chosen]
            spread = statistics.stdev(arucs) if len(arucs) > 1 else 0.0
            print(
                f"| {method} | {chosen} | {statistics.mean(arucs):.3f} ± {spread:.3f} | "
                f"{statistics.mean(gaps):+.2f}; {min(gaps):+.2f} |"
            )
        print(
            "\nAll settings (mean ARUC over seeds): "
            + ", ".join(
                f"{c} {statistics.mean(r['aruc'] for r in here if r['config'] == c):.3f}"
                for c in dict.fromkeys(r["config"] for r in here)
            )
        )
        families = list(dict.fromkeys(f for r in here for f in r["families"]))
        print("\nTable 5 — mean matching rate per family (min–max over models and seeds), best setting per method\n")
        print("| family | " + " | ".join(best[m] for m in best) + " |\n|---|" + "---|" * len(best))
        for family in families:
            cells = []
            for method in best:
                chosen = [r for r in here if r["config"] == best[method] and family in r["families"]]
                if not chosen:  # a family no seed shipped (a copy is shipped only when it works)
                    cells.append("–")
                    continue
                mean = statistics.mean(r["families"][family] for r in chosen)
                low = min(r["family_min"][family] for r in chosen)
                high = max(r["family_max"][family] for r in chosen)
                cells.append(f"{mean:.2f} ({low:.2f}–{high:.2f})")
            print(f"| {family} | " + " | ".join(cells) + " |")
        print("\nTable 8 — seconds to extract 100 points (median over seeds) and share of points labelled j\n")
        print("| setting | seconds | points reaching j |\n|---|---|---|")
        for config in dict.fromkeys(r["config"] for r in here):
            chosen = [r for r in here if r["config"] == config]
            print(
                f"| {config} | {statistics.median(r['search_seconds'] for r in chosen):.2f} | "
                f"{statistics.mean(r['hit_rate'] for r in chosen):.2f} |"
            )
        print(
            "\nThe newer literature's figures (issue 14): every copy, hard positives and extracted students "
            "included, against the negatives; and the extracted students alone (mean over seeds)\n"
        )
        print("| setting | ROC AUC | TPR @ 1 % FPR | TPR @ 5 % FPR | extraction: TPR @ 1 % | extraction: TPR @ 5 % |")
        print("|---|---|---|---|---|---|")
        for config in dict.fromkeys(r["config"] for r in here):
            chosen = [r for r in here if r["config"] == config and "roc_auc" in r]
            if chosen:
                keys = ("roc_auc", "tpr_at_1", "tpr_at_5", "extraction_tpr_at_1", "extraction_tpr_at_5")
                cells = [statistics.mean(r[key] for r in chosen) for key in keys]
                print(f"| {config} | " + " | ".join(f"{value:.2f}" for value in cells) + " |")


if __name__ == "__main__":
    main()
