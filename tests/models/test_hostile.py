"""Hostile inputs: crafted ONNX files and lying suspects are refused clearly, never crash or hang."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ipguard_onnx import audit
from ipguard_onnx.exit_codes import ExitCode

from ..conftest import RunCli, Zoo


def _linear_model(weights: TensorProto, *, batch: int | str = "N", custom: bool = False) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])
    op = (
        helper.make_node("EvilOp", ["x", "W"], ["y"], domain="com.evil")
        if custom
        else helper.make_node("MatMul", ["x", "W"], ["y"])
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.evil", 1)] if custom else [])
    model = helper.make_model(helper.make_graph([op], "g", [x], [y], [weights]), opset_imports=opsets)
    model.ir_version = 8
    return model


def _external_weights(location: str) -> TensorProto:
    weights = numpy_helper.from_array(np.ones((64, 10), np.float32), "W")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, "offset": "0", "length": str(64 * 10 * 4)}.items():
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    return weights


def _hostile_models(folder: Path) -> dict[str, tuple[Path, str]]:
    """name → (model path, what the one-line error must say)."""
    (folder / "secret.bin").write_bytes(np.ones((64, 10), np.float32).tobytes())
    (folder / "models").mkdir()
    cases = {
        "traversal": (_external_weights("../secret.bin"), {}, "path traversal"),
        "absolute": (_external_weights(str(folder / "secret.bin")), {}, "path traversal"),
        "missing data": (_external_weights("gone.bin"), {}, "external data file that is missing (gone.bin)"),
        "custom op": (
            numpy_helper.from_array(np.ones((64, 10), np.float32), "W"),
            {"custom": True},
            "custom operator com.evil:EvilOp",
        ),
        "giant batch": (
            numpy_helper.from_array(np.ones((64, 10), np.float32), "W"),
            {"batch": 10**12},
            "fixed batch of 1,000,000,000,000",
        ),
    }
    made = {}
    for name, (weights, options, message) in cases.items():
        path = folder / "models" / f"{name.replace(' ', '-')}.onnx"
        onnx.save(_linear_model(weights, **options), path)  # type: ignore[arg-type]
        made[name] = (path, message)
    return made


def test_hostile_models_are_refused_in_one_line(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    for name, (path, message) in _hostile_models(tmp_path).items():
        for command in (["audit", path, "-f", zoo.bundle], ["fingerprint", path, "--n", 3, "--key", zoo.private_key]):
            result = run_cli(*command)
            assert result.code == ExitCode.input, (name, result.stderr)
            assert "Traceback" not in result.stderr, (name, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and message in lines[0], (name, command[0], result.stderr)
    assert not list(tmp_path.rglob("*.safetensors"))


def test_a_giant_declared_input_is_refused(tmp_path: Path) -> None:
    from ipguard_onnx.errors import UnsupportedModelError
    from ipguard_onnx.models import OnnxSuspect

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8192, 8192])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 8192, 8192])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "giant.onnx")
    with pytest.raises(UnsupportedModelError, match="values per sample"):
        OnnxSuspect(tmp_path / "giant.onnx")


def test_a_fixed_batch_model_is_queried_with_padding(zoo: Zoo, tmp_path: Path) -> None:
    weights = numpy_helper.from_array(np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32), "W")
    onnx.save(_linear_model(weights, batch=7), tmp_path / "batch7.onnx")
    onnx.save(_linear_model(weights), tmp_path / "dynamic.onnx")
    fixed, dynamic = audit(zoo.bundle, tmp_path / "batch7.onnx"), audit(zoo.bundle, tmp_path / "dynamic.onnx")
    assert fixed.points_queried == dynamic.points_queried and fixed.points_skipped == 0
    assert fixed.points_matched == dynamic.points_matched


def test_labels_outside_the_class_range_are_not_answers(zoo: Zoo) -> None:
    def liar(batch: np.ndarray) -> np.ndarray:
        labels = np.full(len(batch), 57, dtype=np.int64)
        labels[:3] = 0
        return labels

    result = audit(zoo.bundle, liar)
    assert result.verdict == "inconclusive" and result.points_skipped == result.points_queried - 3
    assert any("outside the fingerprint's 10 classes" in reason for reason in result.skipped_reasons)


def test_audit_json_of_a_lying_suspect_is_honest(zoo: Zoo, tmp_path: Path) -> None:
    from ipguard_onnx.report import audit_json

    result = audit(zoo.bundle, lambda batch: np.full(len(batch), -5, dtype=np.int64))
    row = json.loads(audit_json([result]))["results"][0]
    assert row["verdict"] == "inconclusive" and row["points_matched"] == 0
