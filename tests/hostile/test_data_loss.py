"""Nothing the user has is lost: no command writes over one of its inputs, and a failed write changes nothing.

Every case runs the real CLI on real files and compares sha256 checksums of the user's files before
and after, beside the documented exit code and the one-line error.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.keys import write_keypair

from ..conftest import RunCli, Zoo, one_line_error
from .artifacts import digest

Case = Callable[[Path], list[object]]


@pytest.fixture
def files(zoo: Zoo, tmp_path: Path) -> Path:
    """A scratch folder with the user's files: a model, its bundle, a key pair, a note, owner data."""
    shutil.copy(zoo.target, tmp_path / "model.onnx")
    shutil.copy(zoo.bundle, tmp_path / "fp.safetensors")
    shutil.copy(zoo.independent, tmp_path / "other.onnx")
    write_keypair(tmp_path / "owner.pem", tmp_path / "owner.pub.pem")
    (tmp_path / "notes.txt").write_text("my notes, not a scan journal")
    (tmp_path / "report.json").write_text('{"mine": true}\n')
    os.symlink(tmp_path / "model.onnx", tmp_path / "link-to-model.onnx")
    os.link(tmp_path / "model.onnx", tmp_path / "hardlink.onnx")
    return tmp_path


CASES: list[tuple[str, Case, int, str]] = [
    (
        "fingerprint over its model",
        lambda t: ["fingerprint", t / "model.onnx", "--output", t / "model.onnx"],
        ExitCode.usage,
        "is MODEL",
    ),
    (
        "fingerprint over its model through a symlink",
        lambda t: ["fingerprint", t / "model.onnx", "--output", t / "link-to-model.onnx"],
        ExitCode.usage,
        "is MODEL",
    ),
    (
        "fingerprint over its key",
        lambda t: ["fingerprint", t / "model.onnx", "--key", t / "owner.pem", "-o", t / "owner.pem"],
        ExitCode.usage,
        "is --key",
    ),
    (
        "fingerprint over a file that is no bundle",
        lambda t: ["fingerprint", t / "model.onnx", "--output", t / "report.json"],
        ExitCode.usage,
        "not an ipguard-onnx bundle",
    ),
    (
        "audit report over the suspect",
        lambda t: [
            "audit",
            t / "model.onnx",
            "-f",
            t / "fp.safetensors",
            "--format",
            "json",
            "--report",
            t / "model.onnx",
        ],
        ExitCode.usage,
        "is a suspect",
    ),
    (
        "audit report over a hard link of the suspect",
        lambda t: [
            "audit",
            t / "model.onnx",
            "-f",
            t / "fp.safetensors",
            "--format",
            "json",
            "--report",
            t / "hardlink.onnx",
        ],
        ExitCode.usage,
        "is a suspect",
    ),
    (
        "sarif report over the bundle",
        lambda t: [
            "audit",
            t / "model.onnx",
            "-f",
            t / "fp.safetensors",
            "--format",
            "sarif",
            "--report",
            t / "fp.safetensors",
        ],
        ExitCode.usage,
        "is a fingerprint",
    ),
    (
        "report over the signing key",
        lambda t: [
            "audit",
            t / "model.onnx",
            "-f",
            t / "fp.safetensors",
            "--format",
            "json",
            "--sign-report",
            t / "owner.pem",
            "--report",
            t / "owner.pem",
        ],
        ExitCode.usage,
        "is --sign-report",
    ),
    (
        "scan journal over a suspect",
        lambda t: ["scan", t / "model.onnx", "-f", t / "fp.safetensors", "-o", t / "model.onnx", "--resume"],
        ExitCode.usage,
        "is a suspect",
    ),
    (
        "scan --resume on a file that is no journal",
        lambda t: ["scan", t / "model.onnx", "-f", t / "fp.safetensors", "-o", t / "notes.txt", "--resume"],
        ExitCode.usage,
        "not a scan journal",
    ),
    (
        "evaluate plot over the report",
        lambda t: [
            "evaluate",
            "-f",
            t / "fp.safetensors",
            "--positive",
            t / "model.onnx",
            "--negative",
            t / "other.onnx",
            "--format",
            "json",
            "--report",
            t / "report.json",
            "--plot",
            t / "report.json",
        ],
        ExitCode.usage,
        "same file",
    ),
    (
        "evaluate report over a negative",
        lambda t: [
            "evaluate",
            "-f",
            t / "fp.safetensors",
            "--positive",
            t / "model.onnx",
            "--negative",
            t / "other.onnx",
            "--format",
            "json",
            "--report",
            t / "other.onnx",
        ],
        ExitCode.usage,
        "is a suspect",
    ),
    (
        "calibrate over a negative",
        lambda t: [
            "calibrate",
            t / "fp.safetensors",
            "--negative",
            t / "other.onnx",
            "--key",
            t / "owner.pem",
            "--output",
            t / "other.onnx",
        ],
        ExitCode.usage,
        "is a suspect",
    ),
    (
        "a report over the user's own JSON",
        lambda t: [
            "audit",
            t / "model.onnx",
            "-f",
            t / "fp.safetensors",
            "--format",
            "json",
            "--report",
            t / "report.json",
        ],
        ExitCode.usage,
        "not an ipguard-onnx report",
    ),
    (
        "a report over a model that is no input",
        lambda t: [
            "audit",
            t / "other.onnx",
            "-f",
            t / "fp.safetensors",
            "--format",
            "sarif",
            "--report",
            t / "model.onnx",
        ],
        ExitCode.usage,
        "not an ipguard-onnx report",
    ),
    (
        "a plot over notes",
        lambda t: [
            "evaluate",
            "-f",
            t / "fp.safetensors",
            "--positive",
            t / "model.onnx",
            "--negative",
            t / "other.onnx",
            "--plot",
            t / "notes.txt",
        ],
        ExitCode.usage,
        "not a PNG image",
    ),
    (
        "keygen --force over notes",
        lambda t: ["keygen", "--out", t / "notes.txt", "--force"],
        ExitCode.usage,
        "not a PEM key",
    ),
    (
        "keygen --force whose public half cannot be written",
        lambda t: [*_public_is_a_folder(t), "keygen", "--out", t / "owner.pem", "--force"],
        ExitCode.trust,
        "folder",
    ),
]


def _public_is_a_folder(folder: Path) -> list[object]:
    """Make owner.pub.pem a folder (after the fixture wrote it): the new public half cannot go there."""
    (folder / "owner.pub.pem").unlink()
    (folder / "owner.pub.pem").mkdir()
    return []


@pytest.mark.parametrize(("name", "arguments", "code", "message"), CASES, ids=[case[0] for case in CASES])
def test_no_command_writes_over_what_the_user_has(
    run_cli: RunCli, files: Path, name: str, arguments: Case, code: int, message: str
) -> None:
    built = arguments(files)
    watched = sorted(p for p in files.iterdir() if p.is_file())
    before = digest(*watched)
    result = run_cli(*built)
    assert result.code == code, (result.code, result.stderr)
    assert message in one_line_error(result)
    assert digest(*watched) == before, f"{name} changed a file the user had"


def test_keygen_force_that_fails_keeps_the_old_key_whole(run_cli: RunCli, tmp_path: Path) -> None:
    """Both or neither: the private key written first is put back when the public half fails."""
    write_keypair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    old = (tmp_path / "k.pem").read_bytes()
    (tmp_path / "k.pub.pem").unlink()
    (tmp_path / "k.pub.pem").mkdir()
    result = run_cli("keygen", "--out", tmp_path / "k.pem", "--force")
    assert result.code == ExitCode.trust
    assert (tmp_path / "k.pem").read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem", "k.pub.pem"]  # no temporary left behind


def test_keygen_force_replaces_both_halves(run_cli: RunCli, tmp_path: Path) -> None:
    from ipguard_onnx.keys import key_id, load_private_key, load_public_key

    write_keypair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    old = (tmp_path / "k.pem").read_bytes()
    assert run_cli("keygen", "--out", tmp_path / "k.pem", "--force").code == 0
    assert (tmp_path / "k.pem").read_bytes() != old
    assert key_id(load_private_key(tmp_path / "k.pem").public_key()) == key_id(load_public_key(tmp_path / "k.pub.pem"))


def test_an_output_that_cannot_be_written_fails_before_any_work(run_cli: RunCli, files: Path) -> None:
    """--output under a file: one line, exit 2, at once (not after a search), for every command that writes."""
    under = files / "notes.txt" / "out.json"
    for arguments in (
        ["fingerprint", files / "model.onnx", "--output", files / "notes.txt" / "fp.safetensors"],
        ["audit", files / "model.onnx", "-f", files / "fp.safetensors", "--format", "json", "--report", under],
        ["scan", files / "model.onnx", "-f", files / "fp.safetensors", "-o", under],
        ["keygen", "--out", files / "notes.txt" / "k.pem"],
        ["keygen", "--out", files],
    ):
        result = run_cli(*arguments)
        assert result.code in (ExitCode.usage, ExitCode.input, ExitCode.trust), (arguments, result.stderr)
        one_line_error(result)
    assert (files / "notes.txt").read_text() == "my notes, not a scan journal"


def test_a_report_replaces_only_its_own_output_atomically(run_cli: RunCli, files: Path) -> None:
    """Where replacing is the purpose (a report by a report), the old one is replaced whole, no temporary left."""
    arguments = ["audit", files / "model.onnx", "-f", files / "fp.safetensors", "--format", "json"]
    assert run_cli(*arguments, "--report", files / "old.json").code == ExitCode.match
    first = (files / "old.json").read_text()
    result = run_cli(*arguments, "--report", files / "old.json", env={"SOURCE_DATE_EPOCH": "0"})
    assert result.code == ExitCode.match, result.stderr
    assert (files / "old.json").read_text() != first and '"verdict": "match"' in (files / "old.json").read_text()
    assert not [p for p in files.iterdir() if p.name.startswith(".old.json")]
