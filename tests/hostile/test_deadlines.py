"""Everything ends: a model that never finishes, an API that drips or asks to wait, and Ctrl-C.

Each case runs the real CLI against a real hanging ONNX graph or a real loopback server and checks the
exit code, the reason, and that it ended within its documented deadline (with slack for a loaded machine).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipguard_onnx.errors import ScanError
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.scan import Journal

from ..conftest import RunCli, Zoo, one_line_error
from .artifacts import forever_model, journal_lines
from .server import Hostile, HostileServer

SLACK = 8.0
"""Seconds of slack over a deadline: process start, imports and a loaded 2-core machine."""


def test_a_model_that_never_ends_is_stopped_at_its_deadline(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_cli("audit", forever_model(tmp_path / "forever.onnx"), "-f", zoo.bundle, "--model-timeout", 1)
    assert time.monotonic() - started < 1 + SLACK
    assert result.code == ExitCode.input
    assert "ran past the 1 s deadline" in one_line_error(result)


def test_ctrl_c_stops_a_hanging_model_run(zoo: Zoo, tmp_path: Path) -> None:
    """A real SIGINT to a real process blocked in onnxruntime (default deadline 120 s): exit 130 at once."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ipguard_onnx", "audit", str(forever_model(tmp_path / "f.onnx")), "-f", str(zoo.bundle)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        # as on a terminal: a suite started in the background (`make test &`) inherits SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        time.sleep(5)  # imports, the bundle, the session: then it sits in the Loop
        assert process.poll() is None, process.communicate()
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert time.monotonic() - sent < SLACK
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr


def test_scan_records_a_hanging_suspect_as_failed_and_never_retries_it(
    run_cli: RunCli, zoo: Zoo, tmp_path: Path
) -> None:
    hanging = forever_model(tmp_path / "forever.onnx")
    journal = tmp_path / "scan.jsonl"
    started = time.monotonic()
    first = run_cli("scan", hanging, zoo.target, "-f", zoo.bundle, "-o", journal, "--model-timeout", 1)
    assert time.monotonic() - started < 1 + SLACK
    assert first.code == ExitCode.match, first.stderr  # the hub goes on: the real copy is still found
    rows = {Path(str(row["suspect"])).name: row for row in journal_lines(journal)}
    assert rows["forever.onnx"]["status"] == "error" and "deadline" in str(rows["forever.onnx"]["error"])
    assert rows["target.onnx"]["verdict"] == "match"
    again = run_cli("scan", hanging, zoo.target, "-f", zoo.bundle, "-o", journal, "--resume", "--model-timeout", 30)
    assert again.code == ExitCode.match
    assert len(journal_lines(journal)) == 2  # each pair once: the hanging suspect is not run again


SLOW_APIS = [
    # one byte every 0.2 s beats any per-read timeout: --timeout bounds the whole request
    ("drip-status", ["--timeout", 1, "--retries", 0, "--batch-size", 100], 1, "timeout"),
    ("drip-body", ["--timeout", 1, "--retries", 0, "--batch-size", 100], 1, "timeout"),
    # Retry-After: 60 on every answer: the audit ends at --deadline, not after 40 minutes of waits
    ("retry-after", ["--deadline", 3, "--retries", 10, "--batch-size", 10], 3, "deadline"),
    # ten requests of 2 s each would take 20 s: the total deadline ends them at 3 s
    ("drip-body", ["--timeout", 2, "--deadline", 3, "--retries", 0, "--batch-size", 10], 3, "--deadline"),
    # Retry-After: NaN is no number of seconds: the backoff applies (it once reached time.sleep)
    ("retry-after nan", ["--deadline", 5, "--retries", 1, "--batch-size", 100], 5, "HTTP 503"),
]


@pytest.mark.parametrize(("mode", "options", "seconds", "reason"), SLOW_APIS)
def test_a_slow_api_is_cut_off_at_its_deadline(
    run_cli: RunCli, zoo: Zoo, mode: str, options: list[object], seconds: float, reason: str
) -> None:
    mode, _, retry_after = mode.partition(" ")
    with HostileServer(Hostile(mode=mode, retry_after=retry_after or "60")) as server:
        started = time.monotonic()
        result = run_cli(
            "audit",
            "--endpoint",
            f"{server.base}/predict",
            "-f",
            zoo.bundle,
            "--format",
            "json",
            "--no-sequential",
            *options,
        )
        elapsed = time.monotonic() - started
    assert elapsed < seconds + SLACK
    assert result.code == ExitCode.input, result.stderr  # inconclusive: no verdict from no answers
    (row,) = json.loads(result.stdout)["results"]
    assert row["verdict"] == "inconclusive"
    assert any(reason in skipped for skipped in row["skipped_reasons"])


def test_one_journal_has_one_writer(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    journal = tmp_path / "scan.jsonl"
    holder = Journal(journal, resume=False)  # a scan in progress holds the journal
    try:
        result = run_cli("scan", zoo.target, "-f", zoo.bundle, "-o", journal, "--resume")
        assert result.code == ExitCode.input
        assert "being written by another scan" in one_line_error(result)
        with pytest.raises(ScanError):
            Journal(journal, resume=True)
    finally:
        holder.close()
    assert run_cli("scan", zoo.target, "-f", zoo.bundle, "-o", journal, "--resume").code == ExitCode.match
    assert len(journal_lines(journal)) == 1
