"""Output formats: every --format of every command, the enum each command offers read from its signature
(pip-audit's test_to_format_is_exhaustive): a new format without a check here fails."""

from __future__ import annotations

import json
import shutil
import typing
from enum import StrEnum
from pathlib import Path

import numpy as np
import pytest

from ipguard_onnx.cli import app
from ipguard_onnx.exit_codes import ExitCode

from ..conftest import RunCli, Zoo


def _format_enums() -> dict[str, type[StrEnum]]:
    """Each command's ``--format`` enum, read from the command's own signature."""
    enums: dict[str, type[StrEnum]] = {}
    for command in app.registered_commands:
        assert command.callback is not None
        hints = typing.get_type_hints(command.callback, include_extras=True)
        if "output_format" in hints:
            enums[command.name or command.callback.__name__] = typing.get_args(hints["output_format"])[0]
    return enums


FORMATS = [(name, member) for name, enum in _format_enums().items() for member in enum]


def _format_run(name: str, zoo: Zoo, tmp_path: Path) -> tuple[list[object], ExitCode]:
    """How to run each command that has --format, cheaply, and the exit code it should give."""
    data = tmp_path / "data.npz"
    np.savez(data, x=zoo.x[:300])
    bundle = tmp_path / "fp.safetensors"
    shutil.copy(zoo.bundle, bundle)
    runs: dict[str, tuple[list[object], ExitCode]] = {
        "fingerprint": (
            ["fingerprint", zoo.target, "--key", zoo.private_key, "-o", tmp_path / "new.fp", "--n", 5],
            ExitCode.no_match,
        ),
        "inspect": (["inspect", zoo.bundle], ExitCode.no_match),
        "audit": (["audit", zoo.pruned, "-f", zoo.bundle], ExitCode.match),
        "evaluate": (
            ["evaluate", "-f", zoo.bundle, "--positive", zoo.pruned, "--negative", zoo.independent],
            ExitCode.no_match,
        ),
        "calibrate": (
            [
                "calibrate",
                bundle,
                "--negative",
                zoo.independent,
                "--key",
                zoo.private_key,
                "--false-accusation-rate",
                "0.01",
            ],
            ExitCode.no_match,
        ),
        "issue": (
            [
                "issue",
                zoo.target,
                "--licensee",
                "acme",
                "--data",
                data,
                "--registry",
                tmp_path / "registry",
                "--key",
                zoo.private_key,
                "--max-epochs",
                1,
                "--triggers",
                20,
                "-o",
                tmp_path / "acme.onnx",
            ],
            ExitCode.no_match,
        ),
        "scan": (
            ["scan", zoo.pruned, zoo.independent, "-f", zoo.bundle, "-o", tmp_path / "scan.jsonl"],
            ExitCode.match,
        ),
    }
    return runs[name]


@pytest.mark.parametrize(("command", "output_format"), FORMATS, ids=[f"{c}-{f.value}" for c, f in FORMATS])
def test_every_format_of_every_command(
    zoo: Zoo, tmp_path: Path, run_cli: RunCli, command: str, output_format: StrEnum
) -> None:
    arguments, code = _format_run(command, zoo, tmp_path)
    result = run_cli(*arguments, "--format", output_format.value)
    assert result.code == code, result.stderr
    if output_format.value == "json":
        document = json.loads(result.stdout)
        assert document["tool"] == "ipguard-onnx" and len(document) > 2
    elif output_format.value == "sarif":
        (run,) = json.loads(result.stdout)["runs"]
        assert run["tool"]["driver"]["name"] == "ipguard-onnx" and run["results"][0]["ruleId"] == "IPG001"
    else:
        assert output_format.value == "text", f"no check written for --format {output_format.value}"
        assert result.stdout.strip() or result.stderr.strip()
        assert not result.stdout.lstrip().startswith("{")


def test_every_command_with_a_report_has_a_format() -> None:
    assert set(_format_enums()) == {"fingerprint", "inspect", "audit", "evaluate", "calibrate", "issue", "scan"}
