"""Hostile artifacts made in milliseconds: ONNX graphs that never end or answer NaN, crafted bundles."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def forever_model(path: Path, sample: tuple[int, ...] = (1, 8, 8), classes: int = 10) -> Path:
    """A classifier of ``sample`` inputs whose ``Loop`` condition never turns false: every run hangs."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None),
        ],
    )
    features = int(np.prod(sample))
    weights = numpy_helper.from_array(np.ones((features, classes), np.float32), "W")
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["true"], value=helper.make_tensor("t", TensorProto.BOOL, [], [True])),
            helper.make_node("Loop", ["", "true", "x"], ["looped"], body=body),
            helper.make_node("Flatten", ["looped"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["y"]),
        ],
        "forever",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *sample])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])],
        [weights],
    )
    return _save(graph, path)


def nan_model(path: Path, sample: tuple[int, ...] = (1, 8, 8), classes: int = 10) -> Path:
    """A classifier whose every score is NaN (weights of NaN): it answers nothing."""
    features = int(np.prod(sample))
    weights = numpy_helper.from_array(np.full((features, classes), np.nan, np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"]), helper.make_node("MatMul", ["flat", "W"], ["y"])],
        "nan",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *sample])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])],
        [weights],
    )
    return _save(graph, path)


def nested_header_bundle(path: Path, depth: int = 100_000) -> Path:
    """A file shaped like a safetensors bundle whose JSON header nests ``depth`` lists deep."""
    header = ("[" * depth + "]" * depth).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


def digest(*paths: Path) -> dict[str, str]:
    """sha256 of each file (or 'missing'), to prove a command left the user's files as they were."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "missing" for p in paths}


def journal_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
