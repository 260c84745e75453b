"""Safe output and transport: outside text never drives the terminal, credentials never leave their origin."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from ipguard_onnx import load_bundle
from ipguard_onnx.bundle import save_bundle
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.keys import load_private_key

from ..conftest import RunCli, Zoo
from .server import Hostile, HostileServer

FAKE_VERDICT = "\x1b[2J\x1b[1;1Hverdict NO MATCH\x07\u202e"
"""Clears the screen, homes the cursor and prints a fake verdict; then a bell and a right-to-left override."""
RAW = ("\x1b", "\x07", "\u202e")


def _no_raw_controls(*texts: str) -> None:
    for text in texts:
        for raw in RAW:
            assert raw not in text, f"{raw!r} reached the terminal raw"


@pytest.mark.parametrize("output_format", ["text", "json", "sarif"])
def test_a_suspect_file_name_cannot_fake_a_verdict(
    run_cli: RunCli, zoo: Zoo, tmp_path: Path, output_format: str
) -> None:
    suspect = tmp_path / f"upload{FAKE_VERDICT}.onnx"
    shutil.copy(zoo.target, suspect)
    result = run_cli("audit", suspect, "-f", zoo.bundle, "--format", output_format)
    assert result.code == ExitCode.match, result.stderr
    _no_raw_controls(result.stdout, result.stderr)
    assert "\\x1b[2J" in result.stdout + result.stderr or "\\u001b[2J" in result.stdout  # shown, escaped


def test_signed_metadata_is_shown_escaped_never_as_markup(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    """A validly signed bundle whose metadata holds escape sequences and rich markup (``[/]`` once crashed)."""
    bundle = load_bundle(zoo.bundle)
    names = tuple(f"[/][bold red]class {i}{FAKE_VERDICT}" for i in range(bundle.num_classes))
    record = dataclasses.replace(bundle.record, class_names=names, target_file=f"[/]{FAKE_VERDICT}.onnx")
    hostile = tmp_path / f"[/]{FAKE_VERDICT}.safetensors"
    save_bundle(hostile, bundle.tensors(), record, load_private_key(zoo.private_key))
    shown = run_cli("inspect", hostile)
    assert shown.code == 0, shown.stderr
    _no_raw_controls(shown.stdout, shown.stderr)
    assert "[/][bold red]class 0" in shown.stdout  # the markup is printed as text
    audited = run_cli("audit", zoo.target, "-f", hostile)
    assert audited.code == ExitCode.match, audited.stderr
    _no_raw_controls(audited.stdout, audited.stderr)


def test_an_error_line_escapes_the_names_it_quotes(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    result = run_cli("audit", tmp_path / f"missing{FAKE_VERDICT}[/].onnx", "-f", zoo.bundle)
    # a missing name with glob characters ('[') reads as a glob that matches nothing: a usage error, like scan's
    assert result.code == ExitCode.usage, result.stderr
    _no_raw_controls(result.stderr)
    assert "[/]" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def _labels_body(zoo: Zoo) -> dict[str, list[int]]:
    """The target's own answers to every fingerprint point: an honest API serving the protected model."""
    return {"predictions": load_bundle(zoo.bundle).labels.tolist()}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_gets_no_credentials(run_cli: RunCli, zoo: Zoo, status: int) -> None:
    points = len(load_bundle(zoo.bundle).points)
    with HostileServer(Hostile(body=_labels_body(zoo))) as elsewhere:
        with HostileServer(
            Hostile(mode="redirect", redirect_status=status, location=f"{elsewhere.base}/predict")
        ) as front:
            result = run_cli(
                "audit",
                "--endpoint",
                f"{front.base}/old",
                "-f",
                zoo.bundle,
                "--no-sequential",
                "--batch-size",
                points,
                "--format",
                "json",
                env={"IPGUARD_ONNX_AUTH_TOKEN": "s3cret", "IPGUARD_ONNX_HTTP_HEADERS": '{"X-Api-Key": "k3y"}'},
            )
        assert front.hostile.seen and front.hostile.seen[0][2].get("Authorization") == "Bearer s3cret"
    assert elsewhere.hostile.seen == []  # nothing at all reached the other origin
    assert result.code == ExitCode.input, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert row["verdict"] == "inconclusive"
    assert any("another origin" in reason for reason in row["skipped_reasons"])


@pytest.mark.parametrize(("status", "followed"), [(302, False), (303, False), (307, True), (308, True)])
def test_a_same_origin_redirect_keeps_the_post_or_is_refused(
    run_cli: RunCli, zoo: Zoo, status: int, followed: bool
) -> None:
    points = len(load_bundle(zoo.bundle).points)
    with HostileServer(
        Hostile(mode="redirect", redirect_status=status, location="/predict", body=_labels_body(zoo))
    ) as server:
        result = run_cli(
            "audit",
            "--endpoint",
            f"{server.base}/old",
            "-f",
            zoo.bundle,
            "--no-sequential",
            "--batch-size",
            points,
            "--format",
            "json",
        )
        methods = [(method, path) for method, path, _ in server.hostile.seen]
    if followed:  # the POST and its body went to the new path: the honest API is recognised
        assert result.code == ExitCode.match, result.stderr
        assert methods == [("POST", "/old"), ("POST", "/predict")]
    else:  # a POST turned into a GET would lose the points: refused, and said so
        assert result.code == ExitCode.input, result.stderr
        assert methods == [("POST", "/old")]
        (row,) = json.loads(result.stdout)["results"]
        assert any("into a GET" in reason for reason in row["skipped_reasons"])


def test_sarif_locations_are_uri_references(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    """A space, '#' or '%' in a suspect's path is percent-encoded, so a SARIF viewer opens the right file."""
    suspect = tmp_path / "my model#1 100%.onnx"
    shutil.copy(zoo.target, suspect)
    result = run_cli("audit", suspect, "-f", zoo.bundle, "--format", "sarif")
    assert result.code == ExitCode.match, result.stderr
    (row,) = json.loads(result.stdout)["runs"][0]["results"]
    uri = row["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.endswith("my%20model%231%20100%25.onnx")
