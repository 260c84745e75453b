"""Audits of every kind of suspect: scikit-learn exports, sessions, callables, and adapted inputs."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ipguard_onnx import AuditError, OnnxSuspect, audit, fingerprint, load_bundle
from ipguard_onnx.audit import AuditOptions, audit_many
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key
from ipguard_onnx.preprocessing import Preprocessing

from .conftest import Zoo

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _train(kind: str, x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    models = {
        "random-forest": lambda: RandomForestClassifier(n_estimators=30, random_state=0),
        "gradient-boosting": lambda: GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0),
        "svc": lambda: SVC(random_state=0),
        "logistic-regression": lambda: LogisticRegression(max_iter=300),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return models[kind]().fit(x, y)


def _export(model: object, x: np.ndarray, path: Path, **options: object) -> Path:
    from skl2onnx import to_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = to_onnx(model, x[:1].astype(np.float32), options=options or None)
    onnx.save(proto, path)
    return path


@pytest.fixture(scope="session")
def digits_flat(zoo: Zoo) -> tuple[np.ndarray, np.ndarray]:
    return zoo.x.reshape(len(zoo.x), -1), zoo.y


def _sklearn_rate(model: Any, zoo: Zoo) -> float:
    """The matching rate computed directly from scikit-learn's own predict: the ground truth."""
    bundle = load_bundle(zoo.bundle)
    predicted = model.predict(bundle.points.reshape(len(bundle.points), -1))
    return float((np.asarray(predicted).astype(np.int64) == bundle.labels).mean())


@pytest.mark.parametrize("kind", ["random-forest", "gradient-boosting", "svc", "logistic-regression"])
@pytest.mark.parametrize("zipmap", [True, False])
def test_sklearn_exports_are_audited_like_sklearn_itself(
    zoo: Zoo, digits_flat: tuple[np.ndarray, np.ndarray], tmp_path: Path, kind: str, zipmap: bool
) -> None:
    x, y = digits_flat
    model = _train(kind, x, y)
    options = {} if zipmap or kind == "svc" else {"zipmap": False}
    path = _export(model, x, tmp_path / f"{kind}.onnx", **options)
    result = audit(zoo.bundle, path)
    assert result.points_skipped == 0
    assert result.input_adaptation == ("flattened (1, 8, 8) → (64,)",)
    # skl2onnx compares tree thresholds in float32, scikit-learn in float64: on boundary points a
    # forest may flip a vote or two; everything else must agree exactly.
    tolerance = 0.03 if kind in ("random-forest", "gradient-boosting") else 1e-9
    assert abs(result.matching_rate - _sklearn_rate(model, zoo)) <= tolerance
    assert not result.matched  # independently trained: the paper's random-forest negatives


def test_probability_maps_alone_are_read(zoo: Zoo, digits_flat: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    """A graph whose only output is ZipMap's sequence of {class: probability} maps."""
    x, y = digits_flat
    model = _train("random-forest", x, y)
    proto = onnx.load(_export(model, x, tmp_path / "rf.onnx"))
    del proto.graph.output[0]  # drop the label output
    onnx.save(proto, tmp_path / "maps.onnx")
    suspect = OnnxSuspect(tmp_path / "maps.onnx")
    assert suspect.output_spec.kind == "probability-maps"
    result = audit(zoo.bundle, suspect)
    # argmax of the probabilities may differ from a forest's vote only on exact ties
    assert abs(result.matching_rate - _sklearn_rate(model, zoo)) <= 0.02


def test_string_labels_map_through_class_names(
    zoo: Zoo, digits_flat: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = digits_flat
    named = np.asarray(NAMES)[y]
    model = _train("logistic-regression", x, named)
    path = _export(model, x, tmp_path / "named.onnx")
    with pytest.raises(AuditError, match="no class names; re-create it with 'fingerprint --class-names'"):
        audit(zoo.bundle, path)
    key = load_private_key(zoo.private_key)
    settings = FingerprintSettings(n=50, class_names=NAMES)
    named_bundle = fingerprint(zoo.target, tmp_path / "named.safetensors", signing_key=key, settings=settings)
    bundle = load_bundle(named_bundle.bundle_path)
    assert bundle.class_names == NAMES
    result = audit(bundle, path)
    expected = float((model.predict(bundle.points.reshape(50, -1)) == np.asarray(NAMES)[bundle.labels]).mean())
    assert result.points_skipped == 0 and result.matching_rate == pytest.approx(expected)


def test_sessions_and_callables_agree_with_the_file(zoo: Zoo) -> None:
    session = ort.InferenceSession(str(zoo.fine_tuned), providers=["CPUExecutionProvider"])
    by_file = audit(zoo.bundle, zoo.fine_tuned)
    by_session = audit(zoo.bundle, session)
    name = session.get_inputs()[0].name
    by_scores = audit(zoo.bundle, lambda batch: session.run(None, {name: batch})[0])
    by_labels = audit(zoo.bundle, lambda batch: session.run(None, {name: batch})[0].argmax(1))
    rates = {r.matching_rate for r in (by_file, by_session, by_scores, by_labels)}
    assert len(rates) == 1 and by_file.matched
    assert by_session.suspect == "onnxruntime session" and by_session.suspect_sha256 is None


def test_a_failing_callable_is_skipped_not_counted(zoo: Zoo) -> None:
    session = ort.InferenceSession(str(zoo.target), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    calls = []

    def flaky(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) % 2 == 0:
            raise ConnectionError("backend down")
        return np.asarray(session.run(None, {name: batch})[0])

    bundle = load_bundle(zoo.bundle)
    from ipguard_onnx.models import CallableClassifier

    result = audit(bundle, CallableClassifier(flaky, name="flaky", batch_size=10))
    batches = -(-len(bundle.points) // 10)
    failed = sum(min(10, len(bundle.points) - 10 * b) for b in range(1, batches, 2))  # every second batch
    assert result.points_skipped == failed and result.skipped_reasons == {"ConnectionError: backend down": failed}
    assert result.matching_rate == 1.0 and result.points_matched == len(bundle.points) - failed
    assert result.verdict == "inconclusive"  # 50 % answered is below the 80 % needed
    lenient = audit(bundle, CallableClassifier(flaky, name="flaky", batch_size=10), min_answered=0.4)
    assert lenient.verdict == "match", lenient.why


def test_callable_with_a_wrong_shape_is_an_error(zoo: Zoo) -> None:
    with pytest.raises(AuditError, match="return one label per point"):
        audit(zoo.bundle, lambda batch: np.zeros((len(batch), 2, 2)))
    with pytest.raises(AuditError, match="cannot audit a int"):
        audit(zoo.bundle, 42)


def _wrapped_export(zoo: Zoo, path: Path, wrap: str) -> Path:
    """The conftest target behind an input convention: 0-255 pixels, normalised, float16, or 16×16."""
    import torch
    from torch import nn

    from ipguard_onnx import demo

    target = demo.train(demo.digits_cnn(seed=0), zoo.x, zoo.y, seed=0)

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = target
            self.pool = nn.AvgPool2d(2)

        def forward(self, batch: torch.Tensor) -> torch.Tensor:
            if wrap == "pixels":
                batch = batch / 255.0
            elif wrap == "normalised":
                batch = batch * 0.25 + 0.5
            elif wrap == "float16":
                batch = batch.float()
            elif wrap == "16x16":
                batch = self.pool(batch)
            result: torch.Tensor = self.inner(batch)
            return result

    sample = zoo.x[:4]
    if wrap == "float16":
        sample = sample.astype(np.float16)
    elif wrap == "16x16":
        sample = np.repeat(np.repeat(sample, 2, axis=2), 2, axis=3)
    return demo.export_onnx(Wrapped(), np.ascontiguousarray(sample), path)


@pytest.mark.parametrize(
    "wrap,preprocessing",
    [
        ("pixels", Preprocessing(scale=255.0)),
        ("normalised", Preprocessing(mean=(0.5,), std=(0.25,))),
        ("float16", None),
        ("16x16", None),
    ],
)
def test_input_conventions_are_adapted(
    zoo: Zoo, tmp_path: Path, wrap: str, preprocessing: Preprocessing | None
) -> None:
    suspect = _wrapped_export(zoo, tmp_path / f"{wrap}.onnx", wrap)
    result = audit(zoo.bundle, suspect, preprocessing=preprocessing)
    assert result.matched, result
    if preprocessing is not None:
        assert not audit(zoo.bundle, suspect).matched  # the same suspect, fed the wrong convention
    if wrap == "16x16":
        assert result.input_adaptation == ("resized 8×8 → 16×16",)


def test_preprocessing_stored_in_the_bundle_is_the_default(zoo: Zoo, tmp_path: Path) -> None:
    suspect = _wrapped_export(zoo, tmp_path / "pixels.onnx", "pixels")
    key = load_private_key(zoo.private_key)
    settings = FingerprintSettings(n=30, preprocessing=Preprocessing(scale=255.0))
    made = fingerprint(zoo.target, tmp_path / "fp.safetensors", signing_key=key, settings=settings)
    assert audit(made.bundle_path, suspect, threshold=0.85).matched  # no owner data: the paper's rule decides
    assert not audit(made.bundle_path, suspect, preprocessing=Preprocessing(), threshold=0.85).matched


def test_many_bundles_against_many_suspects_are_ranked(zoo: Zoo, tmp_path: Path) -> None:
    key = load_private_key(zoo.private_key)
    other = fingerprint(
        zoo.independent, tmp_path / "other.safetensors", signing_key=key, settings=FingerprintSettings(n=30)
    )
    bundles = [load_bundle(zoo.bundle), load_bundle(other.bundle_path)]
    results = audit_many(bundles, [zoo.target, zoo.independent, zoo.other_architecture], AuditOptions(threshold=0.85))
    assert len(results) == 6
    rates = [(r.verdict != "match", -r.matching_rate) for r in results]
    assert rates == sorted(rates)
    by_pair = {(r.suspect, r.fingerprint): r.matched for r in results}
    assert by_pair[("target.onnx", zoo.bundle.name)] and by_pair[("independent.onnx", "other.safetensors")]
    assert not by_pair[("independent.onnx", zoo.bundle.name)]


def test_every_suspect_of_a_batch_chooses_its_output_by_the_bundles_class_count(zoo: Zoo, tmp_path: Path) -> None:
    """Two generic heads ([N, 4] first, [N, 10] second): only the fingerprint's 10 classes pick the second,
    for the first suspect of a batch and for every one after it."""
    from onnx import TensorProto, helper, numpy_helper

    from ipguard_onnx.audit import audit_many

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=(64, c)).astype(np.float32), f"W{c}") for c in (4, 10)]
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W4"], ["head_a"]),
        helper.make_node("MatMul", ["flat", "W10"], ["head_b"]),
    ]
    graph = helper.make_graph(
        nodes,
        "two-heads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [
            helper.make_tensor_value_info("head_a", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("head_b", TensorProto.FLOAT, ["N", 10]),
        ],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    paths = [tmp_path / "first.onnx", tmp_path / "second.onnx"]
    for path in paths:
        onnx.save(model, path)
    results = audit_many([load_bundle(zoo.bundle)], paths)
    assert sorted(r.suspect for r in results) == ["first.onnx", "second.onnx"]
    assert all(r.suspect_details["output"].startswith("head_b") for r in results), [r.suspect_details for r in results]


def test_a_group_of_bundles_is_asked_in_one_batch_with_the_results_of_separate_audits(zoo: Zoo) -> None:
    """audit_many asks one suspect every bundle's points together (a scan's cost is then inference, not one
    call per bundle); each bundle's result is the one a separate audit gives."""
    import onnxruntime as ort

    from ipguard_onnx.audit import audit_with
    from ipguard_onnx.models import CallableClassifier

    session = ort.InferenceSession(str(zoo.pruned), providers=["CPUExecutionProvider"])
    batches: list[int] = []

    def suspect(points: np.ndarray) -> np.ndarray:
        batches.append(len(points))
        return np.asarray(session.run(None, {session.get_inputs()[0].name: points.astype(np.float32)})[0])

    bundles = [load_bundle(zoo.bundle) for _ in range(3)]
    remote = CallableClassifier(suspect, batch_size=1000)
    grouped = audit_many(bundles, [remote])
    assert batches == [3 * len(bundles[0].points)]  # one call for the three bundles
    batches.clear()
    alone = [audit_with(bundle, remote, AuditOptions()) for bundle in bundles]
    assert len(batches) == 3
    for together, separate in zip(grouped, alone, strict=True):
        assert (together.verdict, together.matching_rate, together.p_value, together.answers) == (
            separate.verdict,
            separate.matching_rate,
            separate.p_value,
            separate.answers,
        )
