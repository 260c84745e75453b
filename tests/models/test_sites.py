"""Where a classifier's answer sits (issue 25): batch axes not first, per-position outputs whose length follows
the input, outputs with no batch axis, declared shapes that lie — and searches that end within their budget."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ipguard_onnx import audit
from ipguard_onnx.bundle import load_bundle
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.models import OnnxClassifier

from ..conftest import RunCli, one_line_error
from .graphs import save_graph

CLASSES = 5


def _save(
    path: Path,
    nodes: list[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    output: onnx.ValueInfoProto,
    weights: dict[str, np.ndarray],
) -> Path:
    return save_graph(path, nodes, inputs, [output], weights)


def _weights(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 2, (6, CLASSES)).astype(np.float32)


def _per_step(path: Path, seed: int, *, time_first: bool) -> Path:
    """A per-time-step classifier: frames [N, T, 6] → scores per step, [N, T, C] or (CTC-style) [T, N, C];
    T follows the input's length."""
    x = helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["N", "T", 6])
    nodes = [helper.make_node("MatMul", ["frames", "W"], ["z" if time_first else "scores"])]
    dims: list[int | str] = ["N", "T", CLASSES]
    if time_first:
        nodes.append(helper.make_node("Transpose", ["z"], ["scores"], perm=[1, 0, 2]))
        dims = ["T", "N", CLASSES]
    output = helper.make_tensor_value_info("scores", TensorProto.FLOAT, dims)
    return _save(path, nodes, [x], output, {"W": _weights(seed)})


def _lying(path: Path, seed: int) -> Path:
    """Declares a rank-0 output; onnxruntime returns [N, C]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    return _save(path, [helper.make_node("MatMul", ["x", "W"], ["y"])], [x], output, {"W": _weights(seed)})


def _no_batch(path: Path, seed: int) -> Path:
    """One sample per run ([1, 8, 6]) and an output [seq, C] with no batch axis, declared as if [N, C]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z"]), helper.make_node("Squeeze", ["z", "axis"], ["y"])]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["seq", CLASSES])
    return _save(path, nodes, [x], output, {"W": _weights(seed), "axis": np.array([0], np.int64)})


def _mean_label(weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    """What ``--position mean`` promises: the class with the highest mean score over the positions."""
    scores = points.reshape(len(points), -1, 6) @ weights
    labels: np.ndarray = scores.mean(axis=1).argmax(axis=1)
    return labels


def _middle_label(weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    """What the default site promises: the class at the middle position."""
    scores = points.reshape(len(points), -1, 6) @ weights
    labels: np.ndarray = scores[:, scores.shape[1] // 2].argmax(axis=1)
    return labels


@pytest.mark.parametrize("time_first", [False, True], ids=["N-T-C", "T-N-C"])
def test_per_step_outputs_are_read_at_their_batch_axis_with_positions_averaged(
    tmp_path: Path, time_first: bool
) -> None:
    model = OnnxClassifier(_per_step(tmp_path / "steps.onnx", seed=1, time_first=time_first), input_shape=(7, 6))
    spec = model.output_spec
    assert (spec.batch_axis, spec.positions, spec.num_classes) == (1 if time_first else 0, 7, CLASSES)
    assert "7 positions per sample" in spec.chosen_because and f"batch axis {spec.batch_axis}" in spec.site
    points = np.random.default_rng(0).normal(size=(40, 7, 6)).astype(np.float32)
    assert "position 3" in spec.site and np.array_equal(model.predict(points), _middle_label(_weights(1), points))
    path = _per_step(tmp_path / "steps.onnx", seed=1, time_first=time_first)
    averaged = OnnxClassifier(path, input_shape=(7, 6), position="mean")
    assert np.array_equal(averaged.predict(points), _mean_label(_weights(1), points))
    first = OnnxClassifier(path, input_shape=(7, 6), position="0")
    assert np.array_equal(first.predict(points), (points[:, 0] @ _weights(1)).argmax(axis=1))


def test_a_declared_shape_that_lies_is_measured(tmp_path: Path) -> None:
    model = OnnxClassifier(_lying(tmp_path / "lie.onnx", seed=2))
    points = np.random.default_rng(1).normal(size=(30, 6)).astype(np.float32)
    assert model.num_classes == CLASSES
    assert np.array_equal(model.predict(points), (points @ _weights(2)).argmax(axis=1))


def test_an_output_without_a_batch_axis_is_read_one_sample_per_run(tmp_path: Path) -> None:
    model = OnnxClassifier(_no_batch(tmp_path / "seq.onnx", seed=3))
    points = np.random.default_rng(2).normal(size=(12, 8, 6)).astype(np.float32)
    assert np.array_equal(model.predict(points), _middle_label(_weights(3), points))  # trusted only once it ran
    assert model.output_spec.batch_axis is None and model.output_spec.positions == 8


def test_a_ctc_style_model_is_fingerprinted_and_its_site_signed(tmp_path: Path, run_cli: RunCli) -> None:
    assert run_cli("keygen", "--out", tmp_path / "k.pem").code == 0
    target = _per_step(tmp_path / "ctc.onnx", seed=4, time_first=True)
    made = run_cli(
        "fingerprint",
        target,
        "--key",
        tmp_path / "k.pem",
        "--n",
        20,
        "--k",
        0.5,
        "--domain",
        "-1,1",
        "--input-shape",
        "9,6",
        "-o",
        tmp_path / "ctc.fp",
    )
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "ctc.fp")
    assert "batch axis 1" in bundle.record.output_site and "9 positions" in bundle.record.output_site
    assert audit(bundle, target, threshold=0.85).matching_rate == 1.0
    other = audit(bundle, _per_step(tmp_path / "other.onnx", seed=5, time_first=False), threshold=0.85)
    assert other.matching_rate < 0.85  # another model, read the same way (its own batch axis, found by running)


def test_a_class_axis_the_owner_names_is_read_the_same_way_in_audits(tmp_path: Path, run_cli: RunCli) -> None:
    """[N, C, T] (classes before time, as a 1-D convolution writes them): --class-axis 1, signed, and the
    suspect is read with it too (without it T would be taken for the classes)."""
    x = helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["N", 4, 6])
    nodes = [
        helper.make_node("MatMul", ["frames", "W"], ["z"]),
        helper.make_node("Transpose", ["z"], ["scores"], perm=[0, 2, 1]),
    ]
    output = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", CLASSES, 4])
    target = _save(tmp_path / "conv.onnx", nodes, [x], output, {"W": _weights(8)})
    assert run_cli("keygen", "--out", tmp_path / "k.pem").code == 0
    made = run_cli(
        "fingerprint",
        target,
        "--key",
        tmp_path / "k.pem",
        "--n",
        20,
        "--k",
        0.5,
        "--domain",
        "-1,1",
        "--class-axis",
        1,
        "-o",
        tmp_path / "conv.fp",
    )
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "conv.fp")
    assert bundle.num_classes == CLASSES and bundle.record.class_axis == 1
    assert audit(bundle, target, threshold=0.85).matching_rate == 1.0


def _unreachable(path: Path) -> Path:
    """Scores bounded in [0, 1] (a sigmoid per class): no margin of 50 between two classes exists."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z"]), helper.make_node("Sigmoid", ["z"], ["y"])]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", CLASSES])
    return _save(path, nodes, [x], output, {"W": _weights(6)})


def test_a_search_that_cannot_converge_ends_early_and_says_why(tmp_path: Path, run_cli: RunCli) -> None:
    assert run_cli("keygen", "--out", tmp_path / "k.pem").code == 0
    target = _unreachable(tmp_path / "flat.onnx")
    started = time.monotonic()
    result = run_cli(
        "fingerprint",
        target,
        "--key",
        tmp_path / "k.pem",
        "--n",
        10,
        "--k",
        50,
        "--max-iterations",
        100_000,
        "-o",
        tmp_path / "flat.fp",
    )
    assert result.code == ExitCode.input
    line = one_line_error(result)
    assert "not converging" in line or "no point reached" in line
    assert time.monotonic() - started < 120  # 100,000 iterations would take far longer: it stopped at the stall


def test_the_time_budget_ends_every_search(tmp_path: Path, run_cli: RunCli) -> None:
    assert run_cli("keygen", "--out", tmp_path / "k.pem").code == 0
    target = _per_step(tmp_path / "steps.onnx", seed=7, time_first=False)
    result = run_cli(
        "fingerprint",
        target,
        "--key",
        tmp_path / "k.pem",
        "--n",
        50,
        "--input-shape",
        "5,6",
        "--time-budget",
        0.001,
        "--format",
        "json",
        "-o",
        tmp_path / "s.fp",
    )
    if result.code == 0:  # some points before the budget ran out: kept, and the report says why it stopped
        assert "time budget" in json.loads(result.stdout)["fingerprint"]["search_stopped"]
    else:
        assert result.code == ExitCode.input and "time budget of 0.001 s ran out" in one_line_error(result)
    refused = run_cli("fingerprint", target, "--key", tmp_path / "k.pem", "--time-budget", -1)
    assert refused.code == ExitCode.usage and "--time-budget" in one_line_error(refused)


def _heads(path: Path, seeds: Sequence[int]) -> Path:
    """A multi-digit captcha's pattern: one input, a head per character, each [N, C]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])
    nodes = [helper.make_node("MatMul", ["x", f"W{index}"], [f"char{index}"]) for index in range(len(seeds))]
    outputs = [
        helper.make_tensor_value_info(f"char{index}", TensorProto.FLOAT, ["N", CLASSES]) for index in range(len(seeds))
    ]
    weights = [numpy_helper.from_array(_weights(seed), f"W{index}") for index, seed in enumerate(seeds)]
    model = helper.make_model(
        helper.make_graph(nodes, "heads", [x], outputs, weights), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_several_heads_are_read_jointly_when_named_and_audits_read_them_the_same_way(
    tmp_path: Path, run_cli: RunCli
) -> None:
    target = _heads(tmp_path / "captcha.onnx", seeds=(10, 11, 12))
    alone = OnnxClassifier(target)
    assert alone.output_spec.name == "char0" and "--output-name char0,char1,char2" in alone.output_spec.chosen_because
    joint = OnnxClassifier(target, output_name="char0,char1,char2")
    points = np.random.default_rng(3).normal(size=(50, 6)).astype(np.float32)
    mean = np.mean([points @ _weights(seed) for seed in (10, 11, 12)], axis=0)
    assert np.array_equal(joint.predict(points), mean.argmax(axis=1))
    assert run_cli("keygen", "--out", tmp_path / "k.pem").code == 0
    made = run_cli(
        "fingerprint",
        target,
        "--key",
        tmp_path / "k.pem",
        "--n",
        20,
        "--k",
        0.5,
        "--domain",
        "-1,1",
        "--output-name",
        "char0,char1,char2",
        "-o",
        tmp_path / "captcha.fp",
    )
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "captcha.fp")
    assert bundle.record.output_name == "char0,char1,char2"
    assert audit(bundle, target, threshold=0.85).matching_rate == 1.0  # read through the same three heads
    one_head_retrained = _heads(tmp_path / "other.onnx", seeds=(10, 11, 13))
    assert audit(bundle, one_head_retrained, threshold=0.85).matching_rate < 1.0


def test_a_free_batch_axis_the_graph_cannot_take_is_run_one_sample_at_a_time(tmp_path: Path) -> None:
    """Declared [N, 6] → [N, C], but a Reshape to [1, 6] inside: a batch of two fails, one at a time works."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])
    nodes = [helper.make_node("Reshape", ["x", "one"], ["row"]), helper.make_node("MatMul", ["row", "W"], ["y"])]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", CLASSES])
    path = _save(tmp_path / "single.onnx", nodes, [x], output, {"W": _weights(9), "one": np.array([1, 6], np.int64)})
    model = OnnxClassifier(path)
    points = np.random.default_rng(4).normal(size=(7, 6)).astype(np.float32)
    assert np.array_equal(model.predict(points), (points @ _weights(9)).argmax(axis=1))
    assert "one sample at a time" in model.describe()["batch"]


def test_a_map_whose_class_axis_follows_the_input_is_not_taken_for_classes(tmp_path: Path) -> None:
    """A reading-order model's pattern: a pairwise map [N, T, T] listed first, per-item classes [N, T, C] after;
    the classes are the output whose class axis the graph fixes."""
    x = helper.make_tensor_value_info("items", TensorProto.FLOAT, ["N", "T", 6])
    nodes = [
        helper.make_node("Transpose", ["items"], ["flipped"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["items", "flipped"], ["pairs"]),
        helper.make_node("MatMul", ["items", "W"], ["classes"]),
    ]
    outputs = [
        helper.make_tensor_value_info("pairs", TensorProto.FLOAT, ["N", "T", "T2"]),
        helper.make_tensor_value_info("classes", TensorProto.FLOAT, ["N", "T", CLASSES]),
    ]
    path = save_graph(tmp_path / "order.onnx", nodes, [x], outputs, {"W": _weights(4)})
    model = OnnxClassifier(path, input_shape=(7, 6))
    assert model.output_spec.name == "classes" and model.num_classes == CLASSES
    assert "'pairs' one that follows the input" in model.output_spec.chosen_because
    points = np.random.default_rng(0).normal(size=(30, 7, 6)).astype(np.float32)
    assert np.array_equal(model.predict(points), _middle_label(_weights(4), points))
