"""The CLI through a real subprocess: verbs, exit codes, JSON, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import shutil
import sys
import typing
from enum import StrEnum
from pathlib import Path

import numpy as np
import pytest

from ipguard_onnx.cli import ExitCode, app

from .conftest import RunCli, Zoo, one_line_error

AUDIT_FIELDS = {"suspect", "fingerprint", "matching_rate", "matched", "threshold", "points_queried", "points_skipped"}


def test_keygen_fingerprint_inspect_audit_end_to_end(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    keygen = run_cli("keygen", "--out", tmp_path / "owner.pem")
    assert keygen.code == 0, keygen.stderr
    assert (tmp_path / "owner.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "owner.pub.pem").is_file()

    bundle = tmp_path / "fp.safetensors"
    made = run_cli("fingerprint", zoo.target, "--key", tmp_path / "owner.pem", "-o", bundle, "--n", 40, "--seed", 1)
    assert made.code == 0, made.stderr
    assert bundle.is_file() and "40 of 40" in made.stderr

    shown = run_cli("inspect", bundle, "--trusted-key", tmp_path / "owner.pub.pem")
    assert shown.code == 0 and "valid" in shown.stdout and "target_sha256" in shown.stdout

    pirate = run_cli("audit", zoo.fine_tuned, "--fingerprint", bundle, "--trusted-key", tmp_path / "owner.pub.pem")
    assert pirate.code == ExitCode.match, pirate.stderr
    assert "MATCH" in pirate.stdout

    innocent = run_cli("audit", zoo.independent, "--fingerprint", bundle, "--format", "json")
    assert innocent.code == ExitCode.no_match, innocent.stderr
    (row,) = json.loads(innocent.stdout)["results"]
    assert AUDIT_FIELDS <= set(row)
    assert row["matched"] is False and row["matching_rate"] < row["threshold"]
    assert row["points_queried"] == 40 and row["points_skipped"] == 0


def test_default_key_is_created_in_the_config_folder(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    made = run_cli("fingerprint", zoo.target, "-o", tmp_path / "fp.safetensors", "--n", 5)
    assert made.code == 0, made.stderr
    key = tmp_path / "config" / "signing-key.pem"
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    assert f"created the default signing key {key}" in made.stderr
    again = run_cli("fingerprint", zoo.target, "-o", tmp_path / "fp2.safetensors", "--n", 5)
    assert again.code == 0 and "using the default signing key" in again.stderr


def test_password_protected_key(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    secret = {"IPGUARD_ONNX_KEY_PASSWORD": "correct horse"}
    assert run_cli("keygen", "--out", tmp_path / "k.pem", env=secret).code == 0
    made = run_cli(
        "fingerprint", zoo.target, "--key", tmp_path / "k.pem", "-o", tmp_path / "fp.safetensors", "--n", 5, env=secret
    )
    assert made.code == 0, made.stderr
    missing = run_cli(
        "fingerprint", zoo.target, "--key", tmp_path / "k.pem", "-o", tmp_path / "x.safetensors", "--n", 5
    )
    assert missing.code == ExitCode.trust and "IPGUARD_ONNX_KEY_PASSWORD" in one_line_error(missing)
    wrong = run_cli("fingerprint", zoo.target, "--key", tmp_path / "k.pem", "-o", tmp_path / "x.safetensors", "--n", 5,
                    env={"IPGUARD_ONNX_KEY_PASSWORD": "wrong"})  # fmt: skip
    assert wrong.code == ExitCode.trust and "password is wrong" in one_line_error(wrong)
    assert not (tmp_path / "x.safetensors").exists()


def test_audit_never_imports_torch(zoo: Zoo) -> None:
    import subprocess

    code = (
        "import sys; from ipguard_onnx.cli import app\n"
        "try:\n"
        f"    app(['audit', {str(zoo.target)!r}, '--fingerprint', {str(zoo.bundle)!r}, '--format', 'json'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 1, exit.code\n"
        "print('torch' in sys.modules, 'onnx2pytorch' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "False False"


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
        "fingerprint": (["fingerprint", zoo.target, "--key", zoo.private_key, "-o", tmp_path / "new.fp", "--n", 5],
                        ExitCode.no_match),
        "inspect": (["inspect", zoo.bundle], ExitCode.no_match),
        "audit": (["audit", zoo.pruned, "-f", zoo.bundle], ExitCode.match),
        "evaluate": (["evaluate", "-f", zoo.bundle, "--positive", zoo.pruned, "--negative", zoo.independent],
                     ExitCode.no_match),
        "calibrate": (["calibrate", bundle, "--negative", zoo.independent, "--key", zoo.private_key,
                       "--false-accusation-rate", "0.01"], ExitCode.no_match),
        "issue": (["issue", zoo.target, "--licensee", "acme", "--data", data, "--registry", tmp_path / "registry",
                   "--key", zoo.private_key, "--max-epochs", 1, "--triggers", 20, "-o", tmp_path / "acme.onnx"],
                  ExitCode.no_match),
    }  # fmt: skip
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
    assert set(_format_enums()) == {"fingerprint", "inspect", "audit", "evaluate", "calibrate", "issue"}


def test_json_report_to_output_file(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    report = tmp_path / "report.json"
    result = run_cli("audit", zoo.target, "-f", zoo.bundle, "--format", "json", "--output", report)
    assert result.code == ExitCode.match and result.stdout == ""
    assert json.loads(report.read_text())["results"][0]["matching_rate"] == 1.0


def test_python_dash_m_and_console_script_agree(run_cli: RunCli) -> None:
    import shutil
    import subprocess

    script = shutil.which("ipguard-onnx", path=str(Path(sys.executable).parent))
    assert script is not None
    assert subprocess.run([script, "--help"], capture_output=True, text=True).returncode == 0
    assert run_cli("--help").code == 0


def test_version(run_cli: RunCli) -> None:
    from ipguard_onnx import __version__

    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"ipguard-onnx {__version__}"
