"""evaluate: Eq. 7 against an independent vectorised computation, and the CLI on real models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ipguard_onnx import UsageError
from ipguard_onnx.evaluate import aruc, evaluate, gap, robustness, roc_auc, tpr_at_fpr, uniqueness

from .conftest import RunCli, Zoo


def _reference_aruc(positives: np.ndarray, negatives: np.ndarray, r: int) -> float:
    taus = np.arange(1, r + 1)[:, None] / r
    robust = (positives[None, :] >= taus - 1e-9).mean(axis=1)
    unique = (negatives[None, :] < taus - 1e-9).mean(axis=1)
    return float(np.minimum(robust, unique).sum() / r)


@pytest.mark.parametrize("seed", range(5))
def test_aruc_matches_an_independent_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    positives = rng.integers(50, 101, size=rng.integers(1, 20)) / 100
    negatives = rng.integers(0, 90, size=rng.integers(1, 20)) / 100
    assert aruc(list(positives), list(negatives)) == pytest.approx(_reference_aruc(positives, negatives, 100))
    assert gap(list(positives), list(negatives)) == pytest.approx(positives.min() - negatives.max())


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_and_tpr_at_fpr_match_scikit_learn(seed: int) -> None:
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(seed)
    positives = rng.integers(40, 101, size=rng.integers(2, 30)) / 100
    negatives = rng.integers(0, 80, size=rng.integers(2, 120)) / 100
    truth = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    scores = np.r_[positives, negatives]
    assert roc_auc(list(positives), list(negatives)) == pytest.approx(roc_auc_score(truth, scores))
    fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    for limit in (0.0, 0.01, 0.05, 0.2):
        expected = tpr[fpr <= limit + 1e-12].max()
        assert tpr_at_fpr(list(positives), list(negatives), limit) == pytest.approx(expected)


def test_curves_are_monotone_and_bounded() -> None:
    positives, negatives = [0.97, 0.99, 1.0, 0.9], [0.3, 0.5, 0.62]
    taus = np.linspace(0, 1, 101)
    robust = [robustness(positives, t) for t in taus]
    unique = [uniqueness(negatives, t) for t in taus]
    assert robust == sorted(robust, reverse=True) and unique == sorted(unique)
    assert robust[0] == 1.0 and unique[0] == 0.0 and unique[-1] == 1.0
    # a perfect separation gives R = U = 1 over exactly the thresholds in (max negative, min positive]
    separated = _reference_aruc(np.asarray(positives), np.asarray(negatives), 100)
    assert aruc(positives, negatives) == pytest.approx(separated)
    with pytest.raises(UsageError, match="at least one positive and one negative"):
        aruc([], negatives)


def test_evaluate_on_the_zoo(zoo: Zoo) -> None:
    evaluation = evaluate(
        zoo.bundle,
        [
            (zoo.fine_tuned, "positive"),
            (zoo.pruned, "positive"),
            (zoo.independent, "negative"),
            (zoo.other_architecture, "negative"),
        ],
    )
    assert evaluation.uniqueness == 1.0 and evaluation.robustness == sum(
        rate >= evaluation.threshold for rate in evaluation.rates("positive")
    ) / len(evaluation.rates("positive"))  # the paper's measure, at the signed threshold
    assert evaluation.verdict_tpr == 1.0 and evaluation.false_accusations == 0  # the default verdict's
    assert evaluation.gap == pytest.approx(min(evaluation.rates("positive")) - max(evaluation.rates("negative")))
    assert evaluation.gap > 0
    assert 0 < evaluation.aruc <= 1
    assert len(evaluation.robustness_curve) == 101


def test_evaluate_cli_json_plot_globs_and_folders(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    negatives = tmp_path / "negatives"
    negatives.mkdir()
    shutil.copy(zoo.independent, negatives / "a.onnx")
    shutil.copy(zoo.other_architecture, negatives / "b.onnx")
    plot = tmp_path / "curves.png"
    result = run_cli(
        "evaluate",
        "-f",
        zoo.bundle,
        "--positive",
        str(zoo.folder / "fine_*.onnx"),
        "--positive",
        zoo.pruned,
        "--negative",
        negatives,
        "--hard-positive",
        zoo.target,
        "--plot",
        plot,
        "--format",
        "json",
    )
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert {"aruc", "gap", "rows"} <= set(document)
    groups = {row["suspect"]: row["group"] for row in document["rows"]}
    assert groups == {
        "fine_tuned.onnx": "positive",
        "pruned.onnx": "positive",
        "a.onnx": "negative",
        "b.onnx": "negative",
        "target.onnx": "hard-positive",
    }
    assert all(set(row) >= {"suspect", "group", "matching_rate"} for row in document["rows"])
    assert document["hard_positive_robustness"] == 1.0
    rates = {row["suspect"]: row["matching_rate"] for row in document["rows"]}
    copies = [rates["fine_tuned.onnx"], rates["pruned.onnx"], rates["target.onnx"]]  # the hard positive counts
    assert document["roc_auc"] == pytest.approx(roc_auc(copies, [rates["a.onnx"], rates["b.onnx"]]))
    assert document["tpr_at_1_percent_fpr"] == tpr_at_fpr(copies, [rates["a.onnx"], rates["b.onnx"]], 0.01)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = run_cli("evaluate", "-f", zoo.bundle, "--positive", zoo.pruned, "--negative", negatives)
    assert text.code == 0 and "ARUC" in text.stdout and "gap" in text.stdout and "ROC AUC" in text.stdout
