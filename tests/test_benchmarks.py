"""The benchmark zoo builds for real (slow: run with `make slow`)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wine_zoo_has_every_family_and_evaluates(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import zoo as zoo_module

    from ipguard_onnx import fingerprint
    from ipguard_onnx.evaluate import aruc, evaluate
    from ipguard_onnx.fingerprint import FingerprintSettings
    from ipguard_onnx.keys import load_private_key, write_keypair

    zoo = zoo_module.build("wine", 0, tmp_path)
    families = Counter(family for _, _, family in zoo.suspects)
    assert families["same architecture"] == 10 and families["other architecture"] == 5
    assert families["random forest"] == 5 and families["distillation"] == 1
    for family in ("FTLL", "FTAL", "RTLL", "RTAL", "int8-dynamic", "int8-static", "float16", "weight pruning"):
        assert families[family] >= 1, family
    extracted = [f for _, group, f in zoo.suspects if group == "hard-positive" and "extraction" in f]
    assert len(extracted) >= 3, families  # students within 3 points of the target's accuracy were shipped
    key = load_private_key(write_keypair(tmp_path / "k.pem", tmp_path / "k.pub.pem").private_path)
    made = fingerprint(zoo.target, tmp_path / "fp.safetensors", signing_key=key, settings=FingerprintSettings(k=1.0))
    evaluation = evaluate(made.bundle_path, [(path, group) for path, group, _ in zoo.suspects])
    rates = {row.suspect: row.matching_rate for row in evaluation.rows}
    assert rates["float16.onnx"] == 1.0
    positives = [row.matching_rate for row in evaluation.rows if row.group == "positive"]
    negatives = [row.matching_rate for row in evaluation.rows if row.group == "negative"]
    assert evaluation.aruc == aruc(positives, negatives) and positives and negatives
