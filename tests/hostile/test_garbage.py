"""No verdict from garbage: NaN answers, NaN options and no answers at all are never a match or a no-match."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ipguard_onnx import audit, load_bundle
from ipguard_onnx.exit_codes import ExitCode

from ..conftest import RunCli, Zoo, one_line_error
from .artifacts import nan_model
from .server import Hostile, HostileServer


def test_an_onnx_suspect_answering_nan_is_unanswered(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    result = run_cli("audit", nan_model(tmp_path / "nan.onnx"), "-f", zoo.bundle, "--format", "json")
    assert result.code == ExitCode.input, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert row["verdict"] == "inconclusive" and row["points_skipped"] == row["points_queried"]
    assert any("non-finite" in reason for reason in row["skipped_reasons"])


def test_a_callable_answering_nan_on_some_points_loses_only_those(zoo: Zoo) -> None:
    bundle = load_bundle(zoo.bundle)
    truth = np.eye(bundle.num_classes, dtype=np.float32)[bundle.labels]

    def half_nan(points: np.ndarray) -> np.ndarray:
        rows = truth[: len(points)].copy()
        rows[::2] = np.nan
        return rows

    result = audit(bundle, half_nan)
    assert result.points_skipped == (len(bundle.points) + 1) // 2
    assert result.verdict == "inconclusive"  # half answered < the 80 % an audit needs
    assert result.points_matched == len(bundle.points) // 2  # the finite rows still count, as what they are


def test_an_api_answering_nan_scores_gives_no_verdict(run_cli: RunCli, zoo: Zoo) -> None:
    points = len(load_bundle(zoo.bundle).points)
    body = b'{"predictions": [' + b",".join([b"[NaN, Infinity, 0.5]"] * points) + b"]}"
    with HostileServer(Hostile(body=body)) as server:
        result = run_cli(
            "audit",
            "--endpoint",
            f"{server.base}/predict",
            "-f",
            zoo.bundle,
            "--no-sequential",
            "--batch-size",
            points,
            "--format",
            "json",
        )
    assert result.code == ExitCode.input, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert row["verdict"] == "inconclusive" and any("non-finite" in r for r in row["skipped_reasons"])


@pytest.mark.parametrize("value", ["nan", "0", "-1", "1.5", "inf"])
@pytest.mark.parametrize("command", ["audit", "scan"])
def test_min_answered_must_be_a_fraction(run_cli: RunCli, zoo: Zoo, tmp_path: Path, command: str, value: str) -> None:
    extra = ["-o", tmp_path / "scan.jsonl"] if command == "scan" else []
    result = run_cli(command, zoo.target, "-f", zoo.bundle, "--min-answered", value, *extra)
    assert result.code == ExitCode.usage
    assert "--min-answered must be a fraction" in one_line_error(result)
    assert not (tmp_path / "scan.jsonl").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--input-scale", "nan", "--input-scale"),
        ("--input-scale", "0", "--input-scale"),
        ("--mean", "nan", "--mean"),
        ("--std", "inf", "--std"),
        ("--std", "0", "--std"),
        ("--input-scale", "1e39", "finite (in float32)"),
        ("--threshold", "nan", "--threshold"),
        ("--model-timeout", "nan", "--model-timeout"),
        ("--model-timeout", "0", "--model-timeout"),
        ("--deadline", "inf", "--deadline"),
        ("--timeout", "nan", "--timeout"),
    ],
)
def test_every_numeric_option_is_checked_before_use(
    run_cli: RunCli, zoo: Zoo, option: str, value: str, message: str
) -> None:
    """`--input-scale nan` once turned a 99 % copy into NO MATCH (exit 0)."""
    arguments: list[object] = ["audit", zoo.target, "-f", zoo.bundle, option, value]
    if option in ("--deadline", "--timeout"):
        arguments = ["audit", "--endpoint", "http://127.0.0.1:9/predict", "-f", zoo.bundle, option, value]
    result = run_cli(*arguments)
    assert result.code == ExitCode.usage, result.stderr
    assert message in one_line_error(result)


def test_points_that_preprocessing_sends_to_infinity_are_refused(run_cli: RunCli, zoo: Zoo) -> None:
    """Each value finite, their combination not: (x · 1e38) / 0.001 overflows float32."""
    result = run_cli("audit", zoo.target, "-f", zoo.bundle, "--input-scale", "1e38", "--std", "0.001")
    assert result.code == ExitCode.usage, result.stderr
    assert "NaN or infinity" in one_line_error(result)


def test_fingerprint_refuses_a_nan_recording_before_any_work(run_cli: RunCli, zoo: Zoo, tmp_path: Path) -> None:
    result = run_cli("fingerprint", zoo.target, "--input-scale", "nan", "-o", tmp_path / "fp.safetensors")
    assert result.code == ExitCode.usage
    assert "--input-scale" in one_line_error(result)
    assert not (tmp_path / "fp.safetensors").exists()


@pytest.mark.parametrize("min_answered", ["1e-9", "0.8"])
def test_an_api_that_never_answers_is_inconclusive_for_any_min_answered(
    run_cli: RunCli, zoo: Zoo, min_answered: str
) -> None:
    with HostileServer(Hostile(status=500, body={"error": "down"})) as server:
        result = run_cli(
            "audit",
            "--endpoint",
            f"{server.base}/predict",
            "-f",
            zoo.bundle,
            "--retries",
            0,
            "--min-answered",
            min_answered,
            "--format",
            "json",
        )
    assert result.code == ExitCode.input, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert row["verdict"] == "inconclusive" and row["points_skipped"] == row["points_queried"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--k", "nan"),
        ("--k", "inf"),
        ("--epsilon", "nan"),
        ("--learning-rate", "nan"),
        ("--threshold", "nan"),
        ("--domain", "nan,1"),
        ("--domain", "-inf,inf"),
        ("--mistakes", "nan"),
    ],
)
def test_fingerprint_options_must_be_finite(run_cli: RunCli, zoo: Zoo, tmp_path: Path, option: str, value: str) -> None:
    result = run_cli("fingerprint", zoo.target, option, value, "-o", tmp_path / "fp.safetensors")
    assert result.code == ExitCode.usage, result.stderr
    assert option in one_line_error(result)
    assert not (tmp_path / "fp.safetensors").exists()


@pytest.mark.parametrize("change", ["one class", "infinite domain", "nan preprocessing", "nan threshold"])
def test_a_signed_setting_out_of_range_is_a_malformed_bundle(
    run_cli: RunCli, zoo: Zoo, tmp_path: Path, change: str
) -> None:
    """Signed by the owner's own key, yet no audit may rest on it: validated like an option."""
    import dataclasses

    from ipguard_onnx.bundle import save_bundle
    from ipguard_onnx.keys import load_private_key

    bundle = load_bundle(zoo.bundle)
    tensors = dict(bundle.tensors())
    record = bundle.record
    if change == "one class":
        tensors["labels"] = np.zeros_like(bundle.labels)
        record = dataclasses.replace(record, num_classes=1)
    elif change == "infinite domain":
        tensors["domain_high"] = np.full_like(bundle.domain_high, np.inf)
    path = tmp_path / "odd.safetensors"
    save_bundle(path, tensors, record, load_private_key(zoo.private_key))
    if change == "nan preprocessing":
        _resign_with(path, "preprocessing", '{"mean": [], "scale": NaN, "std": []}', zoo)
    elif change == "nan threshold":
        _resign_with(path, "threshold", "nan", zoo)
    assert run_cli("inspect", zoo.bundle).code == 0
    result = run_cli("audit", zoo.target, "-f", path)
    assert result.code == ExitCode.input, result.stderr
    assert "odd.safetensors" in one_line_error(result)


def _resign_with(path: Path, key: str, value: str, zoo: Zoo) -> None:
    """Rewrite one metadata field and sign again with the owner's key (what a buggy signer could do)."""
    import base64

    from safetensors.numpy import load, save

    from ipguard_onnx.bundle import SIGNATURE_FIELD, canonical_digest
    from ipguard_onnx.keys import load_private_key

    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    metadata = dict(json.loads(data[8 : 8 + size])["__metadata__"])
    tensors = load(data)
    metadata[key] = value
    metadata.pop(SIGNATURE_FIELD)
    signature = load_private_key(zoo.private_key).sign(canonical_digest(tensors, metadata))
    metadata[SIGNATURE_FIELD] = base64.b64encode(signature).decode()
    path.write_bytes(save(tensors, metadata=metadata))


def test_a_handful_of_answers_never_gives_a_verdict(run_cli: RunCli, zoo: Zoo) -> None:
    """Five answers of a real copy, with --min-answered lowered to 1 %: still no accusation on five points."""
    from ..http_server import PredictionServer

    with PredictionServer(zoo.target) as server:
        result = run_cli(
            "audit",
            "--endpoint",
            f"{server.base}/predict",
            "-f",
            zoo.bundle,
            "--no-sequential",
            "--max-queries",
            5,
            "--min-answered",
            "0.01",
            "--format",
            "json",
        )
    assert result.code == ExitCode.input, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert row["verdict"] == "inconclusive" and row["points_matched"] == 5
