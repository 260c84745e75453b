"""Installs by role, for real: a fresh virtualenv, pip from the package index (warm cache), the real CLI.

One virtualenv walks the light installs in order: what pre-commit does for the hook (this repository
without extras, then the hook's ``additional_dependencies``), then the GitHub workflow's own install
step, each followed by the audit that install exists for. torch must never arrive.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ipguard_onnx.exit_codes import ExitCode

from .conftest import Zoo
from .test_ci import _repository, _workflow_audit_step

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"torch", "torchvision", "onnx2pytorch", "onnx2torch", "onnxruntime-gpu", "pydantic"}


def _run(command: list[str] | str, cwd: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    environment = dict(
        os.environ,
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        VIRTUAL_ENV=str(venv),
        IPGUARD_ONNX_HOME=str(cwd / ".ipguard-home"),  # a key made by mistake would land here, not in ~
    )
    environment.pop("PYTHONPATH", None)
    if isinstance(command, str):
        command = ["bash", "-c", command]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900, env=environment)


def _installed(venv: Path, cwd: Path) -> set[str]:
    listed = _run([str(venv / "bin" / "pip"), "list", "--format", "json"], cwd, venv)
    assert listed.returncode == 0, listed.stderr
    return {entry["name"].lower() for entry in json.loads(listed.stdout)}


def _pip_install(venv: Path, cwd: Path, *requirements: str) -> None:
    installed = _run([str(venv / "bin" / "pip"), "install", "--quiet", *requirements], cwd, venv)
    assert installed.returncode == 0, f"pip install {' '.join(requirements)} failed:\n{installed.stderr[-3000:]}"


@pytest.mark.timeout(1200)
def test_light_installs_audit_without_torch(zoo: Zoo, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    repository = _repository(zoo, tmp_path / "repo", {"ours.onnx": zoo.fine_tuned, "theirs.onnx": zoo.independent})

    # 1. The package alone: no runtime, so every command that runs a model says which extras to install.
    _pip_install(venv, repository, str(ROOT))
    assert "onnxruntime" not in _installed(venv, repository)
    bare = _run(["ipguard-onnx", "audit", "models/ours.onnx", "--fingerprints", "fingerprints"], repository, venv)
    assert bare.returncode == ExitCode.environment, bare.stderr
    assert "[cpu]" in bare.stderr and "[gpu]" in bare.stderr
    assert len(bare.stderr.strip().splitlines()) == 1 and "Traceback" not in bare.stderr
    # ... while inspecting a bundle needs no runtime at all.
    inspected = _run(["ipguard-onnx", "inspect", "fingerprints/target.fingerprint.safetensors"], repository, venv)
    assert inspected.returncode == 0, inspected.stderr

    # 2. pre-commit: the repository without extras, then the hook's additional_dependencies; run its entry.
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    _pip_install(venv, repository, *hook["additional_dependencies"])
    passed = _run(f"{hook['entry']} models/ours.onnx", repository, venv)
    assert passed.returncode == ExitCode.no_match, passed.stderr
    failed = _run(f"{hook['entry']} models/ours.onnx models/theirs.onnx", repository, venv)
    assert failed.returncode == ExitCode.match and "theirs.onnx" in failed.stdout, failed.stderr

    # 3. The GitHub workflow's install step, pointed at this checkout instead of the git URL; then its audit.
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "ipguard-audit.yml").read_text())
    (install,) = [s["run"] for s in workflow["jobs"]["audit"]["steps"] if str(s.get("run", "")).startswith("pip ")]
    requirement = shlex.split(install)[-1].replace("git+${{ vars.IPGUARD_ONNX_GIT_URL }}", ROOT.as_uri())
    assert "[cpu]" in requirement
    _pip_install(venv, repository, requirement)
    (repository / "models" / "theirs.onnx").unlink()
    audited = _run(_workflow_audit_step(), repository, venv)
    assert audited.returncode == ExitCode.no_match, audited.stderr
    sarif = json.loads((repository / "ipguard.sarif").read_text())
    assert [r["level"] for r in sarif["runs"][0]["results"]] == ["note"]

    # The auditor's install holds onnxruntime and nothing heavy; fingerprinting names the extra it needs.
    installed = _installed(venv, repository)
    assert "onnxruntime" in installed and not (HEAVY & installed), sorted(HEAVY & installed)
    made = _run(["ipguard-onnx", "fingerprint", "models/ours.onnx", "--output", "fp.safetensors"], repository, venv)
    assert made.returncode == ExitCode.environment and "[fingerprint]" in made.stderr, made.stderr
    assert len(made.stderr.strip().splitlines()) == 1 and not (repository / "fp.safetensors").exists()
    assert not (repository / ".ipguard-home").exists()  # refused before a signing key was made
    # The gradient-free search needs no torch: the auditor's install can still fingerprint, from labels alone.
    walked = _run(
        [
            "ipguard-onnx",
            "fingerprint",
            "models/ours.onnx",
            "--method",
            "gradient-free",
            "--n",
            "20",
            "--output",
            "gf.safetensors",
        ],
        repository,
        venv,
    )
    assert walked.returncode == 0, walked.stderr
    again = _run(
        [
            "ipguard-onnx",
            "audit",
            "models/ours.onnx",
            "-f",
            "gf.safetensors",
            "--format",
            "json",
            "--threshold",
            "0.85",
        ],
        repository,
        venv,
    )
    assert again.returncode == ExitCode.match and json.loads(again.stdout)["results"][0]["matching_rate"] == 1.0
