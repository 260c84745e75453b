"""Hostile input is an input error, not "a bug in ipguard-onnx": each gives its stage's exit code and one line.

JSON nested for ever is read in a real process (``run_process``): the RecursionError it raises inside the
json module can upset CPython 3.11's AST recursion counter in the process that caught it (a later
``ast.parse``, e.g. pytest's assertion rewriting, fails), so it is kept out of the test process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ipguard_onnx import load_bundle
from ipguard_onnx.exit_codes import ExitCode

from ..conftest import RunCli, Zoo, one_line_error
from .artifacts import nested_header_bundle
from .server import Hostile, HostileServer

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("command", ["inspect", "audit"])
def test_a_bundle_header_nested_for_ever(run_process: RunCli, zoo: Zoo, tmp_path: Path, command: str) -> None:
    bundle = nested_header_bundle(tmp_path / "deep.safetensors")
    arguments = ["inspect", bundle] if command == "inspect" else ["audit", zoo.target, "-f", bundle]
    result = run_process(*arguments)
    assert result.code == ExitCode.input
    assert "unreadable header" in one_line_error(result)


def test_a_scan_journal_line_nested_for_ever(run_process: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    journal = tmp_path / "scan.jsonl"
    journal.write_text(DEEP + "\n")
    result = run_process("scan", zoo.target, "-f", zoo.bundle, "-o", journal, "--resume")
    assert result.code == ExitCode.usage
    assert "not a scan result" in one_line_error(result)
    assert journal.read_text() == DEEP + "\n"


def test_a_report_nested_for_ever(run_process: RunCli, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text(DEEP)
    result = run_process("verify-report", report)
    assert result.code == ExitCode.input
    one_line_error(result)


def _api(run_cli: RunCli, zoo: Zoo, hostile: Hostile, path: str = "/predict") -> tuple[int, dict[str, object]]:
    points = len(load_bundle(zoo.bundle).points)
    with HostileServer(hostile) as server:
        result = run_cli(
            "audit",
            "--endpoint",
            f"{server.base}{path}",
            "-f",
            zoo.bundle,
            "--no-sequential",
            "--batch-size",
            points,
            "--retries",
            0,
            "--format",
            "json",
        )
    assert "internal error" not in result.stderr, result.stderr
    rows = json.loads(result.stdout)["results"] if result.stdout else [{}]
    return result.code, rows[0]


def test_api_labels_beyond_any_class(run_cli: RunCli, zoo: Zoo) -> None:
    points = len(load_bundle(zoo.bundle).points)
    code, row = _api(run_cli, zoo, Hostile(body={"predictions": [1e300, -1e300, 1e19, 3.5] * (points // 4)}))
    assert code == ExitCode.input and row["verdict"] == "inconclusive"


@pytest.mark.parametrize(
    "output",
    [
        {"name": "y", "datatype": "FP32", "shape": [100, "abc"], "data": [0.0] * 1000},
        {"name": "y", "datatype": "FP32", "shape": [100, 10], "data": ["x"] * 1000},
        {"name": "y", "datatype": "FP32", "shape": [100, 10**30], "data": [0.0]},
        {"name": "y", "datatype": "INT64", "shape": [100], "data": [[1]] * 100},
        {"name": "y", "datatype": "FP32", "shape": [True, 10], "data": [0.0] * 10},
    ],
)
def test_oip_outputs_of_the_wrong_types_or_shapes(run_cli: RunCli, zoo: Zoo, output: dict[str, object]) -> None:
    code, row = _api(run_cli, zoo, Hostile(body={"outputs": [output]}), "/v2/models/m/infer")
    assert code == ExitCode.input and row["verdict"] == "inconclusive"
    assert any("malformed response" in str(reason) for reason in row["skipped_reasons"])  # type: ignore[attr-defined]


def test_an_api_answer_nested_for_ever(run_process: RunCli, zoo: Zoo) -> None:
    code, row = _api(run_process, zoo, Hostile(body=('{"predictions": ' + DEEP + "}").encode()))
    assert code == ExitCode.input
    assert any("nested too deeply" in str(reason) for reason in row["skipped_reasons"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("shape", [[-1, 30000, 30000], [-1, 1, 4096, 4096]])
def test_oip_metadata_declaring_a_huge_input_is_refused_at_once(run_cli: RunCli, zoo: Zoo, shape: list[int]) -> None:
    """30000×30000 once made the tool try to allocate 335 GiB (capped per point like an ONNX input);
    4096×4096, under that cap, cost 66 s and 9.4 GB adapting 100 points (an audit prepares at most 2^28)."""
    metadata = {"name": "m", "inputs": [{"name": "x", "datatype": "FP32", "shape": shape}]}
    started = time.monotonic()
    with HostileServer(Hostile(metadata=metadata)) as server:
        result = run_cli("audit", "--endpoint", f"{server.base}/v2/models/m/infer", "-f", zoo.bundle)
    assert time.monotonic() - started < 10
    assert result.code == ExitCode.input
    assert "more than the" in one_line_error(result)


@pytest.mark.parametrize("headers", ['{"X-Evil": "a\\r\\nHost: elsewhere"}', '{"Bad Name": "v"}'])
def test_headers_that_would_smuggle_a_line_are_refused(run_cli: RunCli, zoo: Zoo, headers: str) -> None:
    result = run_cli(
        "audit",
        "--endpoint",
        "http://127.0.0.1:9/predict",
        "-f",
        zoo.bundle,
        env={"IPGUARD_ONNX_HTTP_HEADERS": headers},
    )
    assert result.code == ExitCode.usage
    one_line_error(result)


def test_class_names_that_are_not_text(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_bytes(b"\xff\xfe\x00bad")
    result = run_cli("fingerprint", zoo.target, "--class-names", names, "-o", tmp_path / "fp.safetensors")
    assert result.code == ExitCode.usage
    assert "UTF-8" in one_line_error(result)


@pytest.mark.parametrize("role", ["--manifest", "journal", "--data"])
def test_a_pipe_is_refused_not_waited_on(run_cli: RunCli, zoo: Zoo, tmp_path: Path, role: str) -> None:
    """Reading a FIFO nobody writes to would wait for ever."""
    import os

    pipe = tmp_path / ("pipe.npz" if role == "--data" else "pipe.txt")
    os.mkfifo(pipe)
    arguments: list[object] = {
        "--manifest": ["scan", "--manifest", pipe, "-f", zoo.bundle, "-o", tmp_path / "scan.jsonl"],
        "journal": ["scan", zoo.target, "-f", zoo.bundle, "-o", pipe, "--resume"],
        "--data": ["fingerprint", zoo.target, "--data", pipe, "--input-shape", "1,8,8", "-o", tmp_path / "f.st"],
    }[role]
    started = time.monotonic()
    result = run_cli(*arguments)
    assert time.monotonic() - started < 30
    assert result.code == ExitCode.usage, result.stderr
    assert "not a regular file" in one_line_error(result)
