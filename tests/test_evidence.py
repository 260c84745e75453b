"""Evidence that stands up: p-values, calibration, provenance, signed reports, key permissions."""

from __future__ import annotations

import json
import math
import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from ipguard_onnx import Bundle, audit, load_bundle
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.keys import write_keypair
from ipguard_onnx.stats import binomial_tail, plain_words, threshold_for

from .conftest import RunCli, Zoo


def _exact_tail(m: int, n: int, q: Fraction) -> float:
    return float(sum(math.comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(m, n + 1)))


@pytest.mark.parametrize(
    ("m", "n", "q"),
    [(0, 10, "1/2"), (7, 10, "1/2"), (10, 10, "9/10"), (60, 100, "1/3"), (95, 100, "7/10"), (1, 1, "1/10")],
)
def test_binomial_tail_matches_exact_arithmetic(m: int, n: int, q: str) -> None:
    assert binomial_tail(m, n, float(Fraction(q))) == pytest.approx(_exact_tail(m, n, Fraction(q)), rel=1e-9)


def test_threshold_is_the_smallest_rate_reaching_the_false_accusation_rate() -> None:
    threshold = threshold_for(100, 0.5, 1e-6)
    assert threshold is not None
    m = round(threshold * 100)
    assert binomial_tail(m, 100, 0.5) <= 1e-6 < binomial_tail(m - 1, 100, 0.5)
    assert threshold_for(100, 0.95, 1e-9) is None  # 100 points cannot beat 0.95^100 ≈ 6e-3
    assert "10^5" in plain_words(3e-6) and "weak evidence" in plain_words(0.3)


def audit_part_agreement(bundle_path: object, model: Path, start: int, stop: int) -> int:
    """Points ``start:stop`` the model labels as the bundle does, counted with onnxruntime directly."""
    from ipguard_onnx import OnnxClassifier

    assert isinstance(bundle_path, Bundle)
    said = OnnxClassifier(model).predict(bundle_path.points[start:stop])
    return int((said == bundle_path.labels[start:stop]).sum())


def test_audit_reports_a_p_value_and_provenance(zoo: Zoo) -> None:
    bundle = load_bundle(zoo.bundle)
    copy = audit(bundle, zoo.fine_tuned)
    other = audit(bundle, zoo.independent)
    tails = []
    for part, result in zip(bundle.parts, copy.parts, strict=True):  # each part against its own signed q0
        agrees = audit_part_agreement(bundle, zoo.fine_tuned, part.start, part.stop)
        assert result.matched == agrees and result.null_agreement == part.null_agreement
        tails.append(binomial_tail(agrees, part.points, part.null_agreement))
    assert copy.p_value == pytest.approx(min(1.0, len(tails) * min(tails)))  # Bonferroni over the parts
    assert copy.p_value < other.p_value
    assert all(part.null_agreement_source.startswith("self-calibrated on 8") for part in bundle.parts)
    assert json.loads(bundle.metadata["parts"])[0]["kind"] == "boundary"  # signed at fingerprint time
    assert copy.audited_at.endswith("Z") and copy.parameters["threshold"] == repr(bundle.threshold)
    assert copy.suspect_sha256 and copy.fingerprint_sha256 == bundle.sha256


def test_calibrate_sets_null_agreement_and_threshold_and_re_signs(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    bundle_path = tmp_path / "fp.safetensors"
    shutil.copy(zoo.bundle, bundle_path)
    negatives = [zoo.independent, zoo.other_architecture]
    rates = [audit(zoo.bundle, model).matching_rate for model in negatives]
    done = run_cli(
        "calibrate",
        bundle_path,
        "--negative",
        zoo.independent,
        "--negative",
        zoo.other_architecture,
        "--key",
        zoo.private_key,
        "--false-accusation-rate",
        "1e-3",
        "--format",
        "json",
    )
    assert done.code == 0, done.stderr
    report = json.loads(done.stdout)["calibration"]
    calibrated = load_bundle(bundle_path)
    part_rates = [[part.matching_rate for part in audit(zoo.bundle, model).parts] for model in negatives]
    for index, part in enumerate(calibrated.parts):  # every part refined from its own highest match
        assert part.null_agreement == pytest.approx(min(0.999, max(rates[index] for rates in part_rates) + 0.05))
    assert calibrated.false_accusation_rate == 1e-3 and max(rates) < 1.0
    assert calibrated.threshold == report["threshold"]
    m = round(calibrated.threshold * len(calibrated.points))
    assert binomial_tail(m, len(calibrated.points), calibrated.null_agreement) <= 1e-3
    assert calibrated.signer_key_id == load_bundle(zoo.bundle).signer_key_id
    assert json.loads(calibrated.metadata["calibration"])["negatives"][0]["sha256"]
    shown = run_cli("audit", zoo.target, "-f", bundle_path, "--format", "json")
    row = json.loads(shown.stdout)["results"][0]
    assert shown.code == ExitCode.match and row["null_agreement_source"].startswith("calibrated on 2")


def test_signed_report_verifies_and_any_change_is_caught(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    report = tmp_path / "report.json"
    made = run_cli(
        "audit",
        zoo.independent,
        "-f",
        zoo.bundle,
        "--format",
        "json",
        "--report",
        report,
        "--sign-report",
        zoo.private_key,
    )
    assert made.code == ExitCode.no_match, made.stderr
    document = json.loads(report.read_text())
    assert document["signature"]["algorithm"] == "Ed25519" and document["created_at"].endswith("Z")
    row = document["results"][0]
    assert {"suspect_sha256", "fingerprint_sha256", "signer_key_id", "providers", "parameters", "p_value"} <= set(row)
    ok = run_cli("verify-report", report, "--trusted-key", zoo.public_key)
    assert ok.code == 0 and "valid" in ok.stdout

    row["matching_rate"] = 0.99  # a forged result
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    assert run_cli("verify-report", forged).code == ExitCode.trust

    other = write_keypair(tmp_path / "other.pem", tmp_path / "other.pub.pem").public_path
    assert run_cli("verify-report", report, "--trusted-key", other).code == ExitCode.trust
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps({k: v for k, v in json.loads(report.read_text()).items() if k != "signature"}))
    assert run_cli("verify-report", unsigned).code == ExitCode.trust
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json {")
    assert run_cli("verify-report", garbage).code == ExitCode.input
    text_format = run_cli("audit", zoo.independent, "-f", zoo.bundle, "--sign-report", zoo.private_key)
    assert text_format.code == ExitCode.usage and "add --format json" in text_format.stderr


def test_group_readable_private_key_is_refused(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    key = tmp_path / "shared.pem"
    shutil.copy(zoo.private_key, key)
    key.chmod(0o644)
    refused = run_cli("fingerprint", zoo.target, "--key", key, "--n", 3, "-o", tmp_path / "fp.safetensors")
    assert refused.code == ExitCode.trust and "chmod 600" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "fp.safetensors").exists()
