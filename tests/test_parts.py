"""Evidence parts (issue 24): the default composes typed parts from what the owner gives, calibrates each
part's null agreement on held-out owner-made references, signs them, and the verdict is the evidence rule."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from ipguard_onnx import (
    BundleError,
    BundlePart,
    PartKind,
    SignatureError,
    UsageError,
    audit,
    fingerprint,
    load_bundle,
)
from ipguard_onnx.bundle import save_bundle
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key, write_keypair
from ipguard_onnx.models import OnnxClassifier
from ipguard_onnx.parts import MIN_PART_POINTS, PART_KINDS, MadePart, Workshop, register
from ipguard_onnx.sequential import SequentialSettings
from ipguard_onnx.stats import (
    DEFAULT_NULL_AGREEMENT,
    best_p_value,
    binomial_tail,
    binomial_upper_bound,
    null_agreement_bound,
)

from .conftest import RunCli, Zoo


def test_the_default_composes_its_parts_from_labelled_data(zoo: Zoo) -> None:
    """Owner data with its labels: boundary points, the target's mistakes (when it makes enough), and points
    owner-made students share — each a signed part with its own q0, measured on held-out references."""
    bundle = load_bundle(zoo.bundle)
    kinds = [part.kind for part in bundle.parts]
    assert kinds[0] == "boundary" and [part.kind for part in zoo.made.parts] == kinds
    mistakes = int((OnnxClassifier(zoo.target).predict(zoo.x) != zoo.y).sum())
    fate = {kind: [why for why in zoo.made.parts_skipped if why.startswith(f"{kind}: ")] for kind in PART_KINDS}
    for kind in ("mistakes", "students"):  # each built, or left out with the reason said
        assert (kind in kinds) != bool(fate[kind]), (kind, zoo.made.parts_skipped)
    if mistakes < MIN_PART_POINTS:
        assert fate["mistakes"] and "fewer than" in fate["mistakes"][0]
    for part in bundle.parts[1:]:  # a composed part stays only if it could reach its share of α
        assert best_p_value(part.points, part.null_agreement) <= bundle.false_accusation_rate / len(bundle.parts)
    for why in fate["mistakes"] + fate["students"]:
        assert "fewer than" in why or "left out" in why
    signed = json.loads(bundle.metadata["parts"])
    assert [part["kind"] for part in signed] == kinds and signed[-1]["stop"] == len(bundle.points)
    for part in bundle.parts:
        assert part.null_agreement_source.startswith("self-calibrated on 8 owner-made references held out")
        assert 0 < part.null_agreement < 1 and part.how
    references = json.loads(bundle.record.calibration)["self_calibration"]
    assert len(references) == 8 and all("no panel model saw" in r["how"] for r in references)
    assert bundle.false_accusation_rate == 1e-6


def test_without_data_the_evidence_is_uncalibrated_and_cannot_accuse(zoo: Zoo, tmp_path: Path) -> None:
    made = fingerprint(
        zoo.target,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=FingerprintSettings(n=30),
    )
    assert [part.kind for part in made.parts] == ["boundary"] and "no owner data" in made.uncalibrated
    assert any(skipped.startswith("mistakes: needs labelled owner data") for skipped in made.parts_skipped)
    bundle = load_bundle(made.bundle_path)
    assert bundle.parts[0].null_agreement == DEFAULT_NULL_AGREEMENT
    result = audit(bundle, zoo.target)  # every point matches, yet 0.99^30 is no evidence against an accusation
    assert result.matching_rate == 1.0 and result.verdict == "inconclusive"
    assert result.p_value == pytest.approx(binomial_tail(30, 30, DEFAULT_NULL_AGREEMENT))
    assert "cannot accuse" in result.why and "calibrate" in result.why
    assert audit(bundle, zoo.target, threshold=0.85).verdict == "match"  # the paper's rule, by name


def test_the_evidence_rule_is_the_combined_p_value_against_alpha(zoo: Zoo) -> None:
    bundle = load_bundle(zoo.bundle)
    for model in (zoo.target, zoo.fine_tuned, zoo.independent):
        result = audit(bundle, model)
        tails = [binomial_tail(part.matched, part.answered, part.null_agreement) for part in result.parts]
        assert result.p_value == pytest.approx(min(1.0, len(tails) * min(tails)))
        assert (result.verdict == "match") == (result.p_value <= bundle.false_accusation_rate)
    strict = audit(bundle, zoo.target, false_accusation_rate=1e-300)  # α from the user wins: here out of reach
    assert strict.verdict == "inconclusive" and strict.false_accusation_rate == 1e-300 and "cannot accuse" in strict.why


def test_a_sequential_audit_stops_on_the_same_rule(zoo: Zoo) -> None:
    bundle = load_bundle(zoo.bundle)
    copy = audit(bundle, zoo.target, sequential=SequentialSettings())
    assert copy.sequential is not None and copy.sequential.stopped_because == "match settled"
    assert copy.verdict == "match" and copy.p_value <= bundle.false_accusation_rate  # the anytime-valid p
    assert copy.points_queried < len(bundle.points)
    other = audit(bundle, zoo.independent, sequential=SequentialSettings())
    assert other.verdict == "no match" and other.points_queried < len(bundle.points)


def test_the_upper_bound_on_q0_widens_with_fewer_references() -> None:
    rates = [0.20, 0.30, 0.25, 0.40, 0.10, 0.20, 0.30, 0.35]
    many = null_agreement_bound(rates * 3, 10_000)  # the same rates seen three times as often
    few = null_agreement_bound(rates, 10_000)
    assert few > many > max(rates)  # an upper bound, not the mean; fewer references, wider
    small = null_agreement_bound(rates, 20)  # few points: the highest rate's own bound dominates
    assert small == pytest.approx(binomial_upper_bound(round(max(rates) * 20), 20), abs=1e-6) and small > few
    assert null_agreement_bound([0.2], 100) == 0.999  # one reference has no spread to bound
    upper = binomial_upper_bound(0, 100)
    assert binomial_tail(1, 100, upper) == pytest.approx(0.95, abs=1e-6)  # P(X ≤ 0) = 5 % at the bound
    assert best_p_value(30, 0.99) == pytest.approx(0.99**30)


def test_parts_are_signed_and_checked(zoo: Zoo, tmp_path: Path) -> None:
    from safetensors.numpy import load, save

    data = zoo.bundle.read_bytes()
    size = int.from_bytes(data[:8], "little")
    metadata = json.loads(data[8 : 8 + size])["__metadata__"]
    parts = json.loads(metadata["parts"])
    parts[0]["null_agreement"] = 0.999  # a weaker q0: what a forger would not want, yet unsigned
    forged = tmp_path / "forged.safetensors"
    forged.write_bytes(save(load(data), metadata={**metadata, "parts": json.dumps(parts)}))
    with pytest.raises(SignatureError, match="altered after signing"):
        load_bundle(forged)
    bundle = load_bundle(zoo.bundle)
    key = load_private_key(zoo.private_key)
    gap = (BundlePart("boundary", 0, 10, 0.5), BundlePart("mistakes", 11, len(bundle.points), 0.5))
    wrong = tmp_path / "gap.safetensors"  # signed by the owner, yet the parts leave a point out
    save_bundle(wrong, bundle.tensors(), replace(bundle.record, parts=gap), key)
    with pytest.raises(BundleError, match="expected to start at 10"):
        load_bundle(wrong)


def test_a_bundle_before_parts_gets_them_derived(zoo: Zoo, tmp_path: Path) -> None:
    bundle = load_bundle(zoo.bundle)
    old = tmp_path / "old.safetensors"
    assert bundle.record.search is not None
    search = replace(bundle.record.search, mistakes=0)
    record = replace(bundle.record, parts=(), null_agreement=0.4, search=search)  # as bundles before issue 24
    save_bundle(old, bundle.tensors(), record, load_private_key(zoo.private_key))
    (derived,) = load_bundle(old).parts
    assert (derived.kind, derived.start, derived.stop, derived.null_agreement) == (
        "boundary",
        0,
        len(bundle.points),
        0.4,
    )
    result = audit(old, zoo.target)
    assert result.verdict == "match" and result.p_value == pytest.approx(0.4 ** len(bundle.points))


@register
class CornersPart(PartKind):
    """A kind only this test knows: the domain's two corners, labelled as the target labels them."""

    name = "test-corners"
    summary = "the domain's corners (a test of the family, not evidence)"
    made: ClassVar[int] = 0

    def why_not(self, shop: Workshop) -> str | None:
        return None

    def make(self, shop: Workshop, wanted: int) -> MadePart:
        points = np.stack([shop.low, shop.high]).astype(np.float32)
        CornersPart.made += 1
        return MadePart(self.name, points, shop.audit_labels(points), "two corners", 0.5, "a guess, for the test")


def test_a_new_part_kind_is_a_new_class(zoo: Zoo, tmp_path: Path) -> None:
    assert list(PART_KINDS)[:3] == ["boundary", "mistakes", "students"]
    settings = FingerprintSettings(n=12, parts=("boundary", "test-corners"))
    made = fingerprint(
        zoo.target, tmp_path / "fp.safetensors", signing_key=load_private_key(zoo.private_key), settings=settings
    )
    assert CornersPart.made == 1 and [part.kind for part in made.parts] == ["boundary", "test-corners"]
    result = audit(made.bundle_path, zoo.target)
    assert [(part.kind, part.points) for part in result.parts] == [("boundary", 12), ("test-corners", 2)]
    assert result.parts[1].p_value == pytest.approx(0.25) and math.isclose(result.parts[1].null_agreement, 0.5)


def test_bad_part_options_are_one_line_usage_errors(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    for option, value in (
        ("--parts", "boundary,nope"),
        ("--parts", "boundary,boundary"),
        ("--false-accusation-rate", "0"),
        ("--calibration-references", "-1"),
    ):
        result = run_cli("fingerprint", zoo.target, "--key", zoo.private_key, "-o", tmp_path / "f.fp", option, value)
        assert result.code == ExitCode.usage and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert option in result.stderr
    needs_data = run_cli(
        "fingerprint", zoo.target, "--key", zoo.private_key, "-o", tmp_path / "f.fp", "--parts", "boundary,mistakes"
    )
    assert needs_data.code == ExitCode.usage and "--parts mistakes: needs labelled owner data" in needs_data.stderr
    with pytest.raises(UsageError, match="--false-accusation-rate"):
        audit(zoo.bundle, zoo.target, false_accusation_rate=1.0)
    audited = run_cli("audit", zoo.target, "-f", zoo.bundle, "--false-accusation-rate", "nan")
    assert audited.code == ExitCode.usage and len(audited.stderr.strip().splitlines()) == 1, audited.stderr
    assert "--false-accusation-rate" in audited.stderr and "Traceback" not in audited.stderr


def test_a_composed_part_that_could_never_reach_alpha_is_left_out() -> None:
    from ipguard_onnx.parts.compose import without_weak_parts

    def part(kind: str, points: int, null: float) -> tuple[MadePart, str]:
        return MadePart(kind, np.zeros((points, 2), np.float32), np.zeros(points, np.int64), "", null, ""), "why"

    strong, weak = part("students", 50, 0.5), part("mistakes", 12, 0.97)  # 0.97^12 ≈ 0.69: never evidence
    kept, dropped = without_weak_parts([part("boundary", 100, 0.99), weak, strong], 1e-6, asked=False)
    assert [made.kind for made, _ in kept] == ["boundary", "students"]  # boundary points always stay
    assert len(dropped) == 1 and dropped[0].startswith("mistakes: built, then left out") and "12 points" in dropped[0]
    asked, none = without_weak_parts([part("boundary", 100, 0.5), weak], 1e-6, asked=True)
    assert len(asked) == 2 and none == []  # --parts builds what it names


def test_a_forests_tied_votes_are_dropped_not_an_unstable_label_error(tmp_path: Path) -> None:
    """A 50-tree forest on breast cancer, fingerprinted by default with labelled data: some of the students
    part's synthetic queries get a 25/25 vote, whose label another batch (trees summed in another order)
    breaks the other way. Those points are dropped; every point kept reproduces its label in any batch."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.min(axis=0)) / np.maximum(x.max(axis=0) - x.min(axis=0), 1e-9)).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))[: len(x) // 2]
    forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(x[order], y[order])
    (tmp_path / "forest.onnx").write_bytes(to_onnx(forest, x[:1], target_opset=17).SerializeToString())
    np.savez(tmp_path / "owner.npz", x=x[order], y=y[order])
    key = load_private_key(write_keypair(tmp_path / "k.pem", tmp_path / "k.pub.pem").private_path)
    made = fingerprint(
        tmp_path / "forest.onnx",
        tmp_path / "forest.fp",
        signing_key=key,
        settings=FingerprintSettings(seed=0),
        data_path=tmp_path / "owner.npz",
    )
    assert made.dropped_disagreement >= 1  # the tied votes, dropped
    bundle = load_bundle(tmp_path / "forest.fp")
    target = OnnxClassifier(tmp_path / "forest.onnx")
    shuffled = np.random.default_rng(1).permutation(len(bundle.points))
    assert np.array_equal(target.predict(bundle.points[shuffled]), bundle.labels[shuffled])
    assert audit(bundle, tmp_path / "forest.onnx", threshold=0.85).matching_rate == 1.0
