"""The README's main job: the quickstart, run for real, and the published demo fingerprint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ipguard_onnx import audit, load_bundle
from ipguard_onnx.keys import load_public_key

from .conftest import Quickstart

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_convicts_the_pirate_and_clears_the_innocent(quickstart: Quickstart) -> None:
    completed, tmp_path = quickstart.completed, quickstart.folder
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "MATCH" in completed.stdout and "NO MATCH" in completed.stdout
    assert "Traceback" not in completed.stderr

    # The published demo fingerprint verifies under the published key and recognises the demo model.
    published = load_bundle(
        ROOT / "fingerprints" / "demo-target.fingerprint.safetensors",
        trusted_key=load_public_key(ROOT / "fingerprints" / "demo-key.pub.pem"),
    )
    assert published.signer_pinned
    assert published.null_agreement_source.startswith("calibrated on 3")
    assert audit(published, tmp_path / "demo-target.onnx").matched
    assert not audit(published, tmp_path / "innocent.onnx").matched
    # the run's own bundle was calibrated: the pirate's p-value is far below the innocent model's
    local = load_bundle(tmp_path / "demo-target.fingerprint.safetensors")
    pirate, innocent = audit(local, tmp_path / "pirated.onnx"), audit(local, tmp_path / "innocent.onnx")
    assert pirate.p_value < 1e-6 < innocent.p_value and "calibrated" in local.null_agreement_source


def test_python_api_example_runs() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "audit_python.py")], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert "scikit-learn logistic regression: no match" in completed.stdout
