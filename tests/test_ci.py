"""CI mode: --expect, SARIF, folders of bundles, and the shipped workflow and pre-commit hook, run for real."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from ipguard_onnx.exit_codes import ExitCode

from .conftest import RunCli, Zoo

ROOT = Path(__file__).resolve().parent.parent


def _repository(zoo: Zoo, folder: Path, models: dict[str, Path]) -> Path:
    """A model owner's repository: models/*.onnx, fingerprints/*.safetensors and the owner's public key."""
    (folder / "models").mkdir(parents=True)
    (folder / "fingerprints").mkdir()
    for name, source in models.items():
        shutil.copy(source, folder / "models" / name)
    shutil.copy(zoo.bundle, folder / "fingerprints" / "target.fingerprint.safetensors")
    shutil.copy(zoo.public_key, folder / "fingerprints" / "owner.pub.pem")
    return folder


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=300, env=environment
    )


def _workflow_audit_step() -> str:
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "ipguard-audit.yml").read_text())
    steps = workflow["jobs"]["audit"]["steps"]
    (command,) = [s["run"] for s in steps if str(s.get("run", "")).startswith("ipguard-onnx audit")]
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in steps)
    return str(command)


def test_github_workflow_command_passes_on_shipped_copies(zoo: Zoo, tmp_path: Path) -> None:
    repository = _repository(zoo, tmp_path, {"model.onnx": zoo.target, "model-pruned.onnx": zoo.pruned})
    completed = _shell(_workflow_audit_step(), repository)
    assert completed.returncode == ExitCode.no_match, completed.stderr
    sarif = json.loads((repository / "ipguard.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert len(results) == 2 and {r["level"] for r in results} == {"note"}
    assert {r["ruleId"] for r in results} == {"IPG001"}


def test_github_workflow_command_fails_when_a_model_is_not_ours(zoo: Zoo, tmp_path: Path) -> None:
    repository = _repository(zoo, tmp_path, {"model.onnx": zoo.target, "swapped.onnx": zoo.independent})
    completed = _shell(_workflow_audit_step(), repository)
    assert completed.returncode == ExitCode.match
    results = json.loads((repository / "ipguard.sarif").read_text())["runs"][0]["results"]
    levels = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r["level"] for r in results}
    assert levels == {"models/model.onnx": "note", "models/swapped.onnx": "error"}


def test_pre_commit_hook_entry(zoo: Zoo, tmp_path: Path) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["pass_filenames"] and hook["files"] == r"\.onnx$"
    repository = _repository(zoo, tmp_path, {"ours.onnx": zoo.fine_tuned, "theirs.onnx": zoo.other_architecture})
    entry = hook["entry"]
    passed = _shell(f"{entry} models/ours.onnx", repository)
    assert passed.returncode == ExitCode.no_match, passed.stderr
    failed = _shell(f"{entry} {shlex.quote('models/ours.onnx')} models/theirs.onnx", repository)
    assert failed.returncode == ExitCode.match
    assert "theirs.onnx" in failed.stdout


def test_expect_no_match_and_sarif_on_stdout(zoo: Zoo, run_cli: RunCli) -> None:
    clean = run_cli("audit", zoo.independent, "-f", zoo.bundle, "--expect", "no-match", "--format", "sarif")
    assert clean.code == ExitCode.no_match, clean.stderr
    (result,) = json.loads(clean.stdout)["runs"][0]["results"]
    assert result["level"] == "note" and result["ruleId"] == "IPG002"
    caught = run_cli("audit", zoo.target, "-f", zoo.bundle, "--expect", "no-match")
    assert caught.code == ExitCode.match


def test_folder_of_bundles_and_several_suspects_rank_in_one_table(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    folder = tmp_path / "fingerprints"
    folder.mkdir()
    shutil.copy(zoo.bundle, folder / "a.safetensors")
    shutil.copy(zoo.bundle, folder / "b.safetensors")
    suspects = [zoo.independent, zoo.target, zoo.other_architecture]
    table = run_cli("audit", *suspects, "--fingerprints", folder)
    assert table.code == ExitCode.match, table.stderr
    lines = [line for line in table.stdout.splitlines() if line.startswith("│")]
    assert len(lines) == 6 and "target.onnx" in lines[0] and "target.onnx" in lines[1]
    rows = json.loads(run_cli("audit", *suspects, "--fingerprints", folder, "--format", "json").stdout)["results"]
    rates = [row["matching_rate"] for row in rows if row["verdict"] != "match"]
    assert rates == sorted(rates, reverse=True) and len(rows) == 6
