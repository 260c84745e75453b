"""Loading ONNX classifiers: input specs read from the graph, and clear errors for everything else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ipguard_onnx import ModelLoadError, OnnxClassifier, SurrogateError, UnsupportedModelError
from ipguard_onnx.models import read_model_specs
from ipguard_onnx.models.onnx import BATCH_VALUES
from ipguard_onnx.surrogate import Surrogate
from ipguard_onnx.types import guess_layout

from ..conftest import Zoo


def _save(
    path: Path,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: list[onnx.TensorProto],
    opsets: list[onnx.OperatorSetIdProto] | None = None,
) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _linear(
    path: Path,
    *,
    input_type: int = TensorProto.FLOAT,
    input_shape: list[str | int | None] | None = None,
    out_shape: list[str | int | None] | None = None,
    softmax: bool = False,
) -> Path:
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z" if softmax else "y"])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["y"], axis=1))
    return _save(
        path,
        nodes,
        [helper.make_tensor_value_info("x", input_type, input_shape or ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape or ["N", 3])],
        [weights],
    )


def test_digits_cnn_spec_is_read_from_the_graph(zoo: Zoo) -> None:
    input_spec, output_spec = read_model_specs(zoo.target)
    assert input_spec.sample_shape == zoo.x.shape[1:]
    assert input_spec.layout == "NCHW" and input_spec.dtype == "float32" and input_spec.fixed_batch is None
    assert output_spec.num_classes == len(np.unique(zoo.y)) and output_spec.kind == "logits"
    fixed, _ = read_model_specs(zoo.folder / "target_batch1.onnx")
    assert fixed.fixed_batch == 1
    _, probabilities = read_model_specs(zoo.folder / "target_softmax.onnx")
    assert probabilities.kind == "probabilities"


def test_vector_model_with_fixed_batch_of_one_answers_a_whole_batch(tmp_path: Path) -> None:
    model = OnnxClassifier(_linear(tmp_path / "m.onnx", input_shape=[1, 4], out_shape=[1, 3]))
    assert model.input_spec.layout == "ND" and model.input_spec.fixed_batch == 1
    labels = model.predict(np.random.default_rng(0).random((7, 4), dtype=np.float32))
    assert labels.shape == (7,) and labels.dtype == np.int64


@pytest.mark.parametrize(
    "shape,layout",
    [((3, 32, 32), "NCHW"), ((32, 32, 3), "NHWC"), ((1, 8, 8), "NCHW"), ((64,), "ND"), ((8, 8, 1), "NHWC")],
)
def test_layout_is_guessed_from_the_channel_axis(shape: tuple[int, ...], layout: str) -> None:
    assert guess_layout(shape) == layout


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        OnnxClassifier(tmp_path / "nope.onnx")


def test_not_onnx(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffthis is not a protobuf" * 10)
    with pytest.raises(ModelLoadError, match="not a readable ONNX model"):
        OnnxClassifier(junk)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a file"):
        OnnxClassifier(tmp_path)


def test_several_inputs_are_packed_side_by_side(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "two.onnx",
        [helper.make_node("Sub", ["a", "b"], ["y"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [],
    )
    model = OnnxClassifier(path)
    packing = model.input_spec.packing
    assert packing is not None and [value.name for value in packing.data] == ["a", "b"]
    assert model.input_spec.sample_shape == (6,)
    points = np.array([[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 5, 0]], np.float32)  # a = first three, b = the rest
    assert model.scores(points).tolist() == [[1, 0, 0], [0, -5, 0]]


def test_integer_input(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "ids.onnx",
        [helper.make_node("Cast", ["input_ids"], ["y"], to=TensorProto.FLOAT)],
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [],
    )
    spec = OnnxClassifier(path).input_spec  # token ids: searched gradient-free on whole numbers
    assert (spec.dtype, spec.integer, spec.sample_shape) == ("int64", True, (3,))
    booleans = _save(
        tmp_path / "mask.onnx",
        [helper.make_node("Cast", ["mask"], ["y"], to=TensorProto.FLOAT)],
        [helper.make_tensor_value_info("mask", TensorProto.BOOL, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [],
    )
    with pytest.raises(UnsupportedModelError, match=r"input 'mask' is bool\[\?, 3\]; ipguard-onnx fingerprints"):
        OnnxClassifier(booleans)


def test_unit_axes_of_an_output_are_squeezed(tmp_path: Path) -> None:
    _, output = read_model_specs(_linear(tmp_path / "vec.onnx", out_shape=["N", 3, 1, 1]))
    assert (output.num_classes, output.kind) == (3, "logits")


def test_rank_one_input_and_symbolic_sizes(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="rank 1"):
        read_model_specs(_linear(tmp_path / "r1.onnx", input_shape=["N"]))
    spec, _ = read_model_specs(_linear(tmp_path / "sym.onnx", input_shape=["N", "features"]))
    assert not spec.resolved
    with pytest.raises(UnsupportedModelError, match=r"\[5, 2\]; input 'x' takes \? \(1 dimensions"):
        read_model_specs(_linear(tmp_path / "sym2.onnx", input_shape=["N", "features"]), input_shape=(5, 2))


def test_softmax_output_is_seen_as_probabilities(tmp_path: Path) -> None:
    _, output = read_model_specs(_linear(tmp_path / "p.onnx", softmax=True))
    assert output.kind == "probabilities"


def test_op_the_converter_lacks_is_named(tmp_path: Path) -> None:
    """A com.microsoft op onnxruntime runs but the PyTorch converter does not know."""
    weights = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32), "W")
    path = _save(
        tmp_path / "fused.onnx",
        [helper.make_node("FusedMatMul", ["x", "W"], ["y"], domain="com.microsoft", alpha=1.0)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [weights],
        [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
    )
    model = OnnxClassifier(path)
    assert model.predict(np.ones((2, 4), np.float32)).shape == (2,)
    with pytest.raises(
        SurrogateError, match=r"no PyTorch surrogate of fused.onnx \(opset 17\).*op FusedMatMul is not supported"
    ):
        Surrogate(model)


def test_large_inputs_run_a_few_points_at_a_time(tmp_path: Path) -> None:
    """A run holds at most ``BATCH_VALUES`` input values: onnxruntime ran a 256×256 classifier at 178 ms a point
    in a batch of 100 against 92–102 in batches of 1–16. The graph answers the size of the run each point was in."""
    sizes = [
        helper.make_node("Shape", ["x"], ["n"], start=0, end=1),
        helper.make_node("Concat", ["n", "one"], ["column"], axis=0),
        helper.make_node("Cast", ["n"], ["n_float"], to=TensorProto.FLOAT),
        helper.make_node("Expand", ["n_float", "column"], ["run"]),
    ]
    model = OnnxClassifier(
        _save(
            tmp_path / "large.onnx",
            [
                helper.make_node("ReduceMean", ["x"], ["mean"], axes=[2, 3], keepdims=0),
                *sizes,
                helper.make_node("Concat", ["mean", "run"], ["y"], axis=1),
            ],
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 256, 256])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
            [numpy_helper.from_array(np.array([1], np.int64), "one")],
            [helper.make_opsetid("", 17)],
        )
    )
    points = np.random.default_rng(0).random((9, 3, 256, 256), dtype=np.float32)
    outputs = model.raw_outputs(points)
    runs = outputs[:, 3]
    assert runs.max() * points[0].size <= BATCH_VALUES and runs.min() >= 1
    assert runs.max() < len(points)  # more than one run for nine points
    np.testing.assert_allclose(outputs[:, :3], points.mean(axis=(2, 3)), rtol=1e-5)
