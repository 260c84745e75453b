"""The CLI through a real subprocess: verbs, exit codes, JSON, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ipguard_onnx.cli import ExitCode
from ipguard_onnx.report import AuditFormat, DocumentFormat

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


@pytest.mark.parametrize("output_format", list(AuditFormat))
def test_every_audit_format_works(zoo: Zoo, run_cli: RunCli, output_format: AuditFormat) -> None:
    audited = run_cli("audit", zoo.pruned, "-f", zoo.bundle, "--format", output_format.value)
    assert audited.code == ExitCode.match, audited.stderr
    if output_format is AuditFormat.json:
        assert json.loads(audited.stdout)["results"][0]["matched"] is True
    elif output_format is AuditFormat.sarif:
        (run,) = json.loads(audited.stdout)["runs"]
        assert run["results"][0]["ruleId"] == "IPG001"
    else:
        assert "matching rate" in audited.stdout


@pytest.mark.parametrize("output_format", list(DocumentFormat))
def test_every_inspect_format_works(zoo: Zoo, run_cli: RunCli, output_format: DocumentFormat) -> None:
    inspected = run_cli("inspect", zoo.bundle, "--format", output_format.value)
    assert inspected.code == 0, inspected.stderr
    if output_format is DocumentFormat.json:
        assert json.loads(inspected.stdout)["signature"] == "valid"
    else:
        assert "signature" in inspected.stdout


def test_sarif_is_a_usage_error_where_there_is_no_sarif(zoo: Zoo, run_cli: RunCli) -> None:
    inspected = run_cli("inspect", zoo.bundle, "--format", "sarif")
    assert inspected.code == ExitCode.usage
    assert "Invalid value for '--format'" in one_line_error(inspected) and inspected.stdout == ""


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


def _tampered(zoo: Zoo, tmp_path: Path) -> Path:
    data = bytearray(zoo.bundle.read_bytes())
    data[-3] ^= 0x10  # inside the points' bytes
    path = tmp_path / "tampered.safetensors"
    path.write_bytes(bytes(data))
    return path


def _not_onnx(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_text("definitely not a model")
    return path


ERROR_CASES = [
    # (name, arguments builder, exit code, message fragment)
    (
        "missing suspect",
        lambda z, t: ["audit", t / "missing.onnx", "-f", z.bundle],
        ExitCode.input,
        "model file not found",
    ),
    (
        "non-ONNX suspect",
        lambda z, t: ["audit", _not_onnx(t), "-f", z.bundle],
        ExitCode.input,
        "not a readable ONNX model",
    ),
    (
        "missing model",
        lambda z, t: ["fingerprint", t / "missing.onnx", "--n", 5],
        ExitCode.input,
        "model file not found",
    ),
    (
        "non-ONNX model",
        lambda z, t: ["fingerprint", _not_onnx(t), "--n", 5],
        ExitCode.input,
        "not a readable ONNX model",
    ),
    (
        "missing bundle",
        lambda z, t: ["audit", z.target, "-f", t / "none.safetensors"],
        ExitCode.input,
        "fingerprint not found",
    ),
    ("model as bundle", lambda z, t: ["audit", z.target, "-f", z.target], ExitCode.input, "bundle|header|fingerprint"),
    (
        "tampered bundle",
        lambda z, t: ["audit", z.target, "-f", _tampered(z, t)],
        ExitCode.trust,
        "altered after signing",
    ),
    ("tampered inspect", lambda z, t: ["inspect", _tampered(z, t)], ExitCode.trust, "altered after signing"),
    (
        "wrong trusted key",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--trusted-key", _other_key(t)],
        ExitCode.trust,
        "not by the trusted key",
    ),
    (
        "missing trusted key",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--trusted-key", t / "no.pem"],
        ExitCode.trust,
        "public key not found",
    ),
    (
        "missing signing key",
        lambda z, t: ["fingerprint", z.target, "--key", t / "no.pem"],
        ExitCode.trust,
        "signing key not found",
    ),
    (
        "public key to sign",
        lambda z, t: ["fingerprint", z.target, "--key", z.public_key],
        ExitCode.trust,
        "not a readable PEM private key",
    ),
    (
        "bad domain",
        lambda z, t: ["fingerprint", z.target, "--domain", "zero-one"],
        ExitCode.usage,
        "--domain expects LOW,HIGH",
    ),
    ("empty domain", lambda z, t: ["fingerprint", z.target, "--domain", "1,0"], ExitCode.usage, "LOW < HIGH"),
    ("bad n", lambda z, t: ["fingerprint", z.target, "--n", 0], ExitCode.usage, "--n must be at least 1"),
    (
        "input shape not numbers",
        lambda z, t: ["fingerprint", z.target, "--input-shape", "three"],
        ExitCode.usage,
        "--input-shape expects sizes like 3,48,192",
    ),
    ("input shape zero", lambda z, t: ["fingerprint", z.target, "--input-shape", "1,0,8"], ExitCode.usage, "positive"),
    (
        "input shape of another rank",
        lambda z, t: ["fingerprint", z.target, "--input-shape", "64"],
        ExitCode.input,
        "3 dimensions after the batch axis",
    ),
    (
        "init data without data",
        lambda z, t: ["fingerprint", z.target, "--init", "data"],
        ExitCode.usage,
        "--init data needs --data",
    ),
    ("missing data", lambda z, t: ["fingerprint", z.target, "--data", t / "no.npz"], ExitCode.usage, "does not exist"),
    (
        "bad label",
        lambda z, t: ["fingerprint", z.target, "--label", "most-likely"],
        ExitCode.usage,
        "Invalid value for '--label'",
    ),
    (
        "bad method",
        lambda z, t: ["fingerprint", z.target, "--method", "pgd"],
        ExitCode.usage,
        "Invalid value for '--method'",
    ),
    (
        "bad epsilon",
        lambda z, t: ["fingerprint", z.target, "--method", "fgsm", "--epsilon", "0"],
        ExitCode.usage,
        "--epsilon must be positive",
    ),
    (
        "unique baseline",
        lambda z, t: ["fingerprint", z.target, "--method", "fgsm", "--unique"],
        ExitCode.usage,
        "use it with --method ipguard",
    ),
    (
        "unique without data",
        lambda z, t: ["fingerprint", z.target, "--unique", "--n", 5],
        ExitCode.usage,
        "needs owner data",
    ),
    (
        "repeated class names",
        lambda z, t: ["fingerprint", z.target, "--class-names", "a,a"],
        ExitCode.usage,
        "distinct, non-empty names",
    ),
    (
        "class names count",
        lambda z, t: ["fingerprint", z.target, "--class-names", "a,b", "--n", 5],
        ExitCode.usage,
        "lists 2 names; target.onnx has 10 classes",
    ),
    (
        "bad format",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--format", "xml"],
        ExitCode.usage,
        "Invalid value for '--format'",
    ),
    (
        "bad threshold",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--threshold", "2"],
        ExitCode.input,
        "threshold must lie in",
    ),
    ("existing key", lambda z, t: ["keygen", "--out", z.private_key], ExitCode.trust, "already exists"),
    (
        "shape mismatch",
        lambda z, t: ["audit", _vector_model(t), "-f", z.bundle],
        ExitCode.input,
        "takes inputs of shape",
    ),
]


def _other_key(tmp_path: Path) -> Path:
    from ipguard_onnx.keys import write_keypair

    return write_keypair(tmp_path / "other.pem", tmp_path / "other.pub.pem").public_path


def _vector_model(tmp_path: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((5, 10), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], [weights],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "vector.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("name,arguments,code,message", ERROR_CASES, ids=[case[0] for case in ERROR_CASES])
def test_user_errors_give_one_line_and_their_exit_code(
    zoo: Zoo,
    tmp_path: Path,
    run_cli: RunCli,
    name: str,
    arguments: Callable[[Zoo, Path], list[object]],
    code: int,
    message: str,
) -> None:
    before = zoo.bundle.read_bytes()
    result = run_cli(*arguments(zoo, tmp_path))
    assert result.code == code, (result.code, result.stderr)
    import re

    assert re.search(message, one_line_error(result)), result.stderr
    assert zoo.bundle.read_bytes() == before  # nothing the user had is lost or changed


def test_version(run_cli: RunCli) -> None:
    from ipguard_onnx import __version__

    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"ipguard-onnx {__version__}"


def test_unknown_option_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("audit", "--no-such-option")
    assert result.code == ExitCode.usage and "Traceback" not in result.stderr
