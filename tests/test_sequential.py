"""Sequential audits: the tests' guarantees measured by simulation, then real suspects, files and APIs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from ipguard_onnx import audit, load_bundle
from ipguard_onnx.audit import audit_many
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.models import HttpClassifier
from ipguard_onnx.sequential import EvidenceTest, SequentialSettings, ThresholdTest, query_order

from .conftest import RunCli, Zoo
from .http_server import Behaviour, PredictionServer


def _decide(population: np.ndarray, threshold: float, error: float) -> tuple[str | None, int]:
    test = ThresholdTest(len(population), threshold, error)
    for seen, x in enumerate(population, start=1):
        test.observe(int(x))
        if test.decision is not None:
            return test.decision, seen
    return test.decision, len(population)


@pytest.mark.parametrize("threshold", [0.85, 0.6])
def test_verdict_errs_at_most_delta_at_the_hardest_populations(threshold: float) -> None:
    """Populations one match either side of the threshold: early stops on the wrong side stay under δ."""
    rng = np.random.default_rng(0)
    n, error, trials = 100, 0.05, 1500
    needed = math.ceil(threshold * n)
    wrong = {"match": 0, "no match": 0}
    for truth, matches in (("no match", needed - 1), ("match", needed)):
        population = np.array([1] * matches + [0] * (n - matches))
        for _ in range(trials):
            decision, _ = _decide(rng.permutation(population), threshold, error)
            assert decision is not None  # asking every point always decides
            if decision != truth:
                wrong[truth] += 1
    # Each side errs with probability ≤ δ/2; three standard errors of slack for the simulation.
    slack = 3 * math.sqrt(error / 2 * (1 - error / 2) / trials)
    assert wrong["no match"] / trials <= error / 2 + slack, wrong
    assert wrong["match"] / trials <= error / 2 + slack, wrong


def test_clear_cases_stop_early_and_every_stop_is_right() -> None:
    rng = np.random.default_rng(1)
    for rate, truth in ((1.0, "match"), (0.97, "match"), (0.3, "no match"), (0.05, "no match")):
        used = []
        for _ in range(40):
            population = (rng.random(100) < rate).astype(int)
            decision, seen = _decide(population, 0.85, 0.01)
            assert decision == ("match" if population.mean() >= 0.85 else "no match")
            used.append(seen)
        assert np.median(used) < 60, (rate, truth, used)


def test_evidence_p_value_is_valid_under_the_null_at_any_stop() -> None:
    """Independent streams agreeing with probability q0: the running minimum of p falls below α at most α often."""
    rng = np.random.default_rng(2)
    q0, alpha, trials = 0.3, 0.05, 2000
    rejected = 0
    for _ in range(trials):
        test = EvidenceTest()
        for x in rng.random(100) < q0:
            test.observe(int(x), q0)
        rejected += test.p_value <= alpha
    assert rejected / trials <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials)
    copy = EvidenceTest()
    for _ in range(30):
        copy.observe(1, q0)
    assert copy.p_value < 1e-6  # a copy agreeing everywhere is overwhelming evidence against q0 = 0.3


def test_the_order_is_fixed_by_the_bundle(zoo: Zoo) -> None:
    bundle = load_bundle(zoo.bundle)
    first, again = query_order(bundle.sha256, 100), query_order(bundle.sha256, 100)
    assert np.array_equal(first, again) and sorted(first.tolist()) == list(range(100))
    assert not np.array_equal(first, query_order("another bundle", 100))


def test_sequential_verdicts_equal_the_fixed_audit_on_every_zoo_model(zoo: Zoo) -> None:
    suspects = [zoo.target, zoo.fine_tuned, zoo.pruned, zoo.independent, zoo.other_architecture]
    for suspect in suspects:
        fixed = audit(zoo.bundle, suspect)
        early = audit(zoo.bundle, suspect, sequential=SequentialSettings())
        assert early.verdict == fixed.verdict, (suspect.name, fixed.matching_rate, early.sequential)
        assert early.sequential is not None and early.points_queried == early.sequential.queries
        if early.sequential.stopped_because != "all points asked":
            assert early.points_queried < fixed.points_queried
    copy = audit(zoo.bundle, zoo.target, sequential=SequentialSettings(batch=1))
    assert copy.sequential is not None and copy.sequential.queries <= 40 and copy.matched


def test_remote_apis_are_sequential_by_default_and_survive_a_rate_limit(zoo: Zoo) -> None:
    behaviour = Behaviour(rate_limit=20.0)
    with PredictionServer(zoo.fine_tuned, behaviour) as server:
        remote = HttpClassifier(f"{server.base}/predict", batch_size=10, retries=4, backoff=0.01)
        (result,) = audit_many([load_bundle(zoo.bundle)], [remote])
    fixed = audit(zoo.bundle, zoo.fine_tuned)
    assert result.sequential is not None and result.verdict == fixed.verdict
    assert behaviour.rejected > 0  # the limit was hit, and Retry-After was waited out
    assert result.points_skipped == 0
    assert behaviour.answered_points == result.points_queried < fixed.points_queried
    with PredictionServer(zoo.fine_tuned) as server:
        (full,) = audit_many([load_bundle(zoo.bundle)], [HttpClassifier(f"{server.base}/predict")], sequential=False)
    assert full.sequential is None and full.points_queried == len(load_bundle(zoo.bundle).points)


def test_cli_sequential_file_audit_reports_queries_and_anytime_p(zoo: Zoo, run_cli: RunCli) -> None:
    result = run_cli("audit", zoo.target, "-f", zoo.bundle, "--sequential", "--format", "json")
    assert result.code == ExitCode.match, result.stderr
    row = json.loads(result.stdout)["results"][0]
    assert row["sequential"]["stopped_because"] == "match settled"
    assert row["points_queried"] == row["sequential"]["queries"] < 100
    assert row["p_value"] == pytest.approx(min(1.0, 1.0 / row["sequential"]["evidence_wealth"]))
    assert "sequential" in result.stderr and "points asked" in result.stderr


@pytest.mark.parametrize(
    ("option", "value"), [("--sequential-batch", "0"), ("--verdict-error", "1.5"), ("--verdict-error", "0")]
)
def test_bad_sequential_options_are_one_line_usage_errors(zoo: Zoo, run_cli: RunCli, option: str, value: str) -> None:
    result = run_cli("audit", zoo.target, "-f", zoo.bundle, "--sequential", option, value)
    assert result.code == ExitCode.usage
    assert len(result.stderr.strip().splitlines()) == 1 and option in result.stderr


def test_an_unanswered_point_means_every_point_is_asked(zoo: Zoo) -> None:
    session = ort.InferenceSession(str(zoo.target), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    calls: list[int] = []

    def flaky(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("busy")
        return np.asarray(session.run(None, {name: batch.astype(np.float32)})[0])

    result = audit(zoo.bundle, flaky, sequential=SequentialSettings())
    assert result.sequential is not None and result.sequential.stopped_because == "all points asked"
    assert result.points_queried == len(load_bundle(zoo.bundle).points) and result.points_skipped == calls[1]
    assert result.verdict == audit(zoo.bundle, zoo.target).verdict == "match"


def test_an_api_switching_between_labels_and_scores_is_refused_sequentially_too(
    zoo: Zoo, tmp_path: Path, run_cli: RunCli
) -> None:
    with PredictionServer(zoo.target, Behaviour(answer="alternate")) as server:
        result = run_cli("audit", "--endpoint", f"{server.base}/predict", "-f", zoo.bundle, "--batch-size", "5")
    assert result.code == ExitCode.input, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "labels and others with scores" in result.stderr
