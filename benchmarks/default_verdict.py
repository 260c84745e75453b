"""The default verdict (issue 24) against today's default and the best single mode, on the zoos, every family.

    python benchmarks/default_verdict.py [--worlds digits wine cancer] [--seeds 0 1 2] [--out benchmarks/out]

For each world and seed (zoo from ``zoo.py``, cached): the owner's split A with its labels is the owner's data.
Three designs are fingerprinted (n = 100 boundary points) and every suspect audited:

* ``default``  — ``fingerprint --data owner.npz`` with nothing else: the parts compose themselves and are
  self-calibrated; the verdict is the evidence rule (combined p ≤ the signed α = 1e-6).
* ``before``   — the default before issue 24: ``--unique`` boundary points alone (``--data`` without labels,
  ``--parts boundary --calibration-references 0``), the verdict the paper's rule at 0.85.
* ``mistakes`` — the best single mode against extraction: the target's mistakes alone (``--mistakes 1``),
  the paper's rule at 0.85.

Reported per design, as means over seeds: ROC AUC and TPR at 1 % FPR (the threshold set afterwards on the
seed's 20 independent models, as the literature does) over modification copies and over extracted and
distilled students; the share each family's copies the *verdict* judges a match; false accusations (independent
models the verdict judges a match); queries per verdict (fixed, and the sequential audit's median); seconds per
fingerprint. Raw rows go to OUT/default_verdict.json after every seed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zoo as zoo_module  # noqa: E402

from ipguard_onnx import audit, fingerprint, load_bundle  # noqa: E402
from ipguard_onnx.evaluate import roc_auc, tpr_at_fpr  # noqa: E402
from ipguard_onnx.fingerprint import FingerprintSettings  # noqa: E402
from ipguard_onnx.keys import load_private_key, write_keypair  # noqa: E402
from ipguard_onnx.sequential import SequentialSettings  # noqa: E402

MODIFICATION = (
    "FTLL",
    "FTAL",
    "RTLL",
    "RTAL",
    "weight pruning",
    "filter pruning",
    "int8-dynamic",
    "int8-static",
    "float16",
)
EXTRACTION = (
    "distillation",
    "label extraction 1k",
    "label extraction 1k, other arch",
    "label extraction 10k",
    "probability extraction",
    "adversarial label extraction",
    "extraction + fine-tuning",
)
DESIGNS = ("default", "before", "mistakes")


def _settings(design: str, seed: int) -> tuple[FingerprintSettings, str]:
    """The design's settings and which owner data file it reads (labelled .npz or the inputs alone)."""
    if design == "default":
        return FingerprintSettings(seed=seed), "owner-labelled.npz"
    if design == "before":
        return FingerprintSettings(seed=seed, parts=("boundary",), calibration_references=0), "owner-data.npy"
    return FingerprintSettings(seed=seed, mistakes=1.0, calibration_references=0), "owner-labelled.npz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worlds", nargs="+", default=["digits", "wine", "cancer"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=DESIGNS)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--tables-from", type=Path, help="print the tables of an earlier run's JSON")
    args = parser.parse_args()
    if args.tables_from is not None:
        print_tables(json.loads(args.tables_from.read_text()))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    key_path = args.out / "bench-key.pem"
    if not key_path.exists():
        write_keypair(key_path, args.out / "bench-key.pub.pem")
    key = load_private_key(key_path)
    results = args.out / "default_verdict.json"
    rows: list[dict] = json.loads(results.read_text()) if results.exists() else []  # type: ignore[type-arg]
    done = {(r["world"], r["seed"], r["design"]) for r in rows}
    for world in args.worlds:
        for seed in args.seeds:
            started = time.perf_counter()
            zoo = zoo_module.build(world, seed, args.out)
            print(
                f"[{world} seed {seed}] zoo of {len(zoo.suspects)} suspects in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            np.save(zoo.folder / "owner-data.npy", zoo.train)
            np.savez(zoo.folder / "owner-labelled.npz", x=zoo.train, y=zoo.train_labels)
            for design in args.designs:
                if (world, seed, design) in done:
                    continue
                settings, data = _settings(design, seed)
                bundle_path = zoo.folder / f"verdict-{design}.safetensors"
                tick = time.perf_counter()
                try:
                    made = fingerprint(
                        zoo.target, bundle_path, signing_key=key, settings=settings, data_path=zoo.folder / data
                    )
                except Exception as exc:  # e.g. no mistakes to fingerprint with: a result, not a crash
                    print(f"  {design:9s} no fingerprint: {exc}", flush=True)
                    continue
                seconds = time.perf_counter() - tick
                bundle = load_bundle(bundle_path)
                threshold = None if design == "default" else 0.85
                suspects = []
                for path, group, family in zoo.suspects:
                    fixed = audit(bundle, path, threshold=threshold)
                    step = audit(bundle, path, threshold=threshold, sequential=SequentialSettings())
                    suspects.append(
                        {
                            "name": path.name,
                            "group": group,
                            "family": family,
                            "verdict": fixed.verdict,
                            "rate": fixed.matching_rate,
                            "p_value": fixed.p_value,
                            "score": _score(design, fixed.p_value, fixed.matching_rate),
                            "queries": fixed.points_queried,
                            "sequential_queries": step.points_queried,
                            "sequential_verdict": step.verdict,
                        }
                    )
                rows.append(
                    {
                        "world": world,
                        "seed": seed,
                        "design": design,
                        "seconds": seconds,
                        "points": made.points,
                        "parts": [{"kind": p.kind, "points": p.points, "q0": p.null_agreement} for p in made.parts],
                        "suspects": suspects,
                    }
                )
                row = rows[-1]
                print(
                    f"  {design:9s} {made.points} points in {seconds:.1f} s; parts "
                    + ", ".join(f"{p['kind']} {p['points']} (q0 {p['q0']:.2f})" for p in row["parts"]),
                    flush=True,
                )
                results.write_text(json.dumps(rows, indent=1))
    print_tables(rows)


def _score(design: str, p_value: float, rate: float) -> float:
    """What ranks suspects: the evidence −log10 p for the default, the matching rate for the paper's rule."""
    return -math.log10(max(p_value, 1e-300)) if design == "default" else rate


def _auc(rows: list[dict]) -> float:  # type: ignore[type-arg]
    copies = [s["score"] for s in rows if s["group"] != "negative"]
    return roc_auc(copies, [s["score"] for s in rows if s["group"] == "negative"])


def _tpr(rows: list[dict], families: tuple[str, ...]) -> float:  # type: ignore[type-arg]
    copies = [s["score"] for s in rows if s["family"] in families]
    negatives = [s["score"] for s in rows if s["group"] == "negative"]
    return tpr_at_fpr(copies, negatives, 0.01) if copies else float("nan")


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.mean(values) if values else float("nan")


def print_tables(rows: list[dict]) -> None:  # type: ignore[type-arg]
    for world in dict.fromkeys(r["world"] for r in rows):
        here = [r for r in rows if r["world"] == world]
        seeds = sorted({r["seed"] for r in here})
        print(f"\n### {world}: seeds {', '.join(map(str, seeds))} (means over seeds)\n")
        print(
            "| design | ROC AUC | TPR @ 1 % FPR: modification | TPR @ 1 %: extraction + distillation | verdict: "
            "modification copies matched | verdict: students matched | false accusations (verdict) | "
            "queries per verdict (fixed) | sequential: median queries | seconds per fingerprint |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for design in DESIGNS:
            runs = [r for r in here if r["design"] == design]
            if not runs:
                continue
            auc = _mean([_auc(r["suspects"]) for r in runs])
            modification = _mean([_tpr(r["suspects"], MODIFICATION) for r in runs])
            extraction = _mean([_tpr(r["suspects"], EXTRACTION) for r in runs])
            copies = [s for r in runs for s in r["suspects"]]
            matched_mod = [s["verdict"] == "match" for s in copies if s["family"] in MODIFICATION]
            matched_ext = [s["verdict"] == "match" for s in copies if s["family"] in EXTRACTION]
            accused = sum(s["verdict"] == "match" for s in copies if s["group"] == "negative")
            negatives = sum(s["group"] == "negative" for s in copies)
            queries = statistics.median(s["queries"] for s in copies)
            sequential = statistics.median(s["sequential_queries"] for s in copies)
            print(
                f"| {design} | {auc:.2f} | {modification:.2f} | {extraction:.2f} | "
                f"{sum(matched_mod)}/{len(matched_mod)} | {sum(matched_ext)}/{len(matched_ext)} | "
                f"{accused}/{negatives} | {queries:.0f} | {sequential:.0f} | "
                f"{statistics.median(r['seconds'] for r in runs):.1f} |"
            )
        print("\nPer family, the default: copies the verdict matches / copies (all seeds), and the median p-value\n")
        print("| family | matched by the verdict | median p |\n|---|---|---|")
        runs = [r for r in here if r["design"] == "default"]
        by_family: dict[str, list[dict]] = defaultdict(list)  # type: ignore[type-arg]
        for r in runs:
            for s in r["suspects"]:
                by_family[s["family"]].append(s)
        for family in (*MODIFICATION, *EXTRACTION, "same architecture", "other architecture", "random forest"):
            if family in by_family:
                items = by_family[family]
                matched = sum(s["verdict"] == "match" for s in items)
                print(f"| {family} | {matched}/{len(items)} | {statistics.median(s['p_value'] for s in items):.1e} |")
        print(
            "\nParts of the default (per seed): "
            + "; ".join(
                f"seed {r['seed']}: " + ", ".join(f"{p['kind']} {p['points']} q0 {p['q0']:.2f}" for p in r["parts"])
                for r in runs
            )
        )


if __name__ == "__main__":
    main()
