"""--unique: conferrable search with owner-made copies and references, recorded in the signed bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ipguard_onnx import UsageError, audit, fingerprint, load_bundle
from ipguard_onnx.fingerprint_settings import UNIQUE_AUTO_MAX_FEATURES, FingerprintSettings, uses_unique
from ipguard_onnx.keys import load_private_key
from ipguard_onnx.search import margin_scale, screen
from ipguard_onnx.search.panel import PanelMember

from ..conftest import RunCli, Zoo


def test_screen_prefers_points_copies_share_and_references_do_not() -> None:
    points = np.arange(6, dtype=np.float32).reshape(6, 1)
    labels = np.zeros(6, dtype=np.int64)
    # point i: positives agree on 0..3; references disagree on 2..5 -> only 2 and 3 are conferrable
    positive = PanelMember("p", "positive", "", "", lambda b: np.where(b[:, 0] < 4, 0, 1).astype(np.int64))
    reference = PanelMember("r", "reference", "", "", lambda b: np.where(b[:, 0] >= 2, 1, 0).astype(np.int64))
    chosen, disagreement, agreement = screen(points, labels, [positive, reference], 2)
    assert sorted(chosen.tolist()) == [2, 3]
    assert disagreement == 1.0 and agreement == 1.0


def test_margin_scale_is_the_median_top_two_gap() -> None:
    scores = np.array([[5.0, 1.0, 0.0], [0.0, 2.0, 1.5], [3.0, 3.0, -1.0]], dtype=np.float32)
    gaps = [5.0 - 1.0, 2.0 - 1.5, 0.0]
    assert margin_scale(scores) == pytest.approx(float(np.median(gaps)))


@pytest.fixture(scope="module")
def owner_data(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("owner") / "owner.npy"
    np.save(path, zoo.x[:600])
    return path


def test_unique_mode_with_owner_data(zoo: Zoo, owner_data: Path, tmp_path: Path) -> None:
    settings = FingerprintSettings(n=20, unique=True, references=2, parts=("boundary",), calibration_references=0)
    made = fingerprint(
        zoo.target,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=settings,
        data_path=owner_data,
    )
    bundle = load_bundle(made.bundle_path)
    record = json.loads(bundle.metadata["unique"])
    roles = [member["role"] for member in record["panel"]]
    assert roles.count("reference") == 2 and roles.count("positive") >= 8
    assert record["search"].startswith("conferrable") and record["searched"] >= 2 * 20
    assert record["starts"] == "data" and bundle.metadata["variant"] == "IPGuard-unique"
    assert all(member["digest"] and "agreement_with_target" in member for member in record["panel"])
    assert made.points == 20 and made.unique_seconds > 0
    assert audit(bundle, zoo.target).matching_rate == 1.0
    # the chosen points are labelled j by the owner-made copies far more often than by the references
    reference_agreement = 1.0 - record["reference_disagreement"]
    assert record["positive_agreement"] >= reference_agreement + 0.5, record


def test_extraction_queries_stay_in_the_datas_range() -> None:
    from ipguard_onnx.search.panel import extraction_queries

    x = np.random.default_rng(0).random((50, 3, 4)).astype(np.float32)
    queries = extraction_queries(x, 400, seed=1)
    assert queries.shape == (400, 3, 4) and np.array_equal(queries[:50], x)  # the data first, then synthetic
    assert (queries >= x.min(axis=0)).all() and (queries <= x.max(axis=0)).all()
    flat, rows = queries[50:].reshape(350, -1), x.reshape(50, -1)
    copies = (np.abs(flat[:, None, :] - rows[None, :, :]).max(axis=2) == 0).any(axis=1)
    assert copies.mean() < 0.1  # new points, not the data again
    few = extraction_queries(x, 20, seed=1)  # a budget the data covers: that many distinct rows of it
    assert few.shape == (20, 3, 4) and len({row.tobytes() for row in few}) == 20
    assert all(any(np.array_equal(row, data) for data in x) for row in few)


def test_extracted_students_join_the_positives(zoo: Zoo, owner_data: Path, tmp_path: Path) -> None:
    settings = FingerprintSettings(
        n=10, unique=True, references=2, students=2, parts=("boundary",), calibration_references=0
    )
    made = fingerprint(
        zoo.target,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=settings,
        data_path=owner_data,
    )
    record = json.loads(load_bundle(made.bundle_path).metadata["unique"])
    students = [member for member in record["panel"] if member["name"].startswith("student-")]
    assert len(students) == 2 and all(member["role"] == "positive" for member in students)
    assert all("900 synthetic queries labelled by the target" in member["how"] for member in students)
    assert all(member["agreement_with_target"] >= 0.9 for member in students)  # they learned the target
    assert audit(load_bundle(made.bundle_path), zoo.target).matching_rate == 1.0
    with pytest.raises(UsageError, match="use it with --unique"):
        FingerprintSettings(unique=False, students=2)


def test_unique_mode_is_reproducible_with_a_seed(zoo: Zoo, owner_data: Path, tmp_path: Path) -> None:
    settings = FingerprintSettings(
        n=10, unique=True, references=2, seed=3, parts=("boundary",), calibration_references=0
    )
    key = load_private_key(zoo.private_key)
    first = fingerprint(
        zoo.target, tmp_path / "a.safetensors", signing_key=key, settings=settings, data_path=owner_data
    )
    second = fingerprint(
        zoo.target, tmp_path / "b.safetensors", signing_key=key, settings=settings, data_path=owner_data
    )
    a, b = load_bundle(first.bundle_path), load_bundle(second.bundle_path)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.labels, b.labels)
    digests = [[m["digest"] for m in json.loads(x.metadata["unique"])["panel"]] for x in (a, b)]
    assert digests[0] == digests[1]


@pytest.mark.parametrize(
    ("unique", "method", "has_data", "sample_shape", "expected"),
    [
        (None, "ipguard", True, (1, 8, 8), True),  # owner data, a small input: --unique by default
        (None, "ipguard", True, (64, 64), True),  # exactly UNIQUE_AUTO_MAX_FEATURES values
        (None, "ipguard", True, (3, 48, 48), False),  # larger inputs: the paper's search
        (None, "ipguard", False, (1, 8, 8), False),  # no data to train the panel on
        (None, "fgsm", True, (1, 8, 8), False),  # a baseline is never screened
        (False, "ipguard", True, (1, 8, 8), False),  # --plain opts out
        (True, "ipguard", False, (3, 48, 48), True),  # --unique asked for
    ],
)
def test_when_unique_is_the_default(
    unique: bool | None, method: str, has_data: bool, sample_shape: tuple[int, ...], expected: bool
) -> None:
    assert uses_unique(FingerprintSettings(unique=unique, method=method), has_data, sample_shape) is expected
    assert int(np.prod((64, 64))) == UNIQUE_AUTO_MAX_FEATURES


def test_plain_opts_out_of_unique_on_the_command_line(
    zoo: Zoo, owner_data: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    common = ["fingerprint", zoo.target, "--data", owner_data, "--n", "8", "--key", zoo.private_key]
    plain = run_cli(*common, "--plain", "--init", "data", "-o", tmp_path / "plain.safetensors")
    assert plain.code == 0, plain.stderr
    bundle = load_bundle(tmp_path / "plain.safetensors")
    assert bundle.record.variant == "IPGuard-TL" and bundle.record.search is not None
    assert bundle.record.search.unique == ""


def test_unique_mode_with_supplied_references_only(zoo: Zoo, tmp_path: Path) -> None:
    settings = FingerprintSettings(n=10, unique=True)
    made = fingerprint(
        zoo.target,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=settings,
        reference_paths=[zoo.independent],
    )
    record = json.loads(load_bundle(made.bundle_path).metadata["unique"])
    supplied = [m for m in record["panel"] if m["how"] == "supplied with --reference"]
    assert [m["name"] for m in supplied] == ["independent.onnx"]
    assert record["starts"] == "random"
    assert audit(made.bundle_path, zoo.independent).matching_rate < audit(made.bundle_path, zoo.target).matching_rate


def test_unique_mode_needs_data_or_references(zoo: Zoo, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs owner data"):
        fingerprint(
            zoo.target,
            tmp_path / "fp.safetensors",
            signing_key=load_private_key(zoo.private_key),
            settings=FingerprintSettings(n=5, unique=True),
        )
    with pytest.raises(UsageError, match="use it with --method ipguard"):
        FingerprintSettings(unique=True, method="fgsm")
    assert not (tmp_path / "fp.safetensors").exists()


def test_references_learn_the_owners_ground_truth_when_data_has_labels(zoo: Zoo, tmp_path: Path) -> None:
    import onnxruntime as ort

    x = zoo.x[:400]
    session = ort.InferenceSession(str(zoo.target), providers=["CPUExecutionProvider"])
    said = session.run(None, {session.get_inputs()[0].name: x})[0].argmax(axis=1)
    data = tmp_path / "labelled.npz"
    np.savez(data, x=x, y=(said + 1) % 10)  # a ground truth the target never says: references must follow it
    settings = FingerprintSettings(n=10, unique=True, references=2)
    made = fingerprint(
        zoo.target,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=settings,
        data_path=data,
    )
    record = json.loads(load_bundle(made.bundle_path).metadata["unique"])
    assert record["reference_labels"] == "ground truth from --data"
    references = [member for member in record["panel"] if member["role"] == "reference"]
    positives = [member for member in record["panel"] if member["role"] == "positive"]
    assert len(references) == 2 and all("ground-truth labels" in member["how"] for member in references)
    assert all(member["agreement_with_target"] <= 0.2 for member in references), references
    assert all(member["agreement_with_target"] >= 0.9 for member in positives), positives
