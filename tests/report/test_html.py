"""The HTML evidence report, opened the way its readers open it: in a real headless browser (Debian's
chromium), and read for what a person who never heard of IPGuard needs to find on the page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipguard_onnx.exit_codes import ExitCode

from ..conftest import RunCli, Zoo

CHROMIUM = next((path for path in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if path), None)
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )


def test_the_audit_report_says_what_a_reader_needs(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    page = tmp_path / "audit.html"
    result = run_cli("audit", zoo.pruned, zoo.independent, "-f", zoo.bundle, "--format", "html", "--report", page)
    assert result.code == ExitCode.match, result.stderr
    text = page.read_text(encoding="utf-8")
    for needed in (
        "What was tested",  # what was tested, in plain words
        "MATCH",
        "NO MATCH",  # each verdict and what it means
        "Evidence, part by part",
        "null agreement",
        "p-value",  # how strong the evidence is
        "signed by",
        "protected model sha256",  # who signed it, and what
        "The fingerprint points",  # the 8×8 digit points, as images
        "How this report was made",
        "ipguard-onnx",
    ):
        assert needed in text, needed
    images = text.count("src='data:image/png;base64,")
    assert images == 2 * 100  # every point of both suspects, drawn from the bundle itself
    json_report = run_cli("audit", zoo.pruned, "-f", zoo.bundle, "--format", "json")
    matched = json.loads(json_report.stdout)["results"][0]["points_matched"]
    assert f"on {matched} of " in text  # the same count as the machine-readable report
    assert "less than 1 in" in text and "q0 was measured on" in text  # the odds, and what they rest on
    assert "How to check this yourself" in text and "does not prove" in text


def test_outside_text_in_the_report_is_shown_not_run(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    hostile = tmp_path / "<script>alert(1)<\\script>.onnx"
    shutil.copy(zoo.pruned, hostile)
    result = run_cli("audit", hostile, "-f", zoo.bundle, "--format", "html")
    assert result.code == ExitCode.match, result.stderr
    assert "<script>" not in result.stdout and "&lt;script&gt;alert(1)" in result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs a headless chromium (Debian: apt-get install chromium)")
def test_the_report_renders_in_a_real_browser(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    page = tmp_path / "audit.html"
    assert run_cli("audit", zoo.pruned, "-f", zoo.bundle, "--format", "html", "--report", page).code == ExitCode.match
    dom = _browser(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "MATCH" in dom.stdout and "The fingerprint points" in dom.stdout and "</html>" in dom.stdout
    shot = tmp_path / "audit.png"
    taken = _browser(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int32)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    green = (pixels[..., 1] > 100) & (pixels[..., 0] < 60) & (pixels[..., 2] < 90)
    assert red.sum() > 500 and green.sum() > 500  # the verdict's frame and the agreeing points' frames drawn


@pytest.mark.skipif(CHROMIUM is None, reason="needs a headless chromium (Debian: apt-get install chromium)")
def test_the_evaluation_report_draws_its_curves(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    page = tmp_path / "evaluate.html"
    made = run_cli(
        "evaluate",
        "-f",
        zoo.bundle,
        "--positive",
        zoo.pruned,
        "--positive",
        zoo.fine_tuned,
        "--negative",
        zoo.independent,
        "--format",
        "html",
        "--report",
        page,
    )
    assert made.code == ExitCode.no_match, made.stderr
    text = page.read_text(encoding="utf-8")
    assert text.count("<polyline") == 4 and "ROC" in text and "ARUC" in text
    dom = _browser(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0 and "<svg" in dom.stdout and "robustness" in dom.stdout
