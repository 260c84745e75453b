"""The surrogate (``surrogate``): the PyTorch copy of the graph the gradient search differentiates.

Real graphs built with ``onnx.helper`` and a real exported CNN; every claim is checked against onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from ipguard_onnx.errors import SurrogateError
from ipguard_onnx.models import OnnxClassifier
from ipguard_onnx.models.onnx import binary_scores
from ipguard_onnx.search.gradient_free import search_scores as numpy_search_scores
from ipguard_onnx.surrogate import Surrogate, keep_only_output, release_fixed_batch
from ipguard_onnx.surrogate import search_scores as torch_search_scores
from ipguard_onnx.types import OutputKind

from .conftest import Zoo
from .models.graphs import save_graph

RNG = np.random.default_rng(0)
WEIGHTS = RNG.normal(size=(4, 3)).astype(np.float32)


def _run(path: Path, x: np.ndarray, output: str | None = None) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([output] if output else None, {session.get_inputs()[0].name: x})[0])


def _fixed_batch_graph(path: Path) -> Path:
    """x [1, 4] → MatMul → Reshape to the constant [1, 3]: an exporter's fixed batch of one."""
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Reshape", ["h", "shape"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    return save_graph(path, nodes, [x], [y], {"W": WEIGHTS, "shape": np.array([1, 3], np.int64)})


def test_a_fixed_batch_is_released_so_every_point_searches_at_once(tmp_path: Path) -> None:
    model = release_fixed_batch(onnx.load(str(_fixed_batch_graph(tmp_path / "fixed.onnx"))), "x")
    onnx.save(model, str(tmp_path / "free.onnx"))
    batch = RNG.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "free.onnx", batch), batch @ WEIGHTS, rtol=1e-5, atol=1e-5)
    with pytest.raises(Exception, match="(?i)dimension|shape|invalid"):
        _run(tmp_path / "fixed.onnx", batch)  # the original really takes one row only


def test_keep_only_output_keeps_what_computes_it_and_nothing_else(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    outputs = [
        helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
    ]
    path = save_graph(tmp_path / "two.onnx", nodes, [x], outputs, {"W": WEIGHTS})
    kept = keep_only_output(onnx.load(str(path)), "probabilities")
    assert [value.name for value in kept.graph.output] == ["probabilities"]
    assert [node.op_type for node in kept.graph.node] == ["MatMul", "Softmax"]
    onnx.save(kept, str(tmp_path / "kept.onnx"))
    batch = RNG.normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "kept.onnx", batch), _run(path, batch, "probabilities"), rtol=1e-6)


@pytest.mark.parametrize("kind", ["logits", "probabilities", "binary-logit", "binary-probability"])
def test_the_search_scores_mean_the_same_in_torch_and_in_numpy(kind: OutputKind) -> None:
    """k (Eq. 5's margin) must mean the same for the gradient search (torch, on the graph's raw output) and
    the gradient-free one (numpy, on what ``OnnxClassifier.scores`` returns)."""
    if kind.startswith("binary"):
        raw = RNG.uniform(0.01, 0.99, size=(8, 1)) if kind == "binary-probability" else RNG.normal(size=(8, 1))
        as_onnxruntime_gives = binary_scores(raw[:, 0].astype(np.float32), probability=kind == "binary-probability")
    else:
        raw = RNG.normal(size=(8, 5))
        if kind == "probabilities":
            raw = np.exp(raw) / np.exp(raw).sum(axis=1, keepdims=True)
        as_onnxruntime_gives = raw.astype(np.float32)
    gradient = torch_search_scores(torch.tensor(raw, dtype=torch.float32), kind).numpy()
    gradient_free = numpy_search_scores(as_onnxruntime_gives, kind)
    np.testing.assert_allclose(gradient, gradient_free, rtol=1e-4, atol=1e-4)
    assert (gradient.argmax(axis=1) == as_onnxruntime_gives.argmax(axis=1)).all()


def test_the_surrogate_of_a_real_cnn_agrees_with_onnxruntime_and_has_a_gradient(zoo: Zoo) -> None:
    target = OnnxClassifier(zoo.target)
    surrogate = Surrogate(target, parity_batch=zoo.x[:64])
    assert surrogate.parity is not None and surrogate.parity.ok
    assert surrogate.conversion.summary
    held_out = zoo.x[64:192]
    np.testing.assert_array_equal(surrogate.predict(held_out), target.predict(held_out))
    batch = torch.tensor(held_out[:4], requires_grad=True)
    surrogate.scores_tensor(batch)[:, 0].sum().backward()  # type: ignore[no-untyped-call]
    assert batch.grad is not None and float(batch.grad.abs().sum()) > 0


def test_a_fixed_batch_graph_gets_a_surrogate_that_takes_any_batch(tmp_path: Path) -> None:
    target = OnnxClassifier(_fixed_batch_graph(tmp_path / "fixed.onnx"))
    points = RNG.normal(size=(7, 4)).astype(np.float32)
    surrogate = Surrogate(target, parity_batch=points)
    assert surrogate.parity is not None and surrogate.parity.ok
    np.testing.assert_allclose(surrogate.scores(points), points @ WEIGHTS, rtol=1e-4, atol=1e-4)


def test_a_graph_no_converter_reproduces_is_one_error_naming_every_attempt(tmp_path: Path) -> None:
    """A scikit-learn-style LinearClassifier (ai.onnx.ml): onnxruntime runs it, no converter takes it."""
    node = helper.make_node(
        "LinearClassifier",
        ["x"],
        ["label", "scores"],
        domain="ai.onnx.ml",
        coefficients=WEIGHTS.T.flatten().tolist(),
        intercepts=[0.0, 0.0, 0.0],
        classlabels_ints=[0, 1, 2],
    )
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    outputs = [
        helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3]),
    ]
    graph = helper.make_graph([node], "linear", [x], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "linear.onnx"))
    target = OnnxClassifier(tmp_path / "linear.onnx")
    points = RNG.normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(target.predict(points), (points @ WEIGHTS).argmax(axis=1))  # it runs
    with pytest.raises(SurrogateError) as raised:
        Surrogate(target, parity_batch=points)
    message = str(raised.value)
    assert "\n" not in message and "onnx2torch" in message and "onnx2pytorch" in message
