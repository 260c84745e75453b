"""Models of several inputs (issue 25): every point packs the data inputs side by side, the other inputs are
held at a recorded value, and a suspect is fed by input name, else by position — through the real CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ipguard_onnx import audit
from ipguard_onnx.bundle import load_bundle
from ipguard_onnx.exit_codes import ExitCode

from ..conftest import RunCli, one_line_error
from .graphs import save_graph

CLASSES = 4


def _save(
    path: Path, nodes: list[onnx.NodeProto], inputs: Sequence[onnx.ValueInfoProto], weights: dict[str, np.ndarray]
) -> Path:
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])
    return save_graph(path, nodes, inputs, [output], weights)


def _two_inputs(path: Path, seed: int, names: tuple[str, str] = ("image", "meta"), *, swap: bool = False) -> Path:
    """logits = image·Wa + meta·Wb: two float data inputs (image features and metadata); ``swap`` lists the
    graph's inputs in the other order (a re-export that reorders them)."""
    rng = np.random.default_rng(seed)
    first, second = names
    weights = {
        "Wa": rng.normal(0, 2, (6, CLASSES)).astype(np.float32),
        "Wb": rng.normal(0, 2, (3, CLASSES)).astype(np.float32),
    }
    nodes = [
        helper.make_node("MatMul", [first, "Wa"], ["za"]),
        helper.make_node("MatMul", [second, "Wb"], ["zb"]),
        helper.make_node("Add", ["za", "zb"], ["logits"]),
    ]
    inputs = [
        helper.make_tensor_value_info(first, TensorProto.FLOAT, ["N", 6]),
        helper.make_tensor_value_info(second, TensorProto.FLOAT, ["N", 3]),
    ]
    return _save(path, nodes, inputs[::-1] if swap else inputs, weights)


def _ids_and_mask(path: Path, seed: int) -> Path:
    """A tagger's pattern: int64 token ids [N, T] and a bool attention mask [N, T], T symbolic: the masked ids'
    one-hot counts through a linear layer."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.INT64),
        helper.make_node("Mul", ["input_ids", "m"], ["kept"]),
        helper.make_node("OneHot", ["kept", "depth", "values"], ["hot"], axis=-1),
        helper.make_node("ReduceSum", ["hot", "axes"], ["counts"], keepdims=0),
        helper.make_node("MatMul", ["counts", "W"], ["logits"]),
    ]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "T"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.BOOL, ["N", "T"]),
    ]
    weights: dict[str, np.ndarray] = {
        "W": rng.normal(0, 1, (8, CLASSES)).astype(np.float32),
        "depth": np.array(8, np.int64),
        "values": np.array([0, 1], np.float32),
        "axes": np.array([1], np.int64),
    }
    return _save(path, nodes, inputs, weights)


def _three_windows(path: Path, seed: int) -> Path:
    """A word segmenter's pattern: three float windows [N, T] with T symbolic (the same T), concatenated."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Concat", ["left", "centre", "right"], ["x"], axis=1),
        helper.make_node("MatMul", ["x", "W"], ["logits"]),
    ]
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", "T"]) for name in ("left", "centre", "right")
    ]
    return _save(path, nodes, inputs, {"W": rng.normal(0, 2, (63, CLASSES)).astype(np.float32)})


@pytest.fixture
def key(tmp_path: Path, run_cli: RunCli) -> Path:
    assert run_cli("keygen", "--out", tmp_path / "k.pem").code == 0
    return tmp_path / "k.pem"


def test_two_data_inputs_are_fingerprinted_jointly_and_suspects_fed_by_name_or_position(
    tmp_path: Path, run_cli: RunCli, key: Path
) -> None:
    target = _two_inputs(tmp_path / "target.onnx", seed=1)
    made = run_cli(
        "fingerprint",
        target,
        "--key",
        key,
        "--n",
        40,
        "--k",
        0.5,
        "--domain",
        "-1,1",
        "-o",
        tmp_path / "t.fp",
        "--format",
        "json",
    )
    assert made.code == 0, made.stderr
    assert (
        "several inputs ('image' data, 'meta' data)" in json.loads(made.stdout)["fingerprint"]["gradient_free_reason"]
    )
    bundle = load_bundle(tmp_path / "t.fp")
    assert [(value.name, value.shape, value.role) for value in bundle.record.inputs] == [
        ("image", (6,), "data"),
        ("meta", (3,), "data"),
    ]
    assert bundle.points.shape == (40, 9)
    reordered = _two_inputs(tmp_path / "reordered.onnx", seed=1, swap=True)
    renamed = _two_inputs(tmp_path / "renamed.onnx", seed=1, names=("pixels", "extra"))
    half = _two_inputs(tmp_path / "half.onnx", seed=1, names=("image", "extra"), swap=True)  # one name kept
    for copy, how in (
        (reordered, "fed by name"),
        (renamed, "'image' → 'pixels', 'meta' → 'extra'"),
        (half, "else by position ('meta' → 'extra')"),
    ):
        result = run_cli("audit", "-f", tmp_path / "t.fp", copy, "--format", "json", "--threshold", 0.85)
        assert result.code == ExitCode.match, result.stderr
        row = json.loads(result.stdout)["results"][0]
        assert row["matching_rate"] == 1.0 and how in row["suspect_details"]["inputs"]
    independent = audit(bundle, _two_inputs(tmp_path / "other.onnx", seed=2))
    assert independent.verdict != "match" and independent.matching_rate < 0.8


def test_token_ids_with_a_mask_are_searched_on_whole_numbers_and_the_mask_held(
    tmp_path: Path, run_cli: RunCli, key: Path
) -> None:
    target = _ids_and_mask(tmp_path / "tagger.onnx", seed=3)
    refused = run_cli("fingerprint", target, "--key", key, "--n", 20)
    assert refused.code == ExitCode.usage
    assert "--input-shape input_ids=" in one_line_error(refused)  # T is symbolic and nothing fixes it
    made = run_cli(
        "fingerprint",
        target,
        "--key",
        key,
        "--n",
        20,
        "--k",
        0.2,
        "--input-shape",
        "input_ids=5",
        "--domain",
        "0,7",
        "-o",
        tmp_path / "t.fp",
    )
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "t.fp")
    ids, mask = bundle.record.inputs
    assert (ids.name, ids.shape, ids.role) == ("input_ids", (5,), "data")
    assert (mask.name, mask.shape, mask.role, mask.value) == ("attention_mask", (5,), "held", 1.0)  # T by its symbol
    assert np.array_equal(bundle.points, np.rint(bundle.points)) and bundle.points.min() >= 0
    assert audit(bundle, target, threshold=0.85).matching_rate == 1.0
    assert audit(bundle, _ids_and_mask(tmp_path / "other.onnx", seed=4)).verdict != "match"


def test_three_windows_take_their_size_from_the_owners_arrays(tmp_path: Path, run_cli: RunCli, key: Path) -> None:
    target = _three_windows(tmp_path / "segmenter.onnx", seed=5)
    rng = np.random.default_rng(0)
    windows = {name: rng.uniform(-1, 1, (300, 21)).astype(np.float32) for name in ("left", "centre", "right")}
    np.savez(tmp_path / "owner.npz", left=windows["left"], centre=windows["centre"], right=windows["right"])
    made = run_cli(
        "fingerprint",
        target,
        "--key",
        key,
        "--n",
        30,
        "--k",
        0.5,
        "--data",
        tmp_path / "owner.npz",
        "--parts",
        "boundary",
        "--calibration-references",
        0,
        "-o",
        tmp_path / "t.fp",
    )
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "t.fp")
    assert [value.shape for value in bundle.record.inputs] == [(21,), (21,), (21,)]
    assert bundle.points.shape[1] == 63
    assert audit(bundle, target, threshold=0.85).matching_rate == 1.0


def test_a_hold_for_an_input_the_model_lacks_is_a_one_line_usage_error(
    tmp_path: Path, run_cli: RunCli, key: Path
) -> None:
    target = _two_inputs(tmp_path / "target.onnx", seed=1)
    wrong = run_cli("fingerprint", target, "--key", key, "--hold", "sample_rate=16000")
    assert wrong.code == ExitCode.usage and "has no input named 'sample_rate'" in one_line_error(wrong)
    not_a_number = run_cli("fingerprint", target, "--key", key, "--hold", "meta=loud")
    assert not_a_number.code == ExitCode.usage and "must be a number" in one_line_error(not_a_number)


def _one_input(path: Path, seed: int) -> Path:
    """An ordinary classifier of one float input [N, 9]: a scan's other kind of fingerprint."""
    rng = np.random.default_rng(seed)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 9])]
    return _save(
        path,
        [helper.make_node("MatMul", ["x", "W"], ["logits"])],
        inputs,
        {"W": rng.normal(0, 2, (9, CLASSES)).astype(np.float32)},
    )


@pytest.mark.parametrize("protocol", ["oip", "simple"])
def test_a_remote_api_of_several_inputs_gets_each_input_by_name_with_its_own_type(
    tmp_path: Path, run_cli: RunCli, key: Path, protocol: str
) -> None:
    from ..http_server import PredictionServer

    target = _ids_and_mask(tmp_path / "tagger.onnx", seed=3)
    made = run_cli(
        "fingerprint",
        target,
        "--key",
        key,
        "--n",
        20,
        "--k",
        0.2,
        "--input-shape",
        "input_ids=5",
        "--domain",
        "0,7",
        "-o",
        tmp_path / "t.fp",
    )
    assert made.code == 0, made.stderr
    other = _ids_and_mask(tmp_path / "other.onnx", seed=4)
    # the copy is served under other input names: OIP matches them by position from the server's metadata
    renamed = {"input_ids": "tokens", "attention_mask": "mask"} if protocol == "oip" else None
    with PredictionServer(target, served_names=renamed, name="tagger") as copy, PredictionServer(other) as innocent:
        path = "/v2/models/tagger/infer" if protocol == "oip" else "/predict"
        found = run_cli(
            "audit", "--endpoint", copy.base + path, "-f", tmp_path / "t.fp", "--format", "json", "--threshold", 0.85
        )
        assert found.code == ExitCode.match, found.stderr
        row = json.loads(found.stdout)["results"][0]
        assert row["matching_rate"] == 1.0 and row["points_skipped"] == 0
        if protocol == "oip":
            assert "by position ('input_ids' → 'tokens', 'attention_mask' → 'mask')" in row["suspect_details"]["inputs"]
            assert {name: dtype for name, (dtype, _) in copy.fed[0].items()} == {"tokens": "INT64", "mask": "BOOL"}
        innocent_path = "/v2/models/digits/infer" if protocol == "oip" else "/predict"
        cleared = run_cli(
            "audit",
            "--endpoint",
            innocent.base + innocent_path,
            "-f",
            tmp_path / "t.fp",
            "--format",
            "json",
            "--threshold",
            0.85,
        )
        assert cleared.code == ExitCode.no_match, cleared.stderr


def test_an_api_serving_other_inputs_than_the_fingerprints_is_a_one_line_error(
    tmp_path: Path, run_cli: RunCli, key: Path
) -> None:
    from ..http_server import PredictionServer

    target = _two_inputs(tmp_path / "target.onnx", seed=1)
    made = run_cli(
        "fingerprint", target, "--key", key, "--n", 10, "--k", 0.5, "--domain", "-1,1", "-o", tmp_path / "t.fp"
    )
    assert made.code == 0, made.stderr
    with PredictionServer(_one_input(tmp_path / "one.onnx", seed=0), name="one") as server:
        refused = run_cli("audit", "--endpoint", server.base + "/v2/models/one/infer", "-f", tmp_path / "t.fp")
    assert refused.code == ExitCode.input
    assert "serves 1 inputs ('x'); the fingerprint feeds 2 ('image', 'meta')" in one_line_error(refused)


def test_a_scan_reads_each_suspect_as_each_fingerprint_packs_its_inputs(
    tmp_path: Path, run_cli: RunCli, key: Path
) -> None:
    hub = tmp_path / "hub"
    hub.mkdir()
    two = _two_inputs(hub / "two-inputs.onnx", seed=1)
    one = _one_input(hub / "one-input.onnx", seed=0)
    fingerprints = tmp_path / "fps"
    fingerprints.mkdir()
    for model in (two, one):
        made = run_cli(
            "fingerprint",
            model,
            "--key",
            key,
            "--n",
            20,
            "--k",
            0.5,
            "--domain",
            "-1,1",
            "-o",
            fingerprints / f"{model.stem}.safetensors",
        )
        assert made.code == 0, made.stderr
    journal = tmp_path / "scan.jsonl"
    result = run_cli("scan", hub, "--fingerprints", fingerprints, "--output", journal)
    assert journal.exists(), (result.code, result.stderr)
    rows = {
        (Path(row["suspect"]).stem, Path(row["fingerprint"]).stem): row
        for row in map(json.loads, journal.read_text().splitlines())
    }
    assert len(rows) == 4, result.stderr
    for name in ("two-inputs", "one-input"):  # each suspect answers its own fingerprint's points, as packed
        assert rows[name, name]["status"] == "ok" and rows[name, name]["matching_rate"] == 1.0, rows[name, name]
    # the other pairs: an error row with the reason where they cannot be fed, else evidence against; never
    # an internal error or a match
    for pair in (("two-inputs", "one-input"), ("one-input", "two-inputs")):
        assert rows[pair]["status"] in ("ok", "error") and rows[pair]["verdict"] != "match", rows[pair]
