"""Where a fingerprint's random starts come from when the owner gives no --domain (issue 25): integer inputs
take the ids their graph reads, and a fingerprint short of points says why and what to pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from ipguard_onnx.bundle import load_bundle
from ipguard_onnx.models import integer_ranges
from ipguard_onnx.parts.base import SearchTally

from ..conftest import RunCli
from .graphs import save_graph

CLASSES = 4
VOCABULARY = 40


def _embedding_classifier(path: Path, *, spelled_out: bool = False) -> Path:
    """Token ids [N, 6] → an embedding of ``VOCABULARY`` rows (a Gather; or, ``spelled_out``, jax2tf's one-hot:
    Equal against the ids 0..V-1, then MatMul) → sum over the tokens → logits."""
    rng = np.random.default_rng(0)
    table = rng.normal(0, 3, (VOCABULARY, CLASSES)).astype(np.float32)
    weights: dict[str, np.ndarray] = {"table": table, "axes": np.array([1], np.int64)}
    if spelled_out:
        weights["ids"] = np.arange(VOCABULARY, dtype=np.int64).reshape(1, 1, VOCABULARY)
        nodes = [
            helper.make_node("Unsqueeze", ["tokens", "last"], ["column"]),
            helper.make_node("Equal", ["column", "ids"], ["hit"]),
            helper.make_node("Cast", ["hit"], ["hot"], to=TensorProto.FLOAT),
            helper.make_node("MatMul", ["hot", "table"], ["rows"]),
        ]
        weights["last"] = np.array([-1], np.int64)
    else:
        nodes = [helper.make_node("Gather", ["table", "tokens"], ["rows"])]
    nodes.append(helper.make_node("ReduceSum", ["rows", "axes"], ["logits"], keepdims=0))
    inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N", 6])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])]
    return save_graph(path, nodes, inputs, outputs, weights)


@pytest.fixture
def key(tmp_path: Path, run_cli: RunCli) -> Path:
    assert run_cli("keygen", "--out", tmp_path / "k.pem").code == 0
    return tmp_path / "k.pem"


@pytest.mark.parametrize("spelled_out", [False, True], ids=["gather", "equal-one-hot"])
def test_token_ids_are_drawn_from_the_vocabulary_the_graph_reads(
    tmp_path: Path, run_cli: RunCli, key: Path, spelled_out: bool
) -> None:
    model = _embedding_classifier(tmp_path / "tokens.onnx", spelled_out=spelled_out)
    ((name, (low, high, how)),) = integer_ranges(model).items()
    assert (name, low, high) == ("tokens", 0, VOCABULARY - 1)
    made = run_cli("fingerprint", model, "--key", key, "--n", 20, "--k", 0.3, "-o", tmp_path / "t.fp")
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "t.fp")
    assert float(bundle.domain_low.min()) == 0 and float(bundle.domain_high.max()) == VOCABULARY - 1
    assert f"'tokens' 0..{VOCABULARY - 1} ({how})" in bundle.record.domain
    # the points use the vocabulary, not only ids 0 and 1 as the [0, 1] default would
    assert len(np.unique(bundle.points)) > 10 and bundle.points.max() > 1
    given = run_cli(
        "fingerprint", model, "--key", key, "--n", 20, "--k", 0.3, "--domain", "0,5", "-o", tmp_path / "g.fp"
    )
    assert given.code == 0, given.stderr
    assert load_bundle(tmp_path / "g.fp").points.max() <= 5  # an owner's --domain wins


def test_a_shortfall_blames_a_domain_that_one_class_fills_and_says_what_to_pass() -> None:
    tally = SearchTally()
    assert tally.shortfall(20, 20, "--domain 0,1") == ""
    tally.drawn_labels.extend([0] * 97 + [2] * 3)
    said = tally.shortfall(5, 20, "--domain 0,1")
    assert said.startswith("5 of 20 points found: 97.0% of the inputs drawn from --domain 0,1 are labelled class 0")
    assert "(2 class(es) seen)" in said and "--data" in said and "--domain" in said
    mixed = SearchTally(drawn_labels=[0, 1, 2, 3] * 25)  # every class drawn: the margin is what was missed
    assert "never reached the margin k" in mixed.shortfall(5, 20, "--domain 0,1")
    mixed.stopped = "the 900 s time budget (--time-budget) ran out"
    assert mixed.shortfall(5, 20, "--domain 0,1").endswith("the 900 s time budget (--time-budget) ran out")


def test_classes_that_uniform_noise_never_reaches_are_found_in_parts_of_the_domain(
    tmp_path: Path, run_cli: RunCli, key: Path
) -> None:
    """A brightness classifier (dark / mid / bright by the mean of 64 values): uniform noise in [0, 1] is always
    "mid" (its mean is 0.5 ± 0.04), so the walk had no other class to cross to; anchors drawn from sub-intervals of
    the domain (dark and bright inputs) give it some."""
    weights = {"scale": np.array([0.0, -50.0, 50.0], np.float32), "shift": np.array([0.0, 10.0, -40.0], np.float32)}
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["logits"]),
    ]
    model = save_graph(
        tmp_path / "brightness.onnx",
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        weights,
    )
    made = run_cli(
        "fingerprint", model, "--key", key, "--n", 10, "--k", 1, "--method", "gradient-free", "-o", tmp_path / "t.fp"
    )
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "t.fp")
    assert len(bundle.points) == 10 and set(np.unique(bundle.labels)) <= {1, 2}  # crossed to dark or bright


def test_the_vocabulary_is_found_past_id_arithmetic_and_in_external_data_never_in_a_position_table(
    tmp_path: Path,
) -> None:
    """TensorFlow's embedding wraps negative ids (``Where(ids < 0, ids + V, ids)``) before its ``Gather``; torch's
    large tables live in external data; a position table indexed by ``Range(Shape(ids))`` is no vocabulary."""
    import onnx

    rng = np.random.default_rng(0)
    weights: dict[str, np.ndarray] = {
        "table": rng.normal(0, 1, (VOCABULARY, CLASSES)).astype(np.float32),
        "positions": rng.normal(0, 1, (2048, CLASSES)).astype(np.float32),
        "size": np.array(VOCABULARY, np.int64),
        "zero": np.array(0, np.int64),
        "one": np.array(1, np.int64),
        "axes": np.array([1], np.int64),
    }
    nodes = [
        helper.make_node("Less", ["tokens", "zero"], ["negative"]),
        helper.make_node("Add", ["tokens", "size"], ["wrapped"]),
        helper.make_node("Where", ["negative", "wrapped", "tokens"], ["ids"]),
        helper.make_node("Gather", ["table", "ids"], ["rows"]),
        helper.make_node("Shape", ["tokens"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["length"]),
        helper.make_node("Range", ["zero", "length", "one"], ["steps"]),
        helper.make_node("Gather", ["positions", "steps"], ["placed"]),
        helper.make_node("Add", ["rows", "placed"], ["summed"]),
        helper.make_node("ReduceSum", ["summed", "axes"], ["logits"], keepdims=0),
    ]
    inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N", 6])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])]
    path = save_graph(tmp_path / "wrapped.onnx", nodes, inputs, outputs, weights)
    assert integer_ranges(path)["tokens"][:2] == (0, VOCABULARY - 1)
    model = onnx.load(str(path))
    onnx.save(model, str(tmp_path / "external.onnx"), save_as_external_data=True, size_threshold=0)
    ((low, high, how),) = integer_ranges(tmp_path / "external.onnx").values()
    assert (low, high) == (0, VOCABULARY - 1) and "'table'" in how
