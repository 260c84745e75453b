"""Cases found by trying the CLI as a hostile user after the first fixes: each is a one-line error with its
stage's exit code (never exit 5, never a verdict), or an answer that is right for the right reason."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ipguard_onnx import load_bundle
from ipguard_onnx.exit_codes import ExitCode

from ..conftest import RunCli, Zoo, one_line_error
from .server import Hostile, HostileServer

Case = Callable[[Zoo, Path], list[object]]


def _journal_with_a_list(zoo: Zoo, folder: Path) -> Path:
    path = folder / "odd.jsonl"
    row = {"error": "", "fingerprint": "x", "fingerprint_sha256": "y", "status": "ok", "suspect": ["a", "b"]}
    path.write_text(json.dumps(row) + "\n")
    return path


def _npy_declaring_a_huge_shape(folder: Path) -> Path:
    path = folder / "huge.npy"
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (10**11, 1, 8, 8)}
        )
        handle.write(b"\0" * 64)
    return path


CASES: list[tuple[str, Case, int, str]] = [
    (
        "a model timeout of 1e10 s",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--model-timeout", "1e10"],
        ExitCode.usage,
        "--model-timeout must be a number of seconds",
    ),
    (
        "a threshold of 0",
        lambda z, t: ["audit", z.independent, "-f", z.bundle, "--threshold", "0"],
        ExitCode.usage,
        "--threshold must lie in (0, 1]",
    ),
    (
        "Eq. 7 with 1e9 steps",
        lambda z, t: [
            "evaluate",
            "-f",
            z.bundle,
            "--positive",
            z.fine_tuned,
            "--negative",
            z.independent,
            "--r",
            10**9,
        ],
        ExitCode.usage,
        "--r must lie in",
    ),
    (
        "an invalid IPv6 endpoint",
        lambda z, t: ["audit", "--endpoint", "http://[::1", "-f", z.bundle],
        ExitCode.usage,
        "--endpoint must be an http(s) URL",
    ),
    (
        "a journal row naming a list",
        lambda z, t: ["scan", z.target, "-f", z.bundle, "-o", _journal_with_a_list(z, t), "--resume"],
        ExitCode.usage,
        "not a scan result",
    ),
    (
        "an .npy declaring 10^11 samples",
        lambda z, t: ["fingerprint", z.target, "--data", _npy_declaring_a_huge_shape(t), "-o", t / "f.safetensors"],
        ExitCode.usage,
        "huge.npy",
    ),
    (
        "a path component of 300 characters",
        lambda z, t: ["audit", t / ("b" * 300 + ".onnx"), "-f", z.bundle],
        ExitCode.input,
        "File name too long",
    ),
    ("keygen --out ''", lambda z, t: ["keygen", "--out", ""], ExitCode.usage, "names no file"),
    (
        "--ray ''",
        lambda z, t: ["scan", z.target, "-f", z.bundle, "-o", t / "s.jsonl", "--ray", ""],
        ExitCode.usage,
        "--ray takes",
    ),
    ("--n beyond any bundle", lambda z, t: ["fingerprint", z.target, "--n", 10**20], ExitCode.usage, "--n must lie in"),
    ("a negative seed", lambda z, t: ["fingerprint", z.target, "--seed", -1], ExitCode.usage, "--seed must be"),
    (
        "a domain float32 cannot span",
        lambda z, t: ["fingerprint", z.target, "--domain", "0,1e38"],
        ExitCode.usage,
        "--domain needs LOW < HIGH within",
    ),
    (
        "no training at all",
        lambda z, t: [
            "issue",
            z.target,
            "--licensee",
            "acme",
            "--data",
            t / "d.npy",
            "--registry",
            t / "reg",
            "--max-epochs",
            -1,
        ],
        ExitCode.usage,
        "--max-epochs must lie in 1..",
    ),
]


@pytest.mark.parametrize(("name", "arguments", "code", "message"), CASES, ids=[case[0] for case in CASES])
def test_a_hostile_value_is_one_line_with_its_exit_code(
    run_cli: RunCli, zoo: Zoo, tmp_path: Path, name: str, arguments: Case, code: int, message: str
) -> None:
    result = run_cli(*arguments(zoo, tmp_path))
    assert result.code == code, (name, result.code, result.stderr)
    assert message in one_line_error(result)
    assert not (tmp_path / "s.jsonl").exists()  # a scan that never started leaves no journal behind


@pytest.mark.parametrize("value", ["abc", "inf", "0", "-1", "nan"])
def test_the_progress_interval_is_checked(run_cli: RunCli, zoo: Zoo, tmp_path: Path, value: str) -> None:
    result = run_cli(
        "scan", zoo.target, "-f", zoo.bundle, "-o", tmp_path / "s.jsonl", env={"IPGUARD_ONNX_PROGRESS_SECONDS": value}
    )
    assert result.code == ExitCode.usage
    assert "IPGUARD_ONNX_PROGRESS_SECONDS" in one_line_error(result)


def test_an_api_number_of_5000_digits_is_a_malformed_answer(run_cli: RunCli, zoo: Zoo) -> None:
    points = len(load_bundle(zoo.bundle).points)
    body = b'{"predictions": [' + b",".join([b"7" * 5000] * points) + b"]}"
    with HostileServer(Hostile(body=body)) as server:
        result = run_cli(
            "audit",
            "--endpoint",
            f"{server.base}/predict",
            "-f",
            zoo.bundle,
            "--no-sequential",
            "--batch-size",
            points,
            "--format",
            "json",
        )
    assert result.code == ExitCode.input, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert any("too long" in reason for reason in row["skipped_reasons"])


def test_evaluate_scores_no_suspect_that_answered_nothing(run_cli: RunCli, zoo: Zoo) -> None:
    """A copy behind a dead API once counted as a 0.00 rate in robustness, ARUC and ROC AUC (exit 0)."""
    with HostileServer(Hostile(status=500, body={})) as server:
        result = run_cli(
            "evaluate", "-f", zoo.bundle, "--positive", f"{server.base}/predict", "--negative", zoo.independent
        )
    assert result.code == ExitCode.input
    assert "no positive suspect was answered" in one_line_error(result)


def _with_label_output(zoo: Zoo, path: Path, cast_to: int) -> Path:
    """The protected model re-exported to answer ArgMax of its scores, cast to another type."""
    model = onnx.load(str(zoo.target))
    scores = model.graph.output[0].name
    model.graph.node.extend(
        [
            helper.make_node("ArgMax", [scores], ["label_index"], axis=1, keepdims=0),
            helper.make_node("Cast", ["label_index"], ["label"], to=cast_to),
        ]
    )
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("label", cast_to, ["N"]))
    onnx.save(model, path)
    return path


def test_labels_cast_to_float_are_read_as_labels(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    """One float per point against a 10-class fingerprint is no binary logit (once NO MATCH, exit 0)."""
    copy = _with_label_output(zoo, tmp_path / "float_labels.onnx", TensorProto.FLOAT)
    result = run_cli("audit", copy, "-f", zoo.bundle)
    assert result.code == ExitCode.match, result.stdout + result.stderr
    assert "read as class labels" in result.stdout


def test_onnxruntime_never_prints_the_model_raw(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    """An attribute holding escape codes, quoted by onnxruntime's own logger, once reached the terminal."""
    hostile = "\x1b]0;PWNED\x07\x1b[2J\x1b[32mMATCH\u202e"
    graph = helper.make_graph(
        [helper.make_node("StringNormalizer", ["s"], ["t"], case_change_action="LOWER", locale=hostile)],
        "g",
        [helper.make_tensor_value_info("s", TensorProto.STRING, [1])],
        [helper.make_tensor_value_info("t", TensorProto.STRING, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "locale.onnx")
    result = run_cli("audit", tmp_path / "locale.onnx", "-f", zoo.bundle)
    assert result.code == ExitCode.input
    line = one_line_error(result)
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr and "\\x1b" in line


def test_a_signed_report_with_a_repeated_key_is_refused(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    """Python keeps a repeated key's last value, other parsers the first: what one shows is not what was signed."""
    report = tmp_path / "r.json"
    signed = run_cli(
        "audit", zoo.target, "-f", zoo.bundle, "--format", "json", "--sign-report", zoo.private_key, "--report", report
    )
    assert signed.code == ExitCode.match
    assert run_cli("verify-report", report).code == 0
    text = report.read_text()
    report.write_text(text.replace('"verdict": "match"', '"verdict": "no match", "verdict": "match"', 1))
    result = run_cli("verify-report", report)
    assert result.code == ExitCode.input
    assert "repeats a key" in one_line_error(result)


def test_an_integer_input_copy_is_not_fed_truncated_points(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    """Points in [0, 1] cast to int64 were all 0: the audit refuses instead of a silent NO MATCH."""
    model = onnx.load(str(zoo.target))
    first = model.graph.input[0]
    name = first.name
    first.type.tensor_type.elem_type = TensorProto.INT64
    for node in model.graph.node:
        node.input[:] = [f"{name}_float" if value == name else value for value in node.input]
    model.graph.node.insert(0, helper.make_node("Cast", [name], [f"{name}_float"], to=TensorProto.FLOAT))
    onnx.save(model, tmp_path / "int_input.onnx")
    shutil.copy(zoo.bundle, tmp_path / "fp.safetensors")
    result = run_cli("audit", tmp_path / "int_input.onnx", "-f", tmp_path / "fp.safetensors")
    assert result.code == ExitCode.input, result.stdout + result.stderr
    assert "rounding would erase them" in one_line_error(result)
