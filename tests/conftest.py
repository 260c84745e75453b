"""Real artifacts for the tests, made once per session in seconds: digits models exported to ONNX."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pytest

from ipguard_onnx import demo
from ipguard_onnx.fingerprint import FingerprintResult, FingerprintSettings, fingerprint
from ipguard_onnx.keys import load_private_key, write_keypair

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Zoo:
    """The protected model, its pirated copies, independent models, and a signed fingerprint."""

    folder: Path
    x: np.ndarray
    y: np.ndarray
    target: Path
    fine_tuned: Path
    pruned: Path
    independent: Path
    other_architecture: Path
    private_key: Path
    public_key: Path
    bundle: Path
    made: FingerprintResult
    """What the default fingerprint of the target with the owner's labelled data built (and left out)."""


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    from torch import nn

    folder = tmp_path_factory.mktemp("zoo")
    x, y = demo.digits()
    target = demo.train(demo.digits_cnn(seed=0), x, y, seed=0)
    paths = {
        "target": demo.export_onnx(target, x, folder / "target.onnx"),
        "fine_tuned": demo.export_onnx(demo.fine_tuned(target, x, y, seed=1), x, folder / "fine_tuned.onnx"),
        "pruned": demo.export_onnx(demo.pruned(target, 0.2), x, folder / "pruned.onnx"),
        "independent": demo.export_onnx(
            demo.train(demo.digits_cnn(seed=100), x, y, seed=100), x, folder / "independent.onnx"
        ),
        "other_architecture": demo.export_onnx(
            demo.train(demo.digits_mlp(seed=7), x, y, seed=7), x, folder / "mlp.onnx"
        ),
    }
    # Variants of the protected model: fixed batch of 1, probability output, weights in a .data file.
    demo.export_onnx(target, x, folder / "target_batch1.onnx", dynamic_batch=False)
    demo.export_onnx(nn.Sequential(target, nn.Softmax(dim=1)), x, folder / "target_softmax.onnx")
    _export_external(target, x, folder / "target_external.onnx")
    pair = write_keypair(folder / "owner.pem", folder / "owner.pub.pem")
    bundle = folder / "target.fingerprint.safetensors"
    owner_data = folder / "owner.npz"  # the owner's labelled data: the default fingerprint composes and calibrates
    np.savez(owner_data, x=x, y=y)
    made = fingerprint(
        paths["target"],
        bundle,
        signing_key=load_private_key(pair.private_path),
        settings=FingerprintSettings(seed=0),
        data_path=owner_data,
    )
    return Zoo(
        folder=folder,
        x=x,
        y=y,
        private_key=pair.private_path,
        public_key=pair.public_path,
        bundle=bundle,
        made=made,
        **paths,
    )


def _export_external(model: torch.nn.Module, x: np.ndarray, path: Path) -> None:
    import io
    import warnings
    from contextlib import redirect_stdout

    import torch

    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (torch.from_numpy(x[:1]),),
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
        assert program is not None
        program.save(str(path), external_data=True)


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


class RunCli(Protocol):
    """Run the CLI with these arguments (``env`` values of None unset a variable)."""

    def __call__(
        self, *arguments: object, env: Mapping[str, str | None] | None = None, cwd: Path | None = None
    ) -> CliResult: ...


def _environment(tmp_path: Path) -> dict[str, str | None]:
    return {"IPGUARD_ONNX_HOME": str(tmp_path / "config"), "COLUMNS": "200", "IPGUARD_ONNX_KEY_PASSWORD": None}


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """The CLI in-process through typer's ``CliRunner``, with a private config folder.

    An exception that escapes a command (instead of becoming an exit code) fails the test: in the
    console script it would be an internal error, and the commands are meant to map every one.
    """
    from typer.testing import CliRunner

    from ipguard_onnx.cli import app

    runner = CliRunner()
    base = _environment(tmp_path)

    def run(*arguments: object, env: Mapping[str, str | None] | None = None, cwd: Path | None = None) -> CliResult:
        with contextlib.chdir(cwd or Path.cwd()):
            result = runner.invoke(app, [str(a) for a in arguments], env={**base, **(env or {})})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"the command raised instead of exiting: {result.exception!r}") from result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def run_process(tmp_path: Path) -> RunCli:
    """``python -m ipguard_onnx ...`` in a real subprocess (the console script's own path)."""

    def run(*arguments: object, env: Mapping[str, str | None] | None = None, cwd: Path | None = None) -> CliResult:
        merged = {**os.environ, **_environment(tmp_path), **(env or {})}
        environment = {key: value for key, value in merged.items() if value is not None}
        completed = subprocess.run(
            [sys.executable, "-m", "ipguard_onnx", *map(str, arguments)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=cwd,
            timeout=300,
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)

    return run


def one_line_error(result: CliResult, prefix: str = "error: ") -> str:
    """The single line a failing command prints (no traceback), which starts with ``prefix``."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr
    return lines[0]


@dataclass(frozen=True)
class Quickstart:
    """The README's main job, run once: its folder of models, key and calibrated bundle, and what it printed."""

    folder: Path
    completed: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Quickstart:
    folder = tmp_path_factory.mktemp("quickstart")
    root = Path(__file__).resolve().parent.parent
    completed = subprocess.run(
        [sys.executable, str(root / "examples" / "quickstart.py"), "--out", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Quickstart(folder, completed)
