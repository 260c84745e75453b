"""The gradient-free search: Eq. 5 points from onnxruntime's own answers, for models with no gradient."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ipguard_onnx import OnnxClassifier, audit, fingerprint, load_bundle
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key
from ipguard_onnx.search import BoundaryWalk, StartKind, anchor_targets, search_scores, start_points

from ..conftest import RunCli, Zoo


@pytest.fixture(scope="module")
def forest(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random forest on the digits exported by skl2onnx (TreeEnsembleClassifier + ZipMap), and its data."""
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    folder = tmp_path_factory.mktemp("forest")
    flat = zoo.x.reshape(len(zoo.x), -1)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(flat, zoo.y)
    path = folder / "forest.onnx"
    path.write_bytes(to_onnx(model, flat[:1]).SerializeToString())
    data = folder / "data.npz"
    np.savez(data, x=flat[:400])
    return path, data


def _eq5_holds(model: Path, points: np.ndarray, labels: np.ndarray, k: float) -> np.ndarray:
    """Per point, by onnxruntime's own scores: label j, and j ahead of the runner-up by at least k."""
    classifier = OnnxClassifier(model)
    scores = search_scores(classifier.scores(points), classifier.output_spec.kind)
    ordered = np.sort(scores, axis=1)
    holds: np.ndarray = (scores.argmax(axis=1) == labels) & (ordered[:, -1] - ordered[:, -2] >= k - 1e-5)
    return holds


def test_a_tree_ensemble_is_fingerprinted_without_a_gradient(
    zoo: Zoo, forest: tuple[Path, Path], tmp_path: Path
) -> None:
    path, data = forest
    settings = FingerprintSettings(n=40, init=StartKind.data, parts=("boundary",), calibration_references=0)
    made = fingerprint(
        path,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=settings,
        data_path=data,
    )
    assert made.k == 0.3  # the default on graphs with no gradient, where small margins measured best
    assert made.points == 40 and made.parity is None and made.conversion is None
    assert "TreeEnsembleClassifier" in made.gradient_free_reason and made.queries > 0
    bundle = load_bundle(made.bundle_path)
    assert bundle.record.variant == "IPGuard-GF-TL" and bundle.record.search is not None
    assert bundle.record.search.queries == made.queries and bundle.record.search.seconds_per_100_points > 0
    assert "TreeEnsembleClassifier" in bundle.record.search.gradient_free_reason
    chosen = bundle.record.search.search_chosen_because  # the search rule, signed: why the walk ran
    assert chosen == made.search_chosen_because and chosen.startswith("the walk on onnxruntime")
    assert "TreeEnsembleClassifier" in chosen
    assert _eq5_holds(path, bundle.points, bundle.labels, 0.3).all()
    assert audit(bundle, path).matching_rate == 1.0


def test_a_network_fingerprinted_by_name_satisfies_eq5_on_onnxruntime(zoo: Zoo, tmp_path: Path) -> None:
    settings = FingerprintSettings(n=30, method="gradient-free", parts=("boundary",), calibration_references=0)
    data = tmp_path / "data.npy"
    np.save(data, zoo.x[:300])
    made = fingerprint(
        zoo.target,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=settings,
        data_path=data,
    )
    assert made.gradient_free_reason == "--method gradient-free" and made.points == 30 and made.k == 1.0
    assert made.search_chosen_because == "--method gradient-free: the search named"
    bundle = load_bundle(made.bundle_path)
    assert _eq5_holds(zoo.target, bundle.points, bundle.labels, 1.0).all()
    assert audit(bundle, zoo.target).matching_rate == 1.0
    assert audit(bundle, zoo.pruned).matching_rate > audit(bundle, zoo.independent).matching_rate


def test_fingerprinting_without_a_gradient_never_imports_torch(zoo: Zoo, forest: tuple[Path, Path]) -> None:
    path, data = forest
    code = (
        "import sys\n"
        "from ipguard_onnx import fingerprint, FingerprintSettings\n"
        "from ipguard_onnx.keys import load_private_key\n"
        f"fingerprint({str(path)!r}, {str(path) + '.fp'!r}, signing_key=load_private_key({str(zoo.private_key)!r}),"
        f" settings=FingerprintSettings(n=10, k=0.5, parts=('boundary',), calibration_references=0),"
        f" data_path={str(data)!r})\n"
        "print('torch' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "False"


def test_the_cli_reports_queries_and_why(zoo: Zoo, forest: tuple[Path, Path], tmp_path: Path, run_cli: RunCli) -> None:
    path, data = forest
    names = ",".join(str(c) for c in range(10))  # as the label output names them; ZipMap maps give the count
    made = run_cli(
        "fingerprint",
        path,
        "--data",
        data,
        "--k",
        "0.5",
        "--n",
        10,
        "--key",
        zoo.private_key,
        "--class-names",
        names,
        "-o",
        tmp_path / "f.fp",
        "--format",
        "json",
    )
    assert made.code == 0, made.stderr
    row = json.loads(made.stdout)["fingerprint"]
    assert row["queries"] > 0 and "TreeEnsembleClassifier" in row["gradient_free_reason"]
    assert "gradient-free on onnxruntime" in made.stderr and "per 100 points" in made.stderr
    bundle = load_bundle(tmp_path / "f.fp")
    assert bundle.num_classes == 10 and bundle.class_names[3] == "3"
    assert audit(bundle, path).matching_rate == 1.0  # the audit maps the label output through those names


def test_decision_based_walk_needs_only_labels(zoo: Zoo) -> None:
    """Given labels only, points land just past the boundary and keep the target label."""
    model = OnnxClassifier(zoo.target)
    rng = np.random.default_rng(0)
    starts = zoo.x[:40]
    pool = zoo.x[40:400]
    targets, which = anchor_targets(starts, model.scores(starts), pool, model.scores(pool), False, rng)
    outcome, cost = BoundaryWalk(decision_step=0.02).run_queries(model.predict, None, starts, pool[which], targets)
    assert outcome.converged.mean() > 0.8 and cost.queries == 40 * (20 + 2)
    assert (model.predict(outcome.points[outcome.converged]) == targets[outcome.converged]).all()


def test_anchor_targets_choose_among_classes_that_have_anchors() -> None:
    anchors = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]], dtype=np.float32)
    anchor_scores = np.array([[5.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 9.0, 1.0]], dtype=np.float32)
    starts = np.array([[4.0, 0.0], [2.0, 0.0]], dtype=np.float32)
    start_scores = np.array([[3.0, 1.0, -2.0], [0.0, 2.0, 1.0]], dtype=np.float32)
    rng = np.random.default_rng(0)
    targets, which = anchor_targets(starts, start_scores, anchors, anchor_scores, True, rng)
    assert targets.tolist() == [1, 0]  # class 2 has no anchor; the least likely of the others
    assert which.tolist() == [2, 0]  # the anchor of j nearest to each start
    lonely, _ = anchor_targets(starts[:1], start_scores[:1], anchors[:1], anchor_scores[:1], True, rng)
    assert lonely.tolist() == [-1]


def test_search_scores_match_the_gradient_searchs() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1]], dtype=np.float32)
    assert np.allclose(search_scores(probabilities, "probabilities"), np.log(probabilities))
    sigmoid = np.array([[0.2, 0.8]], dtype=np.float32)  # (1 − p, p)
    z = np.log(0.8 / 0.2)
    assert np.allclose(search_scores(sigmoid, "binary-probability"), [[-z, z]], atol=1e-5)
    logits = np.array([[1.0, -2.0]], dtype=np.float32)
    assert np.array_equal(search_scores(logits, "logits"), logits)


def test_start_points_and_walk_are_reproducible(zoo: Zoo) -> None:
    model = OnnxClassifier(zoo.target)
    low, high = np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)

    def run(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        starts, pool = start_points(20, rng, zoo.x, low, high), start_points(200, rng, zoo.x, low, high)
        scores = search_scores(model.scores(pool), "logits")
        targets, which = anchor_targets(starts, model.scores(starts), pool, scores, False, rng)

        def walk_scores(batch: np.ndarray) -> np.ndarray:
            return search_scores(model.scores(batch), "logits")

        outcome, _ = BoundaryWalk(k=1.0).run_queries(model.predict, walk_scores, starts, pool[which], targets)
        return outcome.points

    assert np.array_equal(run(3), run(3))


def test_points_where_the_label_output_disagrees_with_the_scores_are_dropped(zoo: Zoo, tmp_path: Path) -> None:
    """An SVM with probabilities labels by its decision function, not the probabilities' argmax: the
    search reads the probabilities, an audit the label output, so a point is kept only where both say j."""
    from skl2onnx import to_onnx
    from sklearn import datasets
    from sklearn.svm import SVC

    x, y = datasets.load_wine(return_X_y=True)
    x = ((x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0))).astype(np.float32)
    path = tmp_path / "svm.onnx"
    path.write_bytes(to_onnx(SVC(probability=True, random_state=0).fit(x, y), x[:1]).SerializeToString())
    data = tmp_path / "x.npy"
    np.save(data, x)
    made = fingerprint(
        path,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=FingerprintSettings(n=100, init=StartKind.data, parts=("boundary",), calibration_references=0),
        data_path=data,
    )
    assert "SVMClassifier" in made.gradient_free_reason
    assert made.points == 100 and made.dropped_disagreement > 0
    bundle = load_bundle(made.bundle_path)
    assert _eq5_holds(path, bundle.points, bundle.labels, made.k).all()
    assert audit(bundle, path).matching_rate == 1.0  # read through its label output, as every audit does


def test_a_model_that_answers_only_labels_is_fingerprinted_decision_based(
    zoo: Zoo, forest: tuple[Path, Path], tmp_path: Path
) -> None:
    import onnx

    path, data = forest
    graph = onnx.load(path)
    kept = [output for output in graph.graph.output if output.name == "output_label"]
    del graph.graph.output[:]
    graph.graph.output.extend(kept)
    labels_only = tmp_path / "labels-only.onnx"
    onnx.save(graph, labels_only)
    settings = FingerprintSettings(n=40, init=StartKind.data, parts=("boundary",), calibration_references=0)
    made = fingerprint(
        labels_only,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=settings,
        data_path=data,
    )
    assert "labels only" in made.gradient_free_reason and "decision-based" in made.gradient_free_reason
    bundle = load_bundle(made.bundle_path)
    assert made.points == 40 and bundle.num_classes == 10 and bundle.record.variant == "IPGuard-GF-TR"
    assert bundle.record.search is not None and bundle.record.search.search_scores == "none"
    assert audit(bundle, labels_only).matching_rate == 1.0
    assert audit(bundle, path).matching_rate == 1.0  # the same forest with its probabilities
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    flat = zoo.x.reshape(len(zoo.x), -1)  # an independent forest, on data the target's owner never used
    other = RandomForestClassifier(n_estimators=20, random_state=5).fit(flat[900:], zoo.y[900:])
    (tmp_path / "other.onnx").write_bytes(to_onnx(other, flat[:1]).SerializeToString())
    assert audit(bundle, tmp_path / "other.onnx").matching_rate < 0.9  # points sit at the target's own boundary


@pytest.mark.parametrize("stop_at", [2, 25])  # during the bisection; during the walk past the boundary
def test_a_walk_asked_to_stop_asks_the_model_nothing_more(zoo: Zoo, stop_at: int) -> None:
    """A search's time budget ends a round mid-way (the walk takes the fingerprint's guard as its progress
    callback): no query after the answer True, and only points that satisfy Eq. 5 are kept."""
    model = OnnxClassifier(zoo.target)
    rng = np.random.default_rng(0)
    low, high = np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)
    starts, pool = start_points(20, rng, zoo.x, low, high), start_points(200, rng, zoo.x, low, high)
    targets, which = anchor_targets(starts, model.scores(starts), pool, model.scores(pool), False, rng)
    asked: list[int] = []

    def labels(batch: np.ndarray) -> np.ndarray:
        asked.append(len(batch))
        return model.predict(batch)

    def scores(batch: np.ndarray) -> np.ndarray:
        asked.append(len(batch))
        return search_scores(model.scores(batch), "logits")

    calls: list[int] = []
    asked_by_the_stop: list[int] = []

    def progress(step: int, done: int) -> bool:
        calls.append(step)
        if len(calls) == stop_at:
            asked_by_the_stop.append(len(asked))
        return len(calls) >= stop_at

    walk = BoundaryWalk(k=1.0, bisection_steps=20)
    outcome, cost = walk.run_queries(labels, scores, starts, pool[which], targets, progress=progress)
    assert asked_by_the_stop == [len(asked)] and cost.calls == len(asked)  # nothing asked after the stop
    if stop_at <= walk.bisection_steps:
        assert not outcome.converged.any() and cost.calls == stop_at
    else:  # stopped in the walk: the points placed so far are kept, each satisfying Eq. 5
        assert cost.calls < walk.bisection_steps + 1 + walk.walk_steps
        kept = outcome.points[outcome.converged]
        assert _eq5_holds(zoo.target, kept, outcome.target_labels[outcome.converged], 1.0).all()
