"""The patterns of classifiers third parties ship (benchmarks/realworld.py), each as a tiny real ONNX graph.

Fixed-batch rank-3 inputs with a sigmoid unit (openwakeword), symbolic image sizes (paddle2onnx
OCR classifiers), several outputs and swapped axes (keras2onnx MTCNN), a batch-1 If cascade
(openwakeword's verifier), a ZipMap-only linear model (onnxmltools), extra state inputs (silero):
fingerprinted or refused in one line, through the real CLI.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ipguard_onnx import audit
from ipguard_onnx.bundle import load_bundle
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.models import as_classifier

from ..conftest import CliResult, RunCli, one_line_error

RNG = np.random.default_rng(7)


def _save(
    path: Path,
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    weights: dict[str, np.ndarray],
    opset: int = 13,
) -> Path:
    graph = helper.make_graph(
        list(nodes),
        path.stem,
        list(inputs),
        list(outputs),
        [numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _weights(prefix: str, sizes: Sequence[tuple[int, int]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    found: dict[str, np.ndarray] = {}
    for index, (fan_in, fan_out) in enumerate(sizes):
        found[f"{prefix}w{index}"] = rng.normal(0, 1.5 / np.sqrt(fan_in), (fan_in, fan_out))
        found[f"{prefix}b{index}"] = rng.normal(0, 0.1, fan_out)
    return found


def _wake_word(path: Path, seed: int, *, sigmoid: bool = True, batch: int | str = 1) -> Path:
    """openwakeword's pattern: [1, 16, 96] embeddings → MLP → one sigmoid unit [1, 1] (here [1, 4, 6])."""
    weights = _weights("", [(24, 16), (16, 1)], seed)
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w0", "b0"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w1", "b1"], ["z" if sigmoid else "score"]),
    ]
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["z"], ["score"]))
    return _save(
        path,
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4, 6])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [batch, 1])],
        weights,
    )


def _fingerprint(
    run_cli: RunCli, model: Path, tmp_path: Path, *extra: object, env: Mapping[str, str | None] | None = None
) -> CliResult:
    return run_cli(
        "fingerprint",
        model,
        "--key",
        tmp_path / "k.pem",
        "--n",
        30,
        "-o",
        tmp_path / f"{model.stem}.fp",
        "--format",
        "json",
        *extra,
        env=env,
    )


@pytest.fixture
def key(tmp_path: Path, run_cli: RunCli) -> Path:
    assert run_cli("keygen", "--out", tmp_path / "k.pem").code == 0
    return tmp_path / "k.pem"


def test_fixed_batch_rank_three_sigmoid_unit(tmp_path: Path, run_cli: RunCli, key: Path) -> None:
    target = _wake_word(tmp_path / "wake.onnx", seed=1)
    made = _fingerprint(run_cli, target, tmp_path, "--domain", "-1,1")
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "wake.fp")
    assert json.loads(bundle.metadata["input_shape"]) == [4, 6]
    assert (bundle.metadata["output_kind"], bundle.num_classes) == ("binary-probability", 2)
    assert bundle.metadata["search_scores"].startswith("(-z, z)")
    assert set(bundle.labels.tolist()) == {0, 1}  # both classes: half the points are searched back
    assert bundle.metadata["binary_balance"] or len(set(bundle.labels[:15].tolist())) == 2
    # The same weights without the sigmoid, with a dynamic batch: a re-export that answers logits.
    logits_copy = _wake_word(tmp_path / "wake_logits.onnx", seed=1, sigmoid=False, batch="N")
    independent = _wake_word(tmp_path / "other.onnx", seed=2)
    assert audit(bundle, target).matching_rate == 1.0
    assert audit(bundle, logits_copy).matching_rate == 1.0
    assert audit(bundle, independent).matching_rate < 1.0


def _ocr_classifier(path: Path, seed: int) -> Path:
    """paddle2onnx's pattern: input [N, 3, ?, ?] (any image size), global pooling, softmax over 2."""
    rng = np.random.default_rng(seed)
    signs = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]])  # features pull both ways
    weights = {"k": rng.normal(0, 1.0, (4, 3, 3, 3)), "w": signs * rng.uniform(4, 8, (4, 1)), "b": np.zeros(2)}
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w", "b"], ["z"]),
        helper.make_node("Softmax", ["z"], ["prob"], axis=1),
    ]
    return _save(
        path,
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 2])],
        weights,
    )


def test_symbolic_image_size_needs_and_records_input_shape(tmp_path: Path, run_cli: RunCli, key: Path) -> None:
    target = _ocr_classifier(tmp_path / "cls.onnx", seed=3)
    refused = _fingerprint(run_cli, target, tmp_path)
    assert refused.code == ExitCode.usage and "Traceback" not in refused.stderr
    assert "symbolic per-sample dimensions (3,?,?); pass --input-shape" in refused.stderr
    contradicting = _fingerprint(run_cli, target, tmp_path, "--input-shape", "1,8,8")
    assert contradicting.code == ExitCode.input and "contradicts input 'x'" in contradicting.stderr
    made = _fingerprint(run_cli, target, tmp_path, "--input-shape", "3,8,12")
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "cls.fp")
    assert json.loads(bundle.metadata["input_shape"]) == [3, 8, 12]
    assert bundle.metadata["input_shape_source"] == "--input-shape"
    assert bundle.points.shape[1:] == (3, 8, 12)
    audited = run_cli("audit", target, "-f", tmp_path / "cls.fp", "--format", "json", "--threshold", 0.85)  # no data
    assert audited.code == ExitCode.match, audited.stderr
    assert json.loads(audited.stdout)["results"][0]["matching_rate"] == 1.0


def _face_stage(path: Path, layout: str, seed: int, *, bgr: bool = False) -> Path:
    """keras2onnx's MTCNN pattern: images in ``layout`` (NHWC, or NWHC with height and width swapped),
    outputs box [N, 4], landmarks [N, 10] and prob [N, 2]; the same weights for the same seed."""
    rng = np.random.default_rng(seed)
    weights = {
        "k": rng.normal(0, 0.5, (4, 3, 3, 3)),
        **{f"w{name}": rng.normal(0, 0.3, (4 * 6 * 5, size)) for name, size in (("box", 4), ("mark", 10))},
        "wprob": rng.normal(0, 0.3, (4 * 6 * 5, 2)),
    }
    perm = [0, 3, 1, 2] if layout == "NHWC" else [0, 3, 2, 1]
    shape = [6, 5, 3] if layout == "NHWC" else [5, 6, 3]
    first = "x"
    nodes = []
    if bgr:  # the copy takes BGR: it flips the channels back before the same network
        weights["order"] = np.array([2, 1, 0])
        nodes.append(helper.make_node("Gather", ["x", "order_i"], ["x_rgb"], axis=3))
        nodes.insert(0, helper.make_node("Cast", ["order"], ["order_i"], to=TensorProto.INT64))
        first = "x_rgb"
    nodes += [
        helper.make_node("Transpose", [first], ["nchw"], perm=perm),
        helper.make_node("Conv", ["nchw", "k"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("MatMul", ["f", "wbox"], ["box"]),
        helper.make_node("MatMul", ["f", "wmark"], ["landmarks"]),
        helper.make_node("MatMul", ["f", "wprob"], ["z"]),
        helper.make_node("Softmax", ["z"], ["prob"], axis=1),
    ]
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", size])
        for name, size in (("box", 4), ("landmarks", 10), ("prob", 2))
    ]
    return _save(path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])], outputs, weights)


def test_several_outputs_and_swapped_axes(tmp_path: Path, run_cli: RunCli, key: Path) -> None:
    target = _face_stage(tmp_path / "onet.onnx", "NHWC", seed=5)
    made = _fingerprint(run_cli, target, tmp_path)
    assert made.code == 0, made.stderr
    fingerprint_row = json.loads(made.stdout)["fingerprint"]
    assert fingerprint_row["output_name"] == "prob" and "probability-like" in fingerprint_row["output_chosen_because"]
    bundle_path = tmp_path / "onet.fp"
    swapped = _face_stage(tmp_path / "onet_nwhc.onnx", "NWHC", seed=5)
    matched = run_cli(
        "audit", swapped, "-f", bundle_path, "--suspect-layout", "NWHC", "--format", "json", "--threshold", 0.85
    )
    assert matched.code == ExitCode.match, matched.stderr
    row = json.loads(matched.stdout)["results"][0]
    assert row["matching_rate"] == 1.0 and row["parameters"]["suspect_layout"] == "NWHC"
    assert row["suspect_details"]["output"] == "prob (probabilities)" or row["suspect_details"]["output"].startswith(
        "prob"
    )
    assert "class axis is 2" in row["suspect_details"]["output_chosen"]
    several = run_cli("audit", target, swapped, "-f", bundle_path, "--suspect-layout", "NHWC", "--format", "json")
    rows = {row["suspect"]: row for row in json.loads(several.stdout)["results"]}
    assert rows["onet.onnx"]["matching_rate"] == 1.0, several.stderr  # every suspect chooses by the bundle's classes
    assert rows["onet_nwhc.onnx"]["suspect_details"]["output"].startswith("prob")
    bgr_copy = _face_stage(tmp_path / "onet_bgr.onnx", "NHWC", seed=5, bgr=True)
    assert audit(bundle_path, bgr_copy, bgr=True).matching_rate == 1.0
    wrong = run_cli("audit", swapped, "-f", bundle_path, "--suspect-layout", "NWHC", "--output-name", "box")
    assert wrong.code == ExitCode.input, wrong.stdout + wrong.stderr
    assert "probably the wrong output: pass --output-name" in wrong.stdout
    missing = run_cli("audit", swapped, "-f", bundle_path, "--output-name", "logits")
    assert missing.code == ExitCode.input and "has no output named 'logits'" in missing.stderr
    bad_layout = run_cli("audit", swapped, "-f", bundle_path, "--suspect-layout", "NHW")
    assert bad_layout.code == ExitCode.usage and "--suspect-layout must be N then" in bad_layout.stderr


def test_batch_one_if_cascade_converts_by_if_to_where(tmp_path: Path, run_cli: RunCli, key: Path) -> None:
    """openwakeword's hey_jarvis: a verifier MLP runs only when the first score passes 0.5 (an If)."""
    weights = _weights("", [(24, 8), (8, 1)], 11) | _weights("v", [(24, 8), (8, 1)], 11)  # a verifier that agrees
    weights["half"] = np.array(0.5)

    def mlp(prefix: str, out: str) -> list[onnx.NodeProto]:
        return [
            helper.make_node("Flatten", ["x"], [f"{prefix}f"]),
            helper.make_node("Gemm", [f"{prefix}f", f"{prefix}w0", f"{prefix}b0"], [f"{prefix}h"]),
            helper.make_node("Relu", [f"{prefix}h"], [f"{prefix}r"]),
            helper.make_node("Gemm", [f"{prefix}r", f"{prefix}w1", f"{prefix}b1"], [f"{prefix}z"]),
            helper.make_node("Sigmoid", [f"{prefix}z"], [out]),
        ]

    unit = [helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 1])]
    then_branch = helper.make_graph(mlp("v", "p2") + [helper.make_node("Identity", ["p2"], ["p"])], "then", [], unit)
    else_branch = helper.make_graph([helper.make_node("Identity", ["p1"], ["p"])], "else", [], unit)
    nodes = [
        *mlp("", "p1"),
        helper.make_node("GreaterOrEqual", ["p1", "half"], ["passes"]),
        helper.make_node("If", ["passes"], ["score"], then_branch=then_branch, else_branch=else_branch),
    ]
    target = _save(
        tmp_path / "cascade.onnx",
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1])],
        weights,
    )
    made = _fingerprint(run_cli, target, tmp_path, "--domain", "-2,2", "--k", "0.5")
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "cascade.fp")
    assert bundle.metadata["surrogate_prepass"] == "if-to-where"
    passed_over = json.loads(bundle.metadata["surrogate_attempts_passed_over"])
    assert any("If" in reason for reason in passed_over)
    assert audit(bundle, target).matching_rate == 1.0


def test_zipmap_only_linear_model_is_fingerprinted_without_a_gradient(
    tmp_path: Path, run_cli: RunCli, key: Path
) -> None:
    """onnxmltools-style LinearClassifier + ZipMap: no converter reads it, so the gradient-free search runs."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = RNG.normal(size=(60, 4)).astype(np.float32)
    model = to_onnx(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), x[:1], target_opset=15)
    keep = [output for output in model.graph.output if output.name != "output_label"]
    del model.graph.output[:]
    model.graph.output.extend(keep)  # only the ZipMap output remains, as onnxmltools writes it
    path = tmp_path / "lr.onnx"
    onnx.save(model, str(path))
    made = _fingerprint(run_cli, path, tmp_path, "--domain", "-3,3", "--k", "1")
    assert made.code == 0, made.stderr
    result = json.loads(made.stdout)["fingerprint"]
    assert "LinearClassifier" in result["gradient_free_reason"] and result["parity"] is None
    assert result["points"] == 30 and result["queries"] > 0
    bundle = load_bundle(tmp_path / "lr.fp")
    assert bundle.record.variant == "IPGuard-GF-RL" and set(bundle.labels.tolist()) == {0, 1}
    assert audit(bundle, path).matching_rate == 1.0


def _byte_classifier(path: Path, seed: int) -> Path:
    """magika's pattern (jax2tf → tf2onnx): int32 bytes [N, 16] (0–255, 256 pads) → embedding (Gather) →
    mean → dense → a softmax spelled out as Exp / ReduceSum / Div, 4 classes."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Gather", ["embedding", "bytes"], ["embedded"]),
        helper.make_node("ReduceMean", ["embedded"], ["pooled"], axes=[1], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
        helper.make_node("ReduceMax", ["logits"], ["top"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["logits", "top"], ["shifted"]),
        helper.make_node("Exp", ["shifted"], ["exp"]),
        helper.make_node("ReduceSum", ["exp", "axis"], ["total"], keepdims=1),
        helper.make_node("Div", ["exp", "total"], ["target_label"]),
    ]
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("bytes", TensorProto.INT32, ["N", 16])],
        [helper.make_tensor_value_info("target_label", TensorProto.FLOAT, ["N", 4])],
        [
            numpy_helper.from_array(rng.normal(0, 1, (257, 8)).astype(np.float32), "embedding"),
            numpy_helper.from_array(rng.normal(0, 3, (8, 4)).astype(np.float32), "w"),
            numpy_helper.from_array(np.array([1], np.int64), "axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_integer_byte_input_is_fingerprinted_on_whole_numbers(tmp_path: Path, run_cli: RunCli, key: Path) -> None:
    path = _byte_classifier(tmp_path / "bytes.onnx", seed=3)
    files = RNG.integers(0, 257, (200, 16)).astype(np.float32)  # byte rows, as the owner's files give them
    np.save(tmp_path / "files.npy", files)
    made = _fingerprint(run_cli, path, tmp_path, "--data", tmp_path / "files.npy", "--domain", "0,256")
    assert made.code == 0, made.stderr
    result = json.loads(made.stdout)["fingerprint"]
    assert "input 'bytes' is int32" in result["gradient_free_reason"] and result["points"] == 30
    bundle = load_bundle(tmp_path / "bytes.fp")
    assert np.array_equal(bundle.points, np.rint(bundle.points))  # whole numbers: what the model reads
    assert bundle.points.min() >= 0 and bundle.points.max() <= 256
    assert bundle.record.search is not None and bundle.record.search.search_scores == "log-probabilities"
    assert audit(bundle, path).matching_rate == 1.0
    other = audit(bundle, _byte_classifier(tmp_path / "other.onnx", seed=4)).matching_rate
    assert other < 0.9
    refused = run_cli("fingerprint", path, "--unique", "--data", tmp_path / "files.npy", "--key", key)
    assert refused.code == ExitCode.usage and "takes int32 input" in refused.stderr


def test_state_inputs_are_held_and_a_sample_rate_is_asked_for(tmp_path: Path, run_cli: RunCli, key: Path) -> None:
    """silero's pattern: data, recurrent state (held at 0 by its name) and a scalar sample rate, which no
    rule can guess: one line asks for ``--hold sr=VALUE``; given, the model is fingerprinted and audited."""
    nodes = [helper.make_node("Add", ["input", "state"], ["output"])]
    path = _save(
        tmp_path / "vad.onnx",
        nodes,
        [
            helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 8]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, ["N", 8]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 8])],
        {},
    )
    refused = run_cli("fingerprint", path, "--n", 5, "--key", key)
    assert refused.code == ExitCode.usage
    assert "input 'sr' of vad.onnx has no batch axis (int64[])" in one_line_error(refused)
    assert "--hold sr=VALUE" in refused.stderr
    made = _fingerprint(run_cli, path, tmp_path, "--hold", "sr=16000", "--k", "0.2")
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "vad.fp")
    held = {value.name: (value.role, value.value) for value in bundle.record.inputs}
    assert held == {"input": ("data", 0.0), "state": ("held", 0.0), "sr": ("held", 16000.0)}
    assert audit(bundle, path, threshold=0.85).matching_rate == 1.0


def test_progress_lines_off_a_terminal(tmp_path: Path, run_process: RunCli, key: Path) -> None:
    """A real process whose stderr is a pipe: progress comes as lines on the beat, one per phase reached."""
    target = _ocr_classifier(tmp_path / "cls.onnx", seed=4)
    made = _fingerprint(
        run_process,
        target,
        tmp_path,
        "--input-shape",
        "3,8,8",
        "--k",
        "5",
        "--max-iterations",
        "400",
        env={"IPGUARD_ONNX_PROGRESS_SECONDS": "0.002"},
    )
    assert made.code == 0, made.stderr
    lines = [line for line in made.stderr.splitlines() if line.startswith("ipguard-onnx [")]
    assert any("converting the graph to PyTorch: onnx2pytorch" in line for line in lines), made.stderr
    assert any("points converged, iteration" in line for line in lines), made.stderr


def test_an_unexpected_exception_is_never_a_verdict(tmp_path: Path, run_process: RunCli, key: Path) -> None:
    """A dependency that fails in a way nobody planned (here safetensors, broken by sitecustomize)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import safetensors.numpy\n"
        "def save(*args, **kwargs):\n"
        "    raise RuntimeError('simulated dependency failure')\n"
        "safetensors.numpy.save = save\n"
    )
    target = _ocr_classifier(tmp_path / "cls.onnx", seed=4)
    environment = {"PYTHONPATH": os.pathsep.join([str(shim), *sys.path])}
    crashed = _fingerprint(run_process, target, tmp_path, "--input-shape", "3,8,8", env=environment)
    assert crashed.code == ExitCode.internal, crashed.stderr
    lines = [line for line in crashed.stderr.splitlines() if not line.startswith("ipguard-onnx [")]
    assert len(lines) == 1 and "Traceback" not in crashed.stderr
    assert lines[0].startswith("internal error: RuntimeError: simulated dependency failure")
    assert "rerun with --debug" in lines[0]
    debugged = run_process(
        "--debug", "fingerprint", target, "--key", key, "--n", 5, "--input-shape", "3,8,8", env=environment
    )
    assert debugged.code == ExitCode.internal and "Traceback" in debugged.stderr


def _pnet(path: Path) -> Path:
    """MTCNN's P-Net pattern: input [N, ?, ?, 3], a 3×3 convolution, output [N, ?, ?, 2] (1×1 at 3×3)."""
    rng = np.random.default_rng(9)
    weights = {"k": rng.normal(0, 2.0, (2, 3, 3, 3))}
    nodes = [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "k"], ["c"]),
        helper.make_node("Softmax", ["c"], ["s"], axis=1),
        helper.make_node("Transpose", ["s"], ["prob"], perm=[0, 2, 3, 1]),
    ]
    return _save(
        path,
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", "h", "w", 2])],
        weights,
    )


def test_fully_convolutional_stage_with_input_dependent_output_sizes(
    tmp_path: Path, run_cli: RunCli, key: Path
) -> None:
    """MTCNN's P-Net: at 3×3 the output is [N, 1, 1, 2]."""
    target = _pnet(tmp_path / "pnet.onnx")
    made = _fingerprint(run_cli, target, tmp_path, "--input-shape", "3,3,3")
    assert made.code == 0, made.stderr
    bundle = load_bundle(tmp_path / "pnet.fp")
    assert bundle.num_classes == 2 and bundle.points.shape[1:] == (3, 3, 3)
    assert audit(bundle, target).matching_rate == 1.0  # the suspect's output sizes are measured on first query


def test_one_suspect_read_at_each_size_its_bundles_ask(tmp_path: Path, run_cli: RunCli, key: Path) -> None:
    """A fully convolutional suspect scanned against bundles whose points differ in size (5×5 and 7×7 images:
    a 3×3 and a 5×5 grid of answers) is measured again for each size, in either order: read at the positions
    of the other size, the larger grid's middle is off centre and the smaller has no such position (a scan of the
    real corpus stopped with IndexError on MTCNN's P-Net)."""
    target = _pnet(tmp_path / "pnet.onnx")
    bundles = []
    for side in (5, 7):
        made = run_cli(
            "fingerprint", target, "--key", key, "--n", 30, "--input-shape", f"{side},{side},3",
            "-o", tmp_path / f"pnet-{side}.fp", "--seed", side,
        )  # fmt: skip
        assert made.code == 0, made.stderr
        bundles.append(tmp_path / f"pnet-{side}.fp")
    for order in (bundles, bundles[::-1]):
        for how in ("--every-point", "--no-sequential"):  # each bundle asked alone; screened, by point size
            journal = tmp_path / f"journal-{order[0].stem}{how}.jsonl"
            scanned = run_cli("scan", target, "-f", order[0], "-f", order[1], "--output", journal, how)
            assert scanned.code != ExitCode.internal, scanned.stderr
            rows = [json.loads(line) for line in journal.read_text().splitlines()]
            assert sorted(row["fingerprint"] for row in rows) == sorted(path.name for path in bundles)
            assert all(row["status"] == "ok" and row["matching_rate"] == 1.0 for row in rows), rows


def test_a_suspect_asked_at_sizes_back_and_forth_answers_as_one_opened_for_each(tmp_path: Path) -> None:
    """One opened suspect asked 5×5, 7×7, 5×5, 3×3 and 7×7 images answers each batch as a suspect opened for that
    size alone does (a size asked before keeps its reading)."""
    target = _pnet(tmp_path / "pnet.onnx")
    shared = as_classifier(target, num_classes=2)
    rng = np.random.default_rng(4)
    for side in (5, 7, 5, 3, 7):
        points = rng.random((40, side, side, 3), dtype=np.float32)
        alone = as_classifier(target, num_classes=2).answer(points)
        answers = shared.answer(points)
        assert answers.answered.all() and np.array_equal(answers.labels, alone.labels), side
