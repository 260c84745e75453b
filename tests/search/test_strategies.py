"""The batched Eq. 5 search on the real surrogate of the demo model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ipguard_onnx import OnnxClassifier
from ipguard_onnx.search import STRATEGIES, GradientSearch, IPGuardSearch, SearchOptions, eq5_loss
from ipguard_onnx.surrogate import Surrogate

from ..conftest import Zoo


def test_eq5_is_zero_exactly_when_j_leads_i_by_k_and_i_leads_the_rest() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 5, generator=generator) * 4
    source = torch.randint(0, 5, (500,), generator=generator)
    target = (source + torch.randint(1, 5, (500,), generator=generator)) % 5
    k = 1.5
    loss = eq5_loss(logits, source, target, k)
    z_i, z_j = logits.gather(1, source[:, None])[:, 0], logits.gather(1, target[:, None])[:, 0]
    rest = logits.clone()
    rest[torch.arange(500), source] = -torch.inf
    rest[torch.arange(500), target] = -torch.inf
    satisfied = (z_j >= z_i + k) & (z_i >= rest.max(1).values)
    assert torch.equal(loss == 0, satisfied)
    assert (loss >= 0).all() and satisfied.any() and (~satisfied).any()


def test_eq5_with_two_classes_needs_only_the_margin() -> None:
    logits = torch.tensor([[0.0, 5.0], [0.0, 1.0]])
    loss = eq5_loss(logits, torch.tensor([0, 0]), torch.tensor([1, 1]), 2.0)
    assert loss[0] == 0 and loss[1] > 0


def test_batched_search_freezes_points_once_converged(zoo: Zoo) -> None:
    surrogate = Surrogate(OnnxClassifier(zoo.target))
    rng = np.random.default_rng(0)
    start = rng.random((40, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        logits = surrogate.scores_tensor(torch.from_numpy(start)).numpy()
    source, target = logits.argmax(1), logits.argmin(1)
    low, high = np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)
    seen: list[tuple[int, int]] = []
    outcome = IPGuardSearch(k=3.0).run(
        surrogate.scores_tensor, start, source, target, low, high, progress=lambda i, d: seen.append((i, d))
    )
    assert outcome.converged.all()
    assert [d for _, d in seen] == sorted(d for _, d in seen)  # frozen points never come back
    # A point frozen in a short run stays exactly there in a longer one: Adam's momentum is masked.
    cut = int(np.median(outcome.iterations))
    short = IPGuardSearch(k=3.0, max_iterations=cut).run(surrogate.scores_tensor, start, source, target, low, high)
    assert 0 < short.converged.sum() < len(start)
    assert np.array_equal(short.points[short.converged], outcome.points[short.converged])
    # Each point stopped at its own iteration count, not the batch's last one.
    assert outcome.iterations.min() < outcome.iterations.max() == seen[-1][0]
    assert (outcome.points >= 0).all() and (outcome.points <= 1).all()


def test_frozen_points_leave_the_batch_the_model_runs_on(zoo: Zoo) -> None:
    """A step costs what its active points cost: each point is run once per iteration it searched, plus the
    run that found it converged, and never after (on a large model that is most of the search's time)."""
    surrogate = Surrogate(OnnxClassifier(zoo.target))
    start = np.random.default_rng(1).random((40, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        logits = surrogate.scores_tensor(torch.from_numpy(start)).numpy()
    rows: list[int] = []

    def counted(batch: torch.Tensor) -> torch.Tensor:
        rows.append(len(batch))
        return surrogate.scores_tensor(batch)

    low, high = np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)
    outcome = IPGuardSearch(k=3.0).run(counted, start, logits.argmax(1), logits.argmin(1), low, high)
    assert outcome.converged.all() and outcome.iterations.min() < outcome.iterations.max()
    assert sum(rows) == int((outcome.iterations + 1).sum()) < len(start) * len(rows)
    assert rows == sorted(rows, reverse=True)


def test_a_step_in_chunks_is_the_step_in_one_batch(zoo: Zoo) -> None:
    """Large inputs run the model in chunks (memory stays bounded: 100 points of 256×256 in one pass took over
    24 GB): the points, their convergence and their iterations are those of one batch, and no chunk holds more
    than ``chunk_values`` input values."""
    surrogate = Surrogate(OnnxClassifier(zoo.target))
    start = np.random.default_rng(2).random((30, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        logits = surrogate.scores_tensor(torch.from_numpy(start)).numpy()
    source, target = logits.argmax(1), logits.argmin(1)
    low, high = np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)
    sizes: list[int] = []

    def counted(batch: torch.Tensor) -> torch.Tensor:
        sizes.append(len(batch))
        return surrogate.scores_tensor(batch)

    whole = IPGuardSearch(k=3.0).run(surrogate.scores_tensor, start, source, target, low, high)
    chunked = IPGuardSearch(k=3.0, chunk_values=4 * 64).run(counted, start, source, target, low, high)
    assert max(sizes) == 4 and len(sizes) > 2 * max(chunked.iterations)  # several chunks in a step
    assert whole.converged.all() and np.array_equal(chunked.converged, whole.converged)
    assert np.array_equal(chunked.iterations, whole.iterations)
    np.testing.assert_allclose(chunked.points, whole.points, atol=1e-5)


@pytest.mark.parametrize("method", ["igsm", "cw-l2"])
def test_a_baseline_asked_to_stop_stops(zoo: Zoo, method: str) -> None:
    """The fingerprint's time budget ends the paper's baselines too: once the progress callback answers True
    the surrogate is asked nothing more (IGSM per iteration, CW-L2 between its binary-search steps)."""
    surrogate = Surrogate(OnnxClassifier(zoo.target))
    start = np.random.default_rng(3).random((10, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        logits = surrogate.scores_tensor(torch.from_numpy(start)).numpy()
    calls: list[int] = []
    asked: list[int] = []

    def counted(batch: torch.Tensor) -> torch.Tensor:
        asked.append(len(batch))
        return surrogate.scores_tensor(batch)

    def progress(step: int, done: int) -> bool:
        calls.append(len(asked))
        return True

    strategy = STRATEGIES[method].from_options(SearchOptions(k=1e6, epsilon=0.1, max_iterations=50, learning_rate=0.01))
    low, high = np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)
    assert isinstance(strategy, GradientSearch)
    strategy.run(counted, start, logits.argmax(1), logits.argmin(1), low, high, progress=progress)
    assert len(calls) == 1  # no second round after the first answer True
    assert len(asked) <= calls[0] + 1  # at most the closing check of where the points landed


def test_search_that_cannot_converge_reports_it(zoo: Zoo) -> None:
    surrogate = Surrogate(OnnxClassifier(zoo.target))
    start = np.full((5, 1, 8, 8), 0.5, np.float32)
    with torch.no_grad():
        logits = surrogate.scores_tensor(torch.from_numpy(start)).numpy()
    outcome = IPGuardSearch(k=1e6, max_iterations=5).run(
        surrogate.scores_tensor,
        start,
        logits.argmax(1),
        logits.argmin(1),
        np.zeros((1, 8, 8), np.float32),
        np.ones((1, 8, 8), np.float32),
    )
    assert not outcome.converged.any()
    assert (outcome.iterations == 5).all()


def test_repr_shows_the_settings() -> None:
    assert repr(IPGuardSearch(k=2.0, chunk_values=64)) == (
        "IPGuardSearch(k=2.0, max_iterations=1000, learning_rate=0.01, chunk_values=64)"
    )


def test_parity_gate_refuses_a_surrogate_whose_weights_drifted(zoo: Zoo) -> None:
    """A faithful conversion passes the gate; the same surrogate with one weight tensor perturbed does not."""
    from ipguard_onnx import SurrogateError

    surrogate = Surrogate(OnnxClassifier(zoo.target))
    assert surrogate.check_parity(zoo.x[:64]).ok
    weight = next(parameter for parameter in surrogate.module.parameters() if parameter.ndim > 1)
    with torch.no_grad():
        weight.add_(0.05 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(SurrogateError, match="disagrees with onnxruntime.*nothing was fingerprinted"):
        surrogate.check_parity(zoo.x[:64])


@pytest.mark.parametrize("method", ["random", "fgsm", "igsm", "cw-l2"])
def test_baselines_fingerprint_through_the_same_pipeline(zoo: Zoo, tmp_path: Path, method: str) -> None:
    """The paper's baselines (Section 5.1.3) as sibling strategies: a verified bundle the target matches."""
    from ipguard_onnx import audit, fingerprint, load_bundle
    from ipguard_onnx.fingerprint import FingerprintSettings
    from ipguard_onnx.keys import load_private_key

    settings = FingerprintSettings(n=12, method=method, max_iterations=200, epsilon=0.2)
    result = fingerprint(
        zoo.target, tmp_path / "fp.safetensors", signing_key=load_private_key(zoo.private_key), settings=settings
    )
    bundle = load_bundle(result.bundle_path)
    assert bundle.metadata["method"] == method and result.points == 12
    assert audit(bundle, zoo.target).matching_rate == 1.0
    assert bundle.record.search is not None and bundle.record.search.n_points == 12
    if method == "igsm":  # the iterative attack reaches its target label j on the surrogate within ε
        assert bundle.record.search.hit_rate > 0.5


def test_cw_l2_reaches_its_targets_even_from_pixels_at_the_bounds(zoo: Zoo) -> None:
    """Digits have many pixels at exactly 0 or 1; the tanh change of variables must still move them."""
    from ipguard_onnx.search import CWL2

    surrogate = Surrogate(OnnxClassifier(zoo.target))
    start = zoo.x[:20]
    assert ((start == 0) | (start == 1)).mean() > 0.3
    with torch.no_grad():
        logits = surrogate.scores_tensor(torch.from_numpy(start)).numpy()
    low, high = np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)
    cw = CWL2(k=0.0, max_iterations=500, learning_rate=0.05)
    outcome = cw.run(surrogate.scores_tensor, start, logits.argmax(1), logits.argmin(1), low, high)
    assert outcome.hit_rate >= 0.9
    with torch.no_grad():
        final = surrogate.scores_tensor(torch.from_numpy(outcome.points)).argmax(1).numpy()
    assert (final[outcome.hit] == logits.argmin(1)[outcome.hit]).all()


def test_baseline_reprs_show_their_settings() -> None:
    from ipguard_onnx.search import CWL2, FGSM, IGSM, RandomPoints

    assert repr(FGSM(epsilon=0.05)) == "FGSM(epsilon=0.05)"
    assert repr(IGSM()) == f"IGSM(epsilon=0.1, step={1 / 255!r}, max_iterations=1000)"
    assert repr(RandomPoints()) == "RandomPoints()"
    assert repr(CWL2(initial_c=2.0)) == (
        "CWL2(k=0.0, learning_rate=0.01, max_iterations=1000, binary_search_steps=5, initial_c=2.0)"
    )


def test_surrogate_scores_in_chunks_are_the_scores_in_one_batch(zoo: Zoo) -> None:
    """Scores without gradient (labels of the starts and of the candidates, parity) run in chunks too: a
    256×256 classifier cost 284 ms a point in a batch of 100 against 114 in batches of 2–10."""
    surrogate = Surrogate(OnnxClassifier(zoo.target))
    points = np.random.default_rng(3).random((30, 1, 8, 8), dtype=np.float32)
    whole = surrogate.scores(points)
    sizes: list[int] = []
    surrogate.module.register_forward_pre_hook(lambda _, inputs: sizes.append(len(inputs[0])))
    surrogate.chunk_values = 4 * 64
    np.testing.assert_allclose(surrogate.scores(points), whole, rtol=1e-4, atol=1e-4)  # summed in other orders
    assert max(sizes) == 4 and len(sizes) == 8
    sizes.clear()
    assert surrogate.raw_scores(points).shape[0] == 30 and max(sizes) == 4
    assert surrogate.scores(points[:0]).shape == (0, whole.shape[1])  # an empty batch: no scores, not a failure


def test_the_paper_search_reports_the_surrogate_labels_of_its_converged_points(zoo: Zoo) -> None:
    """A point frozen at Eq. 5 with k > 0 is labelled j by the surrogate, so the candidates skip a forward pass
    (100 NudeNet points cost 11 s of it): the reported labels are the surrogate's own, −1 where not converged."""
    surrogate = Surrogate(OnnxClassifier(zoo.target))
    start = np.random.default_rng(4).random((40, 1, 8, 8), dtype=np.float32)
    logits = surrogate.scores(start)
    source, target = logits.argmax(1), logits.argmin(1)
    low, high = np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)
    outcome = IPGuardSearch(k=3.0, max_iterations=60).run(surrogate.scores_tensor, start, source, target, low, high)
    assert outcome.surrogate_labels is not None and outcome.converged.any() and (~outcome.converged).any()
    converged = outcome.converged
    assert np.array_equal(outcome.surrogate_labels[converged], surrogate.predict(outcome.points[converged]))
    assert (outcome.surrogate_labels[~converged] == -1).all()
    zero_margin = IPGuardSearch(k=0.0, max_iterations=5).run(surrogate.scores_tensor, start, source, target, low, high)
    assert zero_margin.surrogate_labels is None  # a tie at k = 0 could go either way: asked, not assumed
