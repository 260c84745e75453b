"""--mistakes: the target's own mistakes on labelled owner data as fingerprint points (AKH-style, issue 14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ipguard_onnx import audit, fingerprint, load_bundle
from ipguard_onnx.fingerprint import FingerprintResult, FingerprintSettings
from ipguard_onnx.keys import load_private_key

from .conftest import RunCli, Zoo

ROWS, FLIPPED = 300, 7


def _logits(model: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits: np.ndarray = session.run(None, {session.get_inputs()[0].name: x})[0]
    return logits


def _labelled(zoo: Zoo, folder: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Owner data whose labels disagree with the target on ``FLIPPED`` rows: the target's mistakes."""
    x = zoo.x[:ROWS]
    said = _logits(zoo.target, x).argmax(axis=1)
    flipped = np.random.default_rng(0).choice(ROWS, FLIPPED, replace=False)
    y = said.copy()
    y[flipped] = (y[flipped] + 1) % 10
    path = folder / "labelled.npz"
    np.savez(path, x=x, y=y)
    return path, flipped, said


def _parted(zoo: Zoo, data: Path, folder: Path) -> FingerprintResult:
    """20 points: 15 searched, 5 of the target's mistakes (a bundle tested in parts)."""
    settings = FingerprintSettings(
        n=20, mistakes=0.25, unique=False, parts=("boundary", "mistakes"), calibration_references=0
    )  # the two kinds alone, at their uncalibrated defaults
    return fingerprint(
        zoo.target,
        folder / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=settings,
        data_path=data,
    )


def _rows_of(points: np.ndarray, x: np.ndarray) -> list[int]:
    """The row of ``x`` each point is (-1 where it is none of them)."""
    flat = x.reshape(len(x), -1)
    return [next((i for i, row in enumerate(flat) if np.array_equal(row, point.ravel())), -1) for point in points]


def test_a_share_of_the_points_are_the_mistakes_of_middling_confidence(zoo: Zoo, tmp_path: Path) -> None:
    data, flipped, said = _labelled(zoo, tmp_path)
    made = _parted(zoo, data, tmp_path)
    bundle = load_bundle(made.bundle_path)
    assert made.points == 20 and made.mistakes == 5 and bundle.metadata["mistakes"] == "5"
    assert bundle.metadata["variant"].endswith("+mistakes")
    rows = _rows_of(bundle.points, zoo.x[:ROWS])
    mistakes = [(index, row) for index, row in enumerate(rows) if row in set(flipped.tolist())]
    assert len(mistakes) == 5  # the other 15 are searched points, not rows of the data
    logits = _logits(zoo.target, zoo.x[:ROWS][flipped])
    top = np.sort(logits, axis=1)
    margin = top[:, -1] - top[:, -2]
    middling = set(flipped[np.argsort(np.abs(margin - np.median(margin)))[:5]].tolist())
    assert {row for _, row in mistakes} == middling  # not the 2 with the margins farthest from the median
    assert all(int(bundle.labels[index]) == int(said[row]) for index, row in mistakes)  # the target's wrong label
    assert audit(bundle, zoo.target).matching_rate == 1.0


def test_mistakes_alone_through_the_cli(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    data, flipped, _ = _labelled(zoo, tmp_path)
    bundle_path = tmp_path / "akh.safetensors"
    result = run_cli(
        "fingerprint",
        zoo.target,
        "--data",
        data,
        "--plain",
        "--mistakes",
        "1",
        "--n",
        50,
        "--key",
        zoo.private_key,
        "-o",
        bundle_path,
    )
    assert result.code == 0, result.stderr
    assert f"mistakes {FLIPPED} points" in " ".join(result.stdout.split()), result.stderr
    bundle = load_bundle(bundle_path)
    assert bundle.metadata["variant"] == "AKH-mistakes" and len(bundle.points) == FLIPPED  # fewer than --n: all
    assert sorted(_rows_of(bundle.points, zoo.x[:ROWS])) == sorted(flipped.tolist())


def test_a_bundle_with_mistakes_is_tested_in_parts_with_one_combined_p_value(zoo: Zoo, tmp_path: Path) -> None:
    from ipguard_onnx.stats import MISTAKES_NULL_AGREEMENT, binomial_tail

    data, _, _ = _labelled(zoo, tmp_path)
    made = _parted(zoo, data, tmp_path)
    bundle = load_bundle(made.bundle_path)
    said = _logits(zoo.independent, bundle.points).argmax(axis=1)
    result = audit(bundle, zoo.independent)
    searched, mistakes = result.parts
    assert (searched.kind, searched.points, mistakes.kind, mistakes.points) == ("boundary", 15, "mistakes", 5)
    assert searched.matched == int((said[:15] == bundle.labels[:15]).sum())
    assert mistakes.matched == int((said[15:] == bundle.labels[15:]).sum())
    assert mistakes.null_agreement == MISTAKES_NULL_AGREEMENT and searched.null_agreement == bundle.null_agreement
    expected = [binomial_tail(part.matched, part.points, part.null_agreement) for part in result.parts]
    assert result.p_value == min(1.0, 2 * min(expected))
    assert result.points_matched == searched.matched + mistakes.matched  # the verdict's rate is still overall


def test_calibrating_a_bundle_in_parts_measures_each_parts_null_agreement(zoo: Zoo, tmp_path: Path) -> None:
    from ipguard_onnx import calibrate

    data, _, _ = _labelled(zoo, tmp_path)
    made = _parted(zoo, data, tmp_path)
    negatives = [zoo.independent, zoo.other_architecture]
    before = [audit(load_bundle(made.bundle_path), negative).parts for negative in negatives]
    calibrate(made.bundle_path, negatives, load_private_key(zoo.private_key), margin=0.05, false_accusation_rate=0.5)
    parts = load_bundle(made.bundle_path).parts
    assert parts[1].null_agreement == round(min(0.999, max(p[1].matching_rate for p in before) + 0.05), 6)
    assert parts[0].null_agreement == round(min(0.999, max(p[0].matching_rate for p in before) + 0.05), 6)
    assert all(part.null_agreement_source.startswith("calibrated on 2") for part in parts)


def test_evaluate_ranks_a_bundle_in_parts_by_its_combined_evidence(zoo: Zoo, tmp_path: Path) -> None:
    import math

    from ipguard_onnx.evaluate import Group, evaluate, roc_auc

    data, _, _ = _labelled(zoo, tmp_path)
    made = _parted(zoo, data, tmp_path)
    suspects: list[tuple[object, Group]] = [
        (zoo.pruned, "positive"),
        (zoo.fine_tuned, "positive"),
        (zoo.independent, "negative"),
        (zoo.other_architecture, "negative"),
    ]
    evaluation = evaluate(made.bundle_path, suspects)
    for (suspect, _), row in zip(suspects, evaluation.rows, strict=True):
        assert row.score == -math.log10(max(audit(made.bundle_path, suspect).p_value, 1e-300))
    copies = [row.copy_score for row in evaluation.rows if row.group == "positive"]
    negatives = [row.copy_score for row in evaluation.rows if row.group == "negative"]
    assert evaluation.roc_auc == roc_auc(copies, negatives)
    assert [row.verdict for row in evaluation.rows] == [audit(made.bundle_path, s).verdict for s, _ in suspects]
