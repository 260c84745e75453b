"""``scan --ray``: the same journal as a plain scan, from Ray Data on a local Ray instance — also when an
actor process is killed (SIGKILL) mid-run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipguard_onnx.exit_codes import ExitCode

from .conftest import Zoo
from .http_server import Behaviour, PredictionServer

ACTOR_TITLE = "ray::MapWorker(MapBatches(ScanActor))"


def _scan(*arguments: object) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "ipguard_onnx", "scan", *(str(a) for a in arguments)]
    environment = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, stderr


def _results(journal: Path) -> dict[tuple[str, str], dict[str, object]]:
    """The journal by suspect × bundle, without the wall-clock seconds; fails on a duplicated pair."""
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for line in journal.read_text().splitlines():
        row = json.loads(line)
        row.pop("seconds")
        key = (str(row["suspect"]), str(row["fingerprint_sha256"]))
        assert key not in rows, f"{key} reported twice"
        rows[key] = row
    return rows


def _actor_pids() -> list[int]:
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines()[1:] if ACTOR_TITLE in line]


@pytest.mark.timeout(600)
def test_ray_scan_equals_the_plain_scan(zoo: Zoo, tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    hub.mkdir()
    for name, source in {"copy": zoo.fine_tuned, "pruned": zoo.pruned, "theirs": zoo.independent}.items():
        shutil.copy(source, hub / f"{name}.onnx")
    (hub / "broken.onnx").write_bytes(b"not a model")
    plain = _finish(_scan(hub, "-f", zoo.bundle, "--output", tmp_path / "plain.jsonl"))
    fleet = _finish(_scan(hub, "-f", zoo.bundle, "--output", tmp_path / "ray.jsonl", "--ray", "auto", "--workers", "2"))
    assert plain[0] == fleet[0] == ExitCode.match, fleet[2][-2000:]
    assert _results(tmp_path / "ray.jsonl") == _results(tmp_path / "plain.jsonl")
    assert len(_results(tmp_path / "ray.jsonl")) == 4


@pytest.mark.timeout(600)
def test_a_killed_actor_loses_nothing_and_duplicates_nothing(zoo: Zoo, tmp_path: Path) -> None:
    with PredictionServer(zoo.fine_tuned, Behaviour(delay=0.1)) as server:
        suspects = [f"{server.base}/predict?copy={i}" for i in range(16)]  # slow suspects: time to kill one
        reference = _scan(*suspects, "-f", zoo.bundle, "--output", tmp_path / "plain.jsonl")
        assert _finish(reference)[0] == ExitCode.match
        journal = tmp_path / "ray.jsonl"
        fleet = _scan(*suspects, "-f", zoo.bundle, "--output", journal, "--ray", "auto", "--workers", "2")
        killed = None
        deadline = time.monotonic() + 240
        while fleet.poll() is None and time.monotonic() < deadline:
            pids = _actor_pids()
            if pids and journal.exists() and journal.read_text().count("\n") >= 1:
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)
                break
            time.sleep(0.05)
        code, _, stderr = _finish(fleet)
    assert killed is not None, "the scan ended before an actor could be killed"
    assert code == ExitCode.match, stderr[-2000:]
    assert killed not in _actor_pids()
    assert _results(journal) == _results(tmp_path / "plain.jsonl")
    assert len(_results(journal)) == 16


def test_ray_without_the_fleet_extra_or_with_bad_workers_is_one_line(zoo: Zoo, tmp_path: Path) -> None:
    code, _, stderr = _finish(
        _scan(zoo.target, "-f", zoo.bundle, "--output", tmp_path / "x.jsonl", "--ray", "auto", "--workers", "0")
    )
    assert code == ExitCode.usage and len(stderr.strip().splitlines()) == 1 and "--workers" in stderr
    # Ray not installed: the interpreter refuses the import (sys.modules[name] = None), as without [fleet].
    without_ray = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['ray'] = None; from ipguard_onnx.cli import main; main()",
            "scan",
            str(zoo.target),
            "-f",
            str(zoo.bundle),
            "--output",
            str(tmp_path / "y.jsonl"),
            "--ray",
            "auto",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert without_ray.returncode == ExitCode.environment, without_ray.stderr
    assert "[fleet]" in without_ray.stderr and len(without_ray.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "y.jsonl").exists()
