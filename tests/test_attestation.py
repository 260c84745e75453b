"""Attestations (``audit --attest``): a signed in-toto statement in a DSSE envelope that ``verify-report``
checks, naming the digests the OpenSSF model-signing package computes for the same models."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import model_signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ipguard_onnx.attestation import PREDICATE_TYPE, STATEMENT_TYPE, model_root_digest
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.keys import write_keypair

from .conftest import RunCli, Zoo, one_line_error


def _statement(envelope_path: Path) -> dict[str, Any]:
    envelope = json.loads(envelope_path.read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json" and len(envelope["signatures"]) == 1
    statement: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return statement


def _model_signing_subject(model: Path, tmp_path: Path) -> str:
    """The subject digest model-signing's own signed statement names for ``model`` (its public signing API)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "ec.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    signature = tmp_path / f"{model.name}.sig"
    signer = model_signing.signing.Config()  # type: ignore[no-untyped-call]
    signer.use_elliptic_key_signer(private_key=pem).sign(model, signature)
    bundle = json.loads(signature.read_text())
    (subject,) = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))["subject"]
    return str(subject["digest"]["sha256"])


def test_an_attestation_verifies_and_names_the_suspects_and_the_evidence(
    zoo: Zoo, tmp_path: Path, run_cli: RunCli
) -> None:
    attestation = tmp_path / "audit.intoto.json"
    made = run_cli(
        "audit",
        zoo.pruned,
        zoo.independent,
        "-f",
        zoo.bundle,
        "--format",
        "json",
        "--attest",
        attestation,
        "--key",
        zoo.private_key,
    )
    assert made.code == ExitCode.match, made.stderr
    statement = _statement(attestation)
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
    digests = {subject["digest"]["sha256"] for subject in statement["subject"]}
    assert digests == {hashlib.sha256(path.read_bytes()).hexdigest() for path in (zoo.pruned, zoo.independent)}
    report = {row["suspect_sha256"]: row for row in json.loads(made.stdout)["results"]}
    for result in statement["predicate"]["results"]:
        row = report[result["suspect"]["digest"]["sha256"]]
        assert (result["verdict"], result["p_value"]) == (row["verdict"], row["p_value"])
        assert result["fingerprint"]["digest"]["sha256"] == row["fingerprint_sha256"]
    checked = run_cli("verify-report", attestation, "--trusted-key", zoo.public_key)
    assert checked.code == 0 and "pinned by --trusted-key" in checked.stdout, checked.stderr


def test_an_altered_or_foreign_attestation_is_refused(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    attestation = tmp_path / "audit.intoto.json"
    assert run_cli("audit", zoo.pruned, "-f", zoo.bundle, "--attest", attestation, "--key", zoo.private_key).code == 1
    envelope = json.loads(attestation.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["results"][0]["verdict"] = "no match"  # the verdict rewritten after signing
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps({**envelope, "payload": base64.b64encode(json.dumps(statement).encode()).decode()}))
    refused = run_cli("verify-report", altered)
    assert refused.code == ExitCode.trust and "altered" in one_line_error(refused)
    other = write_keypair(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    foreign = run_cli("verify-report", attestation, "--trusted-key", other.public_path)
    assert foreign.code == ExitCode.trust and "not by the trusted key" in one_line_error(foreign)
    remote = run_cli(
        "audit", "--endpoint", "http://127.0.0.1:9/predict", "-f", zoo.bundle, "--attest", tmp_path / "r.json"
    )
    assert remote.code == ExitCode.usage and "digest" in one_line_error(remote)


def test_the_root_digest_is_the_one_model_signing_computes(zoo: Zoo, tmp_path: Path) -> None:
    assert model_root_digest(zoo.pruned) == _model_signing_subject(zoo.pruned, tmp_path)
    folder = tmp_path / "model"
    (folder / "weights").mkdir(parents=True)
    shutil.copy(zoo.target, folder / "model.onnx")
    (folder / "weights" / "extra.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "README").write_text("a model folder, as model-signing signs it")
    assert model_root_digest(folder) == _model_signing_subject(folder, tmp_path)


def test_a_malformed_envelope_is_one_line_not_a_crash(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    """Shapes the tool never writes — signed by a real key or not — are refused with exit 4, never exit 5."""
    from ipguard_onnx.attestation import PAYLOAD_TYPE, pae
    from ipguard_onnx.keys import key_id, load_private_key

    key = load_private_key(zoo.private_key)

    def signed(statement: object) -> dict[str, object]:
        payload = json.dumps(statement).encode()
        signature = base64.b64encode(key.sign(pae(PAYLOAD_TYPE, payload))).decode()
        return {
            "payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": key_id(key.public_key()), "sig": signature}],
        }

    signer = {"key_id": key_id(key.public_key()), "public_key": "AAAA"}
    envelopes = [
        {**signed([1, 2]), "note": "a statement that is a list"},
        {**signed({"predicateType": PREDICATE_TYPE}), "signatures": {"keyid": "x"}},  # signatures not a list
        signed({"predicateType": PREDICATE_TYPE, "subject": ["a string"], "predicate": {"signer": signer}}),
        signed({"predicateType": PREDICATE_TYPE, "subject": [], "predicate": {"signer": "me", "results": []}}),
    ]
    for index, envelope in enumerate(envelopes):
        path = tmp_path / f"bad-{index}.json"
        path.write_text(json.dumps(envelope))
        refused = run_cli("verify-report", path)
        assert refused.code == ExitCode.trust, (index, refused.stderr)
        assert "not a well-formed" in one_line_error(refused)
