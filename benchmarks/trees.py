"""Tree-ensemble and SVM worlds for the gradient-free search (issue 13): targets with no gradient at all.

    python benchmarks/trees.py [--targets forest svm xgboost] [--worlds digits cancer wine] [--seeds 0 1 2]
                               [--k 0.1 0.3 1] [--out benchmarks/out]

Needs the benchmark extra (`pip install -e ".[bench]"`: onnxmltools, XGBoost, LightGBM). Each world splits a
scikit-learn set in two: the owner's half trains the target; the other half is data an independent party
has. Targets: a 50-tree random forest (skl2onnx: TreeEnsembleClassifier + ZipMap), an RBF SVM with
probabilities (skl2onnx: SVMClassifier + ZipMap), 50 rounds of XGBoost (onnxmltools: TreeEnsembleClassifier).
Positives (copies an owner meets): the same model re-exported (ZipMap off; double precision, so thresholds
and inputs are float64; through onnxmltools instead of skl2onnx), a subset of the trees (40 of 50), the
model continued on new data (forest: warm_start +10 trees; XGBoost: +10 rounds; SVM: refit on the owner's
data plus new data), a refit on a bootstrap of the owner's data; a network distilled from the target's labels
is a hard positive, not in ARUC. Negatives: three models of the target's kind and two of other kinds, all
trained on the other half. The target is fingerprinted with the gradient-free search (starts and anchors
from the owner's data, least-likely j) for each k, and evaluated: ARUC (Eq. 7), gap, matching rate per
family, queries and seconds per 100 points. Raw rows go to OUT/trees.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ipguard_onnx import fingerprint
from ipguard_onnx.errors import SearchError
from ipguard_onnx.evaluate import evaluate
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key, write_keypair
from ipguard_onnx.search import StartKind

TARGETS = ("forest", "svm", "xgboost")
POSITIVE_FAMILIES = (
    "re-export, no ZipMap",
    "re-export, double",
    "re-export, onnxmltools",
    "40 of 50 trees",
    "continued on new data",
    "bootstrap refit",
)
HARD_FAMILIES = ("distilled network",)
NEGATIVE_FAMILIES = ("same kind", "forest", "boosting", "logistic regression", "LightGBM")


def _dataset(world: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loaded = {"digits": datasets.load_digits, "cancer": datasets.load_breast_cancer, "wine": datasets.load_wine}[
        world
    ]()
    x = np.asarray(loaded.data, dtype=np.float32)
    x = (x - x.min(axis=0)) / np.maximum(x.max(axis=0) - x.min(axis=0), 1e-9)  # the domain is [0, 1]
    return x.astype(np.float32), np.asarray(loaded.target, dtype=np.int64)


def _export(
    model: Any, x: np.ndarray, path: Path, *, zipmap: bool = True, double: bool = False, onnxmltools: bool = False
) -> Path:
    """Write ``model`` as ONNX the way its owner's exporter would (skl2onnx, or onnxmltools for XGBoost/LightGBM)."""
    import onnxmltools as mltools
    from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    kind = type(model).__module__.split(".")[0]
    if kind in ("xgboost", "lightgbm"):
        convert = mltools.convert_xgboost if kind == "xgboost" else mltools.convert_lightgbm
        options = {} if kind == "xgboost" else {"zipmap": False}
        graph = convert(model, initial_types=[("input", MlFloat([None, x.shape[1]]))], **options)
    elif onnxmltools:
        graph = mltools.convert_sklearn(model, initial_types=[("input", FloatTensorType([None, x.shape[1]]))])
    else:
        options = None if zipmap else {id(model): {"zipmap": False}}
        graph = to_onnx(model, x[:1].astype(np.float64 if double else np.float32), options=options)
    path.write_bytes(graph.SerializeToString())
    return path


def _xgboost(seed: int, rounds: int = 50) -> Any:
    import xgboost

    return xgboost.XGBClassifier(
        n_estimators=rounds, max_depth=3, subsample=0.8, colsample_bytree=0.8, random_state=seed
    )


def _target(kind: str, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.svm import SVC

    if kind == "forest":
        return RandomForestClassifier(n_estimators=50, random_state=seed)
    if kind == "svm":
        return SVC(C=[1.0, 3.0, 10.0][seed % 3], probability=True, random_state=seed)
    return _xgboost(seed)


def _copies(
    kind: str, target: Any, seed: int, xo: np.ndarray, yo: np.ndarray, xn: np.ndarray, yn: np.ndarray
) -> dict[str, Any]:
    """The retrained copies of ``target`` (re-exports are made by ``build``); ``xn, yn`` is new data."""
    copies: dict[str, Any] = {}
    if kind == "forest":
        subset = copy.deepcopy(target)
        subset.estimators_ = subset.estimators_[:40]
        subset.n_estimators = 40
        copies["40 of 50 trees"] = subset
        continued = copy.deepcopy(target)
        continued.set_params(warm_start=True, n_estimators=60)
        copies["continued on new data"] = continued.fit(xn, yn)
    elif kind == "xgboost":
        subset = copy.deepcopy(target)
        subset._Booster = target.get_booster()[:40]
        subset.set_params(n_estimators=40)
        copies["40 of 50 trees"] = subset
        copies["continued on new data"] = _xgboost(seed, 10).fit(xn, yn, xgb_model=target.get_booster())
    else:
        copies["continued on new data"] = copy.deepcopy(target).fit(np.concatenate([xo, xn]), np.concatenate([yo, yn]))
    rows = np.random.default_rng(seed + 1).integers(0, len(xo), len(xo))
    copies["bootstrap refit"] = _target(kind, seed + 1).set_params(random_state=seed + 1).fit(xo[rows], yo[rows])
    return copies


def build(
    world: str, seed: int, folder: Path, kind: str = "forest"
) -> tuple[Path, np.ndarray, list[tuple[Path, str, str]]]:
    """The target, the owner's data, and (suspect, group, family) for every copy and independent model."""
    import lightgbm
    import onnxruntime as ort
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    x, y = _dataset(world)
    order = np.random.default_rng(seed).permutation(len(x))
    owner, other = order[: len(x) // 2], order[len(x) // 2 :]
    xo, yo, xt, yt = x[owner], y[owner], x[other], y[other]
    target = _target(kind, seed).fit(xo, yo)
    target_path = _export(target, xo, folder / "target.onnx")
    suspects: list[tuple[Path, str, str]] = []
    if kind != "xgboost":  # onnxmltools writes XGBoost with no ZipMap, in float only, and is its one exporter
        suspects.append(
            (_export(target, xo, folder / "no-zipmap.onnx", zipmap=False), "positive", "re-export, no ZipMap")
        )
        # skl2onnx writes an invalid double SVM with a ZipMap (a float64 ZipMap input), so that one has none
        double = _export(target, xo, folder / "double.onnx", double=True, zipmap=kind != "svm")
        suspects.append((double, "positive", "re-export, double"))
        suspects.append(
            (_export(target, xo, folder / "onnxmltools.onnx", onnxmltools=True), "positive", "re-export, onnxmltools")
        )
    for family, model in _copies(kind, target, seed, xo, yo, xt[: len(xt) // 2], yt[: len(yt) // 2]).items():
        name = family.replace(" ", "-").replace(",", "")
        exported = _export(model, xo, folder / f"{name}.onnx")
        try:
            ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
        except Exception as exc:  # an exporter's bug, not the search's: reported, not audited
            print(
                f"{kind} {world} seed {seed}: {family} skipped, onnxruntime refuses its export: "
                f"{str(exc).splitlines()[0][:120]}",
                flush=True,
            )
            continue
        suspects.append((exported, "positive", family))
    student = MLPClassifier((64,), max_iter=600, random_state=seed).fit(xt, target.predict(xt))
    suspects.append((_export(student, xo, folder / "distilled.onnx"), "hard-positive", "distilled network"))
    for index in range(3):
        same = _target(kind, 100 + seed * 10 + index)
        if kind == "svm":
            same.set_params(C=[0.5, 2.0, 8.0][index])
        suspects.append((_export(same.fit(xt, yt), xo, folder / f"independent-{index}.onnx"), "negative", "same kind"))
    others: dict[str, Callable[[], Any]] = {
        "forest": lambda: RandomForestClassifier(n_estimators=50, random_state=seed),
        "boosting": lambda: GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=seed),
        "logistic regression": lambda: LogisticRegression(max_iter=2000),
        "LightGBM": lambda: lightgbm.LGBMClassifier(n_estimators=50, random_state=seed, verbose=-1),
    }
    chosen = {
        "forest": ("boosting", "logistic regression"),
        "svm": ("forest", "logistic regression"),
        "xgboost": ("LightGBM", "forest"),
    }[kind]
    for family in chosen:
        name = family.replace(" ", "-")
        suspects.append(
            (_export(others[family]().fit(xt, yt), xo, folder / f"independent-{name}.onnx"), "negative", family)
        )
    np.save(folder / "owner.npy", xo)
    np.savez(folder / "owner.npz", x=xo, y=yo)
    return target_path, xo, suspects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--worlds", nargs="+", default=["digits", "cancer", "wine"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--k", nargs="+", type=float, default=[0.1, 0.3, 1.0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--method", default="ipguard", help="ipguard (the walk, chosen by itself) or zo-adam")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--default", action="store_true", help="the default command and its verdict (issue 24)")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")
    arguments.out.mkdir(parents=True, exist_ok=True)
    if arguments.default:
        _default(arguments)
        return
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        key = load_private_key(write_keypair(work / "k.pem", work / "k.pub.pem").private_path)
        for kind in arguments.targets:
            for world in arguments.worlds:
                for seed in arguments.seeds:
                    folder = work / f"{kind}-{world}-{seed}"
                    folder.mkdir()
                    target, _, suspects = build(world, seed, folder, kind)
                    families = {path.name: family for path, _, family in suspects}
                    for k in arguments.k:
                        settings = FingerprintSettings(
                            n=arguments.n, k=k, seed=seed, init=StartKind.data, method=arguments.method
                        )
                        started = time.perf_counter()
                        try:
                            made = fingerprint(
                                target,
                                folder / f"fp-{k}.safetensors",
                                signing_key=key,
                                settings=settings,
                                data_path=folder / "owner.npy",
                            )
                        except SearchError as exc:  # no point reached margin k: a result, not a crash
                            print(f"{kind} {world} seed {seed} k={k:g}: no fingerprint ({exc})", flush=True)
                            results.append({"target": kind, "world": world, "seed": seed, "k": k, "failed": str(exc)})
                            continue
                        seconds = time.perf_counter() - started
                        evaluation = evaluate(made.bundle_path, [(path, group) for path, group, _ in suspects])
                        results.append(
                            {
                                "target": kind,
                                "world": world,
                                "seed": seed,
                                "k": k,
                                "points": made.points,
                                "queries": made.queries,
                                "seconds": seconds,
                                "seconds_per_100": 100 * made.search_seconds / max(made.points, 1),
                                "aruc": evaluation.aruc,
                                "gap": evaluation.gap,
                                "rates": {row.suspect: row.matching_rate for row in evaluation.rows},
                                "families": {row.suspect: families[row.suspect] for row in evaluation.rows},
                                "groups": {row.suspect: row.group for row in evaluation.rows},
                            }
                        )
                        print(
                            f"{kind} {world} seed {seed} k={k:g}: ARUC {evaluation.aruc:.3f} "
                            f"gap {evaluation.gap:+.2f} queries {made.queries:,} {seconds:.1f} s",
                            flush=True,
                        )
                        (arguments.out / "trees.json").write_text(json.dumps(results, indent=1))
    (arguments.out / "trees.json").write_text(json.dumps(results, indent=1))
    for kind in arguments.targets:
        _table(kind, [r for r in results if r["target"] == kind], arguments.worlds, arguments.k)


def _default(arguments: argparse.Namespace) -> None:
    """Every target, world and seed fingerprinted by the default command; the verdict counted per family."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        key = load_private_key(write_keypair(work / "k.pem", work / "k.pub.pem").private_path)
        for kind in arguments.targets:
            for world in arguments.worlds:
                for seed in arguments.seeds:
                    folder = work / f"{kind}-{world}-{seed}"
                    folder.mkdir()
                    target, _, suspects = build(world, seed, folder, kind)
                    families = {path.name: family for path, _, family in suspects}
                    started = time.perf_counter()
                    made = fingerprint(
                        target,
                        folder / "fp.safetensors",
                        signing_key=key,
                        settings=FingerprintSettings(seed=seed),
                        data_path=folder / "owner.npz",
                    )
                    seconds = time.perf_counter() - started
                    evaluation = evaluate(made.bundle_path, [(path, group) for path, group, _ in suspects])
                    results.append(
                        {
                            "target": kind,
                            "world": world,
                            "seed": seed,
                            "seconds": seconds,
                            "points": made.points,
                            "parts": [{"kind": p.kind, "points": p.points, "q0": p.null_agreement} for p in made.parts],
                            "skipped": list(made.parts_skipped),
                            "roc_auc": evaluation.roc_auc,
                            "tpr_at_1": evaluation.tpr_at_1_percent_fpr,
                            "verdict_tpr": evaluation.verdict_tpr,
                            "false_accusations": evaluation.false_accusations,
                            "rows": [
                                {
                                    "suspect": row.suspect,
                                    "family": families[row.suspect],
                                    "group": row.group,
                                    "rate": row.matching_rate,
                                    "p": row.p_value,
                                    "verdict": row.verdict,
                                }
                                for row in evaluation.rows
                            ],
                        }
                    )
                    parts = ", ".join(f"{p.kind} {p.points} q0 {p.null_agreement:.2f}" for p in made.parts)
                    print(
                        f"{kind} {world} seed {seed}: {parts}; copies matched {evaluation.verdict_tpr:.2f}, "
                        f"false accusations {evaluation.false_accusations}, AUC {evaluation.roc_auc:.2f}, "
                        f"{seconds:.1f} s",
                        flush=True,
                    )
                    (arguments.out / "trees-default.json").write_text(json.dumps(results, indent=1))
    _default_table(results)


def _default_table(results: list[dict[str, Any]]) -> None:
    families = (*POSITIVE_FAMILIES, *HARD_FAMILIES, *NEGATIVE_FAMILIES)
    print(
        "\n| target | world | ROC AUC | TPR @ 1 % FPR | copies matched (verdict) | false accusations (verdict) "
        "| parts (seed 0) | seconds per fingerprint |\n|---|---|---|---|---|---|---|---|"
    )
    for kind in TARGETS:
        for world in sorted({r["world"] for r in results if r["target"] == kind}):
            rows = [r for r in results if r["target"] == kind and r["world"] == world]
            copies = [s for r in rows for s in r["rows"] if s["group"] != "negative"]
            negatives = [s for r in rows for s in r["rows"] if s["group"] == "negative"]
            parts = ", ".join(f"{p['kind']} {p['points']} (q0 {p['q0']:.2f})" for p in rows[0]["parts"])
            print(
                f"| {kind} | {world} | {statistics.mean(r['roc_auc'] for r in rows):.2f} | "
                f"{statistics.mean(r['tpr_at_1'] for r in rows):.2f} | "
                f"{sum(s['verdict'] == 'match' for s in copies)}/{len(copies)} | "
                f"{sum(s['verdict'] == 'match' for s in negatives)}/{len(negatives)} | {parts} | "
                f"{statistics.mean(r['seconds'] for r in rows):.1f} |"
            )
    print("\n| family | matched by the verdict (all targets, worlds, seeds) |\n|---|---|")
    for family in families:
        members = [s for r in results for s in r["rows"] if s["family"] == family]
        if members:
            print(f"| {family} | {sum(s['verdict'] == 'match' for s in members)}/{len(members)} |")


def _table(kind: str, results: list[dict[str, Any]], worlds: list[str], ks: list[float]) -> None:
    present = {family for r in results for family in r.get("families", {}).values()}
    columns = [f for f in (*POSITIVE_FAMILIES, *HARD_FAMILIES, *NEGATIVE_FAMILIES) if f in present]
    print(
        f"\n{kind} targets\n\n| world | k | ARUC (mean ± std) | gap | queries | s / 100 points | "
        + " | ".join(columns)
        + " |"
    )
    print("|---|---|---|---|---|---|" + "---|" * len(columns))
    for world in worlds:
        for k in ks:
            failed = sum(1 for r in results if r["world"] == world and r["k"] == k and "failed" in r)
            rows = [r for r in results if r["world"] == world and r["k"] == k and "failed" not in r]
            if not rows:
                print(f"| {world} | {k:g} | no fingerprint on {failed} seed(s): no point reached margin k |")
                continue
            arucs = [r["aruc"] for r in rows]
            spread = statistics.stdev(arucs) if len(arucs) > 1 else 0.0
            cells = []
            for family in columns:
                rates = [rate for r in rows for name, rate in r["rates"].items() if r["families"][name] == family]
                cells.append(f"{statistics.mean(rates):.2f}" if rates else "–")
            gap = statistics.mean(r["gap"] for r in rows)
            queries = statistics.median(r["queries"] for r in rows)
            per_100 = statistics.median(r["seconds_per_100"] for r in rows)
            note = f" ({failed} seed(s) without a fingerprint)" if failed else ""
            print(
                f"| {world} | {k:g}{note} | {statistics.mean(arucs):.3f} ± {spread:.3f} | {gap:+.2f} | "
                f"{queries:,.0f} | {per_100:.2f} | " + " | ".join(cells) + " |"
            )


if __name__ == "__main__":
    main()
