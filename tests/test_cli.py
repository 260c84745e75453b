"""The CLI in-process (typer's CliRunner); the console script, python -m and the torch-free audit as real processes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from ipguard_onnx import load_bundle
from ipguard_onnx.exit_codes import ExitCode

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
    assert bundle.is_file() and "40 of 40" in made.stdout
    assert "chosen because" in made.stdout  # the report says which search ran and why, and the bundle signs it
    record = load_bundle(bundle).record.search
    assert record is not None and record.search_chosen_because.startswith("a PyTorch surrogate reproduces onnxruntime")

    shown = run_cli("inspect", bundle, "--trusted-key", tmp_path / "owner.pub.pem")
    assert shown.code == 0 and "valid" in shown.stdout and "target_sha256" in shown.stdout

    uncalibrated = run_cli("audit", zoo.fine_tuned, "--fingerprint", bundle)  # no owner data: it cannot accuse
    assert uncalibrated.code == ExitCode.input and "cannot accuse" in uncalibrated.stdout, uncalibrated.stdout
    assert "calibrate" in uncalibrated.stdout and "--threshold" in uncalibrated.stdout  # and says how to

    paper = ("--threshold", 0.85)  # the paper's rule, asked for by name
    pirate = run_cli(
        "audit", zoo.fine_tuned, "--fingerprint", bundle, "--trusted-key", tmp_path / "owner.pub.pem", *paper
    )
    assert pirate.code == ExitCode.match, pirate.stderr
    assert "MATCH" in pirate.stdout

    innocent = run_cli("audit", zoo.independent, "--fingerprint", bundle, "--format", "json", *paper)
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
    wrong = run_cli(
        "fingerprint",
        zoo.target,
        "--key",
        tmp_path / "k.pem",
        "-o",
        tmp_path / "x.safetensors",
        "--n",
        5,
        env={"IPGUARD_ONNX_KEY_PASSWORD": "wrong"},
    )
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


def test_json_report_to_output_file(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    report = tmp_path / "report.json"
    result = run_cli("audit", zoo.target, "-f", zoo.bundle, "--format", "json", "--report", report)
    assert result.code == ExitCode.match and result.stdout == ""
    assert json.loads(report.read_text())["results"][0]["matching_rate"] == 1.0


def test_the_former_name_of_report_still_writes_the_report_and_says_so(
    zoo: Zoo, tmp_path: Path, run_cli: RunCli
) -> None:
    report = tmp_path / "report.json"
    result = run_cli("audit", zoo.target, "-f", zoo.bundle, "--format", "json", "--output", report)
    assert result.code == ExitCode.match and result.stdout == ""
    assert "now --report" in result.stderr and json.loads(report.read_text())["results"][0]["verdict"] == "match"
    both = run_cli("audit", zoo.target, "-f", zoo.bundle, "--format", "json", "--output", report, "--report", report)
    assert both.code == ExitCode.usage and "only --report" in one_line_error(both)


def test_every_command_puts_the_summary_on_stderr_when_stdout_carries_json(zoo: Zoo, run_cli: RunCli) -> None:
    """One output rule: text on stdout by default; with --format json the JSON alone on stdout."""
    for arguments in (["inspect", zoo.bundle], ["audit", zoo.target, "-f", zoo.bundle]):
        text = run_cli(*arguments)
        machine = run_cli(*arguments, "--format", "json")
        assert text.stdout.strip() and not text.stdout.lstrip().startswith("{"), arguments
        assert json.loads(machine.stdout)["tool"] == "ipguard-onnx" and machine.stderr.strip(), arguments


def test_audit_takes_folders_and_globs_like_every_command(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    folder = tmp_path / "suspects"
    folder.mkdir()
    shutil.copy(zoo.target, folder / "copy.onnx")
    shutil.copy(zoo.independent, folder / "other.onnx")
    for given in (folder, f"{folder}/*.onnx"):
        result = run_cli("audit", given, "-f", zoo.bundle, "--format", "json")
        rows = {row["suspect"]: row["verdict"] for row in json.loads(result.stdout)["results"]}
        assert result.code == ExitCode.match and rows.keys() == {"copy.onnx", "other.onnx"}, result.stderr
        assert rows["copy.onnx"] == "match" and rows["other.onnx"] != "match"
    (tmp_path / "empty").mkdir()
    empty = run_cli("audit", tmp_path / "empty", "-f", zoo.bundle)
    assert empty.code == ExitCode.usage and "matches no .onnx model" in one_line_error(empty)


def test_options_that_need_another_option_are_usage_errors(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    """--report needs a machine format, --key (for audit) needs --attest: one line, exit 2, before any work."""
    text_report = run_cli("audit", zoo.target, "-f", zoo.bundle, "--report", tmp_path / "r.json")
    assert text_report.code == ExitCode.usage and "--format json" in one_line_error(text_report)
    assert not (tmp_path / "r.json").exists()
    lone_key = run_cli("audit", zoo.target, "-f", zoo.bundle, "--key", zoo.private_key)
    assert lone_key.code == ExitCode.usage and "--attest" in one_line_error(lone_key)


def test_python_dash_m_and_console_script_agree(run_cli: RunCli) -> None:
    import subprocess

    script = shutil.which("ipguard-onnx", path=str(Path(sys.executable).parent))
    assert script is not None
    assert subprocess.run([script, "--help"], capture_output=True, text=True).returncode == 0
    assert run_cli("--help").code == 0


def test_version(run_cli: RunCli) -> None:
    from ipguard_onnx import __version__

    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"ipguard-onnx {__version__}"
