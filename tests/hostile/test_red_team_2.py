"""Second round of hostile cases: closed pipes, outputs that are pipes or links, names that look like globs,
models that answer the wrong number of rows, ZipMap classes that are not 0..C−1, warnings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ipguard_onnx.exit_codes import ExitCode

from ..conftest import RunCli, Zoo, one_line_error
from .artifacts import digest


def test_a_closed_stdout_is_never_read_as_a_verdict(zoo: Zoo, tmp_path: Path) -> None:
    """rich's own handler exited 1 on a broken pipe: 'a suspect matched' to a CI step reading the status."""
    for arguments in (["inspect", zoo.bundle], ["audit", zoo.independent, "-f", zoo.bundle]):
        process = subprocess.Popen(
            [sys.executable, "-m", "ipguard_onnx", *map(str, arguments)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        assert process.stdout is not None
        process.stdout.close()  # the reader goes away before anything is written
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == ExitCode.output_closed, (arguments, process.returncode, stderr)
        assert b"Traceback" not in stderr


def test_a_report_to_a_pipe_goes_through_and_a_link_stays(run_process: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    """--output /dev/stdout once replaced the system's /dev/stdout link (as root) with a regular file."""
    link = tmp_path / "stdout"
    os.symlink("/proc/self/fd/1", link)
    result = run_process("audit", zoo.target, "-f", zoo.bundle, "--format", "json", "--report", link)
    assert result.code == ExitCode.match, result.stderr
    assert '"verdict": "match"' in result.stdout
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_a_named_pipe_nobody_reads_is_refused_at_once(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    for name, arguments in (
        ("r.json", ["audit", zoo.target, "-f", zoo.bundle, "--format", "json", "--report"]),
        ("fp.safetensors", ["fingerprint", zoo.target, "--method", "gradient-free", "--n", 5, "-o"]),
    ):
        os.mkfifo(tmp_path / name)
        started = time.monotonic()
        result = run_cli(*arguments, tmp_path / name)
        assert time.monotonic() - started < 30
        assert result.code == ExitCode.usage, result.stderr
        one_line_error(result)
        assert (tmp_path / name).is_fifo()  # never replaced by a file


def test_a_file_named_like_a_glob_is_that_file(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    """scan 'm[1].onnx' once audited m1.onnx (an independent model) instead: NO MATCH on the real copy."""
    shutil.copy(zoo.target, tmp_path / "m[1].onnx")
    shutil.copy(zoo.independent, tmp_path / "m1.onnx")
    result = run_cli("scan", tmp_path / "m[1].onnx", "-f", zoo.bundle, "-o", tmp_path / "s.jsonl")
    assert result.code == ExitCode.match, result.stderr
    assert "m[1].onnx" in (tmp_path / "s.jsonl").read_text()


def _rows_model(path: Path, keep: int) -> Path:
    """A classifier whose output has ``keep`` rows fewer than its input (0 keep: none at all)."""
    weights = numpy_helper.from_array(np.ones((64, 10), np.float32), "W")
    starts = numpy_helper.from_array(np.array([keep], np.int64), "starts")
    ends = numpy_helper.from_array(np.array([2**62], np.int64), "ends")
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["all"]),
            helper.make_node("Slice", ["all", "starts", "ends"], ["y"]),
        ],
        "rows",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", 10])],
        [weights, starts, ends],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_model_answering_fewer_rows_than_points(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    result = run_cli("audit", _rows_model(tmp_path / "short.onnx", 1), "-f", zoo.bundle)
    assert result.code == ExitCode.input
    assert "rows for" in one_line_error(result)


def _zipmap_model(path: Path, labels: list[int]) -> Path:
    """A scikit-learn-style export: scores → Softmax → ZipMap keyed by ``labels`` (not 0..C−1)."""
    rng = np.random.default_rng(3)
    weights = numpy_helper.from_array(rng.normal(size=(64, len(labels))).astype(np.float32), "W")
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["z"]),
            helper.make_node("Softmax", ["z"], ["p"], axis=1),
            helper.make_node("ZipMap", ["p"], ["probabilities"], domain="ai.onnx.ml", classlabels_int64s=labels),
        ],
        "zipmap",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [
            helper.make_value_info(
                "probabilities",
                helper.make_sequence_type_proto(
                    helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, []))
                ),
            )
        ],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_zipmap_classes_that_are_not_indices_match_their_own_fingerprint(
    run_cli: RunCli, zoo: Zoo, tmp_path: Path
) -> None:
    """Keys 1..10: the search labelled points by key position, the audit read keys as indices (NO MATCH)."""
    target = _zipmap_model(tmp_path / "zm.onnx", list(range(1, 11)))
    made = run_cli("fingerprint", target, "--n", 20, "--key", zoo.private_key, "-o", tmp_path / "zm.safetensors")
    assert made.code == 0, made.stderr
    audited = run_cli("audit", target, "-f", tmp_path / "zm.safetensors", "--format", "json", "--threshold", 0.85)
    assert audited.code == ExitCode.match, audited.stdout + audited.stderr


def test_no_python_warning_reaches_the_user(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    """Scores of 1e300 in float64 overflow float32: numpy's warning printed a source line."""
    weights = numpy_helper.from_array(np.full((64, 10), 1e300, np.float64), "W")
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("Cast", ["flat"], ["wide"], to=11),
            helper.make_node("MatMul", ["wide", "W"], ["y"]),
        ],
        "huge",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 10])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "huge.onnx")
    before = digest(tmp_path / "huge.onnx")
    result = run_cli("audit", tmp_path / "huge.onnx", "-f", zoo.bundle)
    assert result.code == ExitCode.input, result.stdout + result.stderr  # all scores infinite: unanswered
    assert "Warning" not in result.stderr and "Warning" not in result.stdout
    assert digest(tmp_path / "huge.onnx") == before
