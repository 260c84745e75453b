"""Tree-ensemble worlds for the gradient-free search (issue 13): targets with no gradient at all.

    python benchmarks/trees.py [--worlds digits cancer wine] [--seeds 0 1 2] [--k 0.3 1 3] [--out benchmarks/out]

Each world splits a scikit-learn set in two: the owner's half trains the target (a 50-tree random
forest, skl2onnx: TreeEnsembleClassifier + ZipMap); the other half is data an independent party has.
Positives (copies an owner meets): the same forest re-exported without ZipMap, 40 of its 50 trees, the
forest continued by warm_start with 10 trees on new data, a refit on a bootstrap of the owner's data,
a network distilled from the target's labels (reported as a hard positive, not in ARUC). Negatives:
forests, gradient boosting and logistic regression trained on the other half. The target is
fingerprinted with the gradient-free search (init from owner data, least-likely j) for each k, and
evaluated: ARUC (Eq. 7), gap, matching rate per family, queries and seconds per 100 points.
Raw rows go to OUT/trees.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ipguard_onnx import fingerprint
from ipguard_onnx.evaluate import evaluate
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key, write_keypair
from ipguard_onnx.search import StartKind


def _dataset(world: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loaded = {"digits": datasets.load_digits, "cancer": datasets.load_breast_cancer, "wine": datasets.load_wine}[
        world
    ]()
    x = np.asarray(loaded.data, dtype=np.float32)
    x = (x - x.min(axis=0)) / np.maximum(x.max(axis=0) - x.min(axis=0), 1e-9)  # the domain is [0, 1]
    return x.astype(np.float32), np.asarray(loaded.target, dtype=np.int64)


def _export(model: Any, x: np.ndarray, path: Path, zipmap: bool = True) -> Path:
    from skl2onnx import to_onnx

    options = None if zipmap else {id(model): {"zipmap": False}}
    path.write_bytes(to_onnx(model, x[:1], options=options).SerializeToString())
    return path


def build(world: str, seed: int, folder: Path) -> tuple[Path, np.ndarray, list[tuple[Path, str, str]]]:
    """The target, the owner's data, and (suspect, group, family) for every copy and independent model."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    x, y = _dataset(world)
    order = np.random.default_rng(seed).permutation(len(x))
    owner, other = order[: len(x) // 2], order[len(x) // 2 :]
    xo, yo, xt, yt = x[owner], y[owner], x[other], y[other]
    target = RandomForestClassifier(n_estimators=50, random_state=seed).fit(xo, yo)
    target_path = _export(target, xo, folder / "target.onnx")
    suspects: list[tuple[Path, str, str]] = []
    suspects.append((_export(target, xo, folder / "no-zipmap.onnx", zipmap=False), "positive", "re-export"))
    subset = copy.deepcopy(target)
    subset.estimators_ = subset.estimators_[:40]
    subset.n_estimators = 40
    suspects.append((_export(subset, xo, folder / "subset.onnx"), "positive", "40 of 50 trees"))
    continued = copy.deepcopy(target)
    continued.set_params(warm_start=True, n_estimators=60)
    continued.fit(xt[: len(xt) // 2], yt[: len(yt) // 2])
    suspects.append((_export(continued, xo, folder / "warm-start.onnx"), "positive", "warm_start +10 trees"))
    rows = np.random.default_rng(seed + 1).integers(0, len(xo), len(xo))
    refit = RandomForestClassifier(n_estimators=50, random_state=seed + 1).fit(xo[rows], yo[rows])
    suspects.append((_export(refit, xo, folder / "bootstrap-refit.onnx"), "positive", "bootstrap refit"))
    student = MLPClassifier((64,), max_iter=600, random_state=seed).fit(xt, target.predict(xt))
    suspects.append((_export(student, xo, folder / "distilled.onnx"), "hard-positive", "distilled network"))
    for index in range(3):
        forest = RandomForestClassifier(n_estimators=50, random_state=100 + seed * 10 + index).fit(xt, yt)
        suspects.append((_export(forest, xo, folder / f"independent-forest-{index}.onnx"), "negative", "forest"))
    boosted = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=seed).fit(xt, yt)
    suspects.append((_export(boosted, xo, folder / "independent-boosting.onnx"), "negative", "boosting"))
    linear = LogisticRegression(max_iter=2000).fit(xt, yt)
    suspects.append((_export(linear, xo, folder / "independent-linear.onnx"), "negative", "logistic regression"))
    np.save(folder / "owner.npy", xo)
    return target_path, xo, suspects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", nargs="+", default=["digits", "cancer", "wine"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--k", nargs="+", type=float, default=[0.3, 1.0, 3.0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")
    arguments.out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        key = load_private_key(write_keypair(work / "k.pem", work / "k.pub.pem").private_path)
        for world in arguments.worlds:
            for seed in arguments.seeds:
                folder = work / f"{world}-{seed}"
                folder.mkdir()
                target, _, suspects = build(world, seed, folder)
                families = {path.name: family for path, _, family in suspects}
                for k in arguments.k:
                    settings = FingerprintSettings(n=arguments.n, k=k, seed=seed, init=StartKind.data)
                    started = time.perf_counter()
                    made = fingerprint(target, folder / f"fp-{k}.safetensors", signing_key=key, settings=settings,
                                       data_path=folder / "owner.npy")  # fmt: skip
                    seconds = time.perf_counter() - started
                    evaluation = evaluate(made.bundle_path, [(path, group) for path, group, _ in suspects])
                    results.append({
                        "world": world, "seed": seed, "k": k, "points": made.points, "queries": made.queries,
                        "seconds": seconds, "seconds_per_100": 100 * made.search_seconds / max(made.points, 1),
                        "aruc": evaluation.aruc, "gap": evaluation.gap,
                        "rates": {row.suspect: row.matching_rate for row in evaluation.rows},
                        "families": {row.suspect: families[row.suspect] for row in evaluation.rows},
                        "groups": {row.suspect: row.group for row in evaluation.rows},
                    })  # fmt: skip
                    print(f"{world} seed {seed} k={k:g}: ARUC {evaluation.aruc:.3f} gap {evaluation.gap:+.2f} "
                          f"queries {made.queries:,} {seconds:.1f} s", flush=True)  # fmt: skip
    (arguments.out / "trees.json").write_text(json.dumps(results, indent=1))
    print("\n| world | k | ARUC (mean ± std) | gap | queries | s / 100 points | " + " | ".join(_FAMILIES) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(_FAMILIES))
    for world in arguments.worlds:
        for k in arguments.k:
            rows = [r for r in results if r["world"] == world and r["k"] == k]
            arucs = [r["aruc"] for r in rows]
            spread = statistics.stdev(arucs) if len(arucs) > 1 else 0.0
            cells = []
            for family in _FAMILIES:
                rates = [rate for r in rows for name, rate in r["rates"].items() if r["families"][name] == family]
                cells.append(f"{statistics.mean(rates):.2f}" if rates else "–")
            gap = statistics.mean(r["gap"] for r in rows)
            queries = statistics.median(r["queries"] for r in rows)
            per_100 = statistics.median(r["seconds_per_100"] for r in rows)
            print(f"| {world} | {k:g} | {statistics.mean(arucs):.3f} ± {spread:.3f} | {gap:+.2f} | {queries:,.0f} | "
                  f"{per_100:.2f} | " + " | ".join(cells) + " |")  # fmt: skip


_FAMILIES = ("re-export", "40 of 50 trees", "warm_start +10 trees", "bootstrap refit", "distilled network", "forest",
             "boosting", "logistic regression")  # fmt: skip


if __name__ == "__main__":
    main()
