"""Surrogate: the ONNX graph converted back to PyTorch for the gradient search.

The surrogate only proposes points; their labels always come from onnxruntime on the real file.
Conversion tries a fixed list of (converter, pre-pass) pairs — ``ATTEMPTS`` — and keeps the first
whose outputs match onnxruntime on a batch (parity, checked at run time before any search).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import requirements
from .errors import SurrogateError
from .models import OnnxClassifier
from .types import ANY_SIZE, FloatArray, LabelArray, OutputKind

if TYPE_CHECKING:
    import onnx
    import torch

# onnx2pytorch indexes with lists, which torch warns about on every forward pass.
warnings.filterwarnings("ignore", message="Using a non-tuple sequence", category=UserWarning)

PARITY_TOLERANCE = 1e-3
"""Largest |surrogate − onnxruntime| score difference accepted, relative to max(1, |scores|)."""

StatusCallback = Callable[[str], None]

CHUNK_VALUES = 2**21
"""Input values per run of the surrogate (about 13 images of 224×224×3), forward or forward and backward: on the
corpus's 256×256 NudeNet classifier one pass of 100 points took over 24 GB and was killed, and a forward pass
without gradient cost 284 ms a point in a batch of 100 against 114–117 in batches of 2–10 (BENCHMARKS.md,
"Large trained models")."""


def in_chunks(batch: FloatArray, chunk_values: int = CHUNK_VALUES) -> list[FloatArray]:
    """``batch`` cut along its first axis into runs of at most ``chunk_values`` input values (one point at least;
    an empty batch stays one empty run)."""
    size = max(1, chunk_values // max(1, math.prod(batch.shape[1:])))
    return [batch[start : start + size] for start in range(0, len(batch), size)] or [batch]


@dataclass(frozen=True)
class ParityReport:
    """How closely the surrogate reproduces onnxruntime on a batch (run before every search)."""

    points: int
    max_abs_difference: float
    label_agreement: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.label_agreement == 1.0 and self.max_abs_difference <= self.tolerance


@dataclass(frozen=True)
class Conversion:
    """Which converter and pre-pass produced the surrogate, and why earlier attempts were passed over."""

    converter: str
    prepass: str
    batching: str
    failed_attempts: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        return f"{self.converter} after pre-pass {self.prepass} ({self.batching})"


# ---------------------------------------------------------------- graph preparation


def _constant_tensors(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    tensors = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    tensors[node.output[0]] = attribute.t
    return tensors


def release_fixed_batch(model: onnx.ModelProto, input_name: str, batch: int = 1) -> onnx.ModelProto:
    """Make a model exported with a fixed batch accept any batch, so all points search at once.

    The input's batch axis becomes symbolic, and constant Reshape targets that start with that
    batch size (a flatten before the classifier head) start with -1 instead. Parity then checks it.
    """
    import onnx
    from onnx import numpy_helper

    for value in model.graph.input:
        if value.name == input_name:
            value.type.tensor_type.shape.dim[0].dim_param = "N"
    for value in model.graph.output:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value == batch:
            dims[0].dim_param = "N"
    del model.graph.value_info[:]
    constants = _constant_tensors(model)
    for node in model.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        proto = constants[node.input[1]]
        shape = numpy_helper.to_array(proto)
        if shape.ndim == 1 and len(shape) > 0 and shape[0] == batch and -1 not in shape:
            shape = shape.copy()
            shape[0] = -1
            proto.CopyFrom(numpy_helper.from_array(shape, proto.name))
    onnx.checker.check_model(model)
    return model


def keep_only_output(model: onnx.ModelProto, output_name: str) -> onnx.ModelProto:
    """The graph reduced to what computes ``output_name`` (a ZipMap output is read at its input tensor)."""
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    wanted = output_name
    zipmap = producers.get(wanted)
    if zipmap is not None and zipmap.op_type == "ZipMap":
        wanted = zipmap.input[0]
    chosen = [v for v in graph.output if v.name == wanted]
    if not chosen:
        import onnx

        chosen = [onnx.helper.make_empty_tensor_value_info(wanted)]
    del graph.output[:]
    graph.output.extend(chosen)
    needed = {wanted}
    kept = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
            for attribute in node.attribute:  # subgraphs (If, Loop) read outer names too
                for sub in [attribute.g, *attribute.graphs]:
                    for inner in sub.node:
                        needed.update(name for name in inner.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    return model


def _set_input_shape(model: onnx.ModelProto, input_name: str, sample_shape: tuple[int, ...]) -> None:
    """Write the resolved per-sample shape into the graph input (the batch axis stays as it is)."""
    for value in model.graph.input:
        if value.name != input_name:
            continue
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(list(dims)[1:], sample_shape, strict=False):
            if size != ANY_SIZE:
                dim.ClearField("dim_param")
                dim.dim_value = size


def _prepass_none(model: onnx.ModelProto) -> onnx.ModelProto:
    return model


def _prepass_onnxruntime_basic(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime's basic optimisation written back out: folds Constant nodes, ConstantOfShape and
    shape arithmetic into initializers, which converters read far more reliably."""
    import onnx

    ort = requirements.onnxruntime()

    with tempfile.TemporaryDirectory(prefix="ipguard-prepass-") as folder:
        source, optimised = Path(folder) / "in.onnx", Path(folder) / "out.onnx"
        onnx.save(model, str(source))
        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(optimised)
        ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
        return onnx.load(str(optimised))


def _prepass_opset_17(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime-basic, then ``onnx.version_converter`` to opset 17 (what onnx2torch knows best)."""
    from onnx import version_converter

    folded = _prepass_onnxruntime_basic(model)
    opset = next((o.version for o in folded.opset_import if o.domain in ("", "ai.onnx")), 17)
    return folded if opset == 17 else version_converter.convert_version(folded, 17)


def _prepass_if_to_where(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every ``If`` with one output becomes both branches inlined and a ``Where`` on the condition.

    Exporters of batch-1 cascades (a verifier run only when a first score passes) write a
    data-dependent ``If`` no converter supports; computed for every row and selected per row, the
    graph gives the same answer for any batch. onnxruntime-basic runs first; parity then checks.
    """
    import onnx
    from onnx import helper

    optimised = _prepass_onnxruntime_basic(model)
    graph = optimised.graph
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "If" or len(node.output) != 1:
            nodes.append(node)
            continue
        branches = {a.name: a.g for a in node.attribute}
        chosen = []
        for key in ("then_branch", "else_branch"):
            branch = branches[key]
            local = {out for inner in branch.node for out in inner.output} | {i.name for i in branch.initializer}
            suffix = f"__{node.output[0]}_{key}"  # branch names become unique in the outer graph (SSA)
            for inner in branch.node:
                renamed = onnx.NodeProto()
                renamed.CopyFrom(inner)
                renamed.input[:] = [name + suffix if name in local else name for name in inner.input]
                renamed.output[:] = [name + suffix for name in inner.output]
                nodes.append(renamed)
            for initializer in branch.initializer:
                copied = onnx.TensorProto()
                copied.CopyFrom(initializer)
                copied.name = initializer.name + suffix
                graph.initializer.append(copied)
            result = branch.output[0].name
            chosen.append(result + suffix if result in local else result)
        condition = node.input[0] + "__as_bool"
        nodes.append(helper.make_node("Cast", [node.input[0]], [condition], to=onnx.TensorProto.BOOL))
        nodes.append(helper.make_node("Where", [condition, chosen[0], chosen[1]], [node.output[0]]))
    del graph.node[:]
    graph.node.extend(nodes)
    return optimised


def _prepass_shape_inference(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnx

    return onnx.shape_inference.infer_shapes(_prepass_onnxruntime_basic(model), data_prop=True)


PREPASSES: dict[str, Callable[[onnx.ModelProto], onnx.ModelProto]] = {
    "none": _prepass_none,
    "onnxruntime-basic": _prepass_onnxruntime_basic,
    "shape-inference": _prepass_shape_inference,
    "opset-17": _prepass_opset_17,
    "if-to-where": _prepass_if_to_where,
}


# ---------------------------------------------------------------- converters


def _opset(model: onnx.ModelProto) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _failing_node_onnx2pytorch(model: onnx.ModelProto) -> str:
    """The node onnx2pytorch stops at: convert node by node until one raises."""
    try:
        from onnx2pytorch.convert.operations import convert_operations
    except Exception:
        return ""
    last = -1
    try:
        for index, _ in enumerate(convert_operations(model.graph, _opset(model) or 11, 0, False)):
            last = index
    except Exception:
        nodes = model.graph.node
        if 0 <= last + 1 < len(nodes):
            return str(nodes[last + 1].op_type)
    return ""


def _convert_onnx2pytorch(model: onnx.ModelProto) -> torch.nn.Module:
    from onnx2pytorch import ConvertModel

    try:
        module: torch.nn.Module = ConvertModel(model, experimental=True)
    except NotImplementedError as exc:
        match = re.search(r"op_type=(\w+)", str(exc))
        raise _ConverterFailure(f"op {match.group(1) if match else str(exc)[:80]} is not supported") from None
    except Exception as exc:
        op = _failing_node_onnx2pytorch(model)
        where = f"at op {op}" if op else "while converting"
        raise _ConverterFailure(f"{type(exc).__name__} {where}: {_short(exc)}") from None
    return module


def _convert_onnx2torch(model: onnx.ModelProto) -> torch.nn.Module:
    from onnx2torch import convert

    try:
        module: torch.nn.Module = convert(model)
    except NotImplementedError as exc:
        match = re.search(r"operation_type='(\w+)', version=(\d+)", str(exc))
        what = f"op {match.group(1)} version {match.group(2)}" if match else _short(exc)
        raise _ConverterFailure(f"{what} is not supported") from None
    except Exception as exc:
        raise _ConverterFailure(f"{type(exc).__name__} while converting: {_short(exc)}") from None
    return module


class _ConverterFailure(Exception):
    """One converter attempt failed; the message names the op when the converter says which."""


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:160] + "…") if len(text) > 160 else text or type(exc).__name__


CONVERTERS: dict[str, tuple[str, Callable[[onnx.ModelProto], torch.nn.Module]]] = {
    "onnx2pytorch": ("onnx2pytorch", _convert_onnx2pytorch),
    "onnx2torch": ("onnx2torch", _convert_onnx2torch),
}

ATTEMPTS: tuple[tuple[str, str], ...] = (
    ("onnx2pytorch", "none"),
    ("onnx2pytorch", "onnxruntime-basic"),
    ("onnx2torch", "none"),
    ("onnx2torch", "onnxruntime-basic"),
    ("onnx2torch", "opset-17"),
    ("onnx2pytorch", "shape-inference"),
    ("onnx2pytorch", "if-to-where"),
)
"""(converter, pre-pass) pairs tried in this order; the first whose output passes parity is used
(order chosen by measurement on the real-world corpus, BENCHMARKS.md)."""


def _version(distribution: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# ---------------------------------------------------------------- modules


def _first_output(output: Any) -> Any:
    while isinstance(output, (list, tuple)):
        output = output[0]
    return output


def _fixed_batch_module(module: torch.nn.Module, batch: int) -> torch.nn.Module:
    """Run a module that only takes ``batch`` rows over any number of rows (padded chunks)."""
    import torch

    class FixedBatch(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            parts = []
            for start in range(0, len(x), batch):
                chunk = x[start : start + batch]
                rows = len(chunk)
                if rows < batch:
                    chunk = torch.cat([chunk, chunk.new_zeros((batch - rows, *chunk.shape[1:]))])
                out = _first_output(self.inner(chunk))
                parts.append(out.reshape(batch, -1)[:rows])
            return torch.cat(parts)

    return FixedBatch()


def search_scores(raw: torch.Tensor, kind: OutputKind) -> torch.Tensor:
    """Class scores Z(x) for Eq. 5 from a graph's raw output (N × ...): log-probabilities for a
    softmax, (−z, z) for a single-unit classifier (z = logit(p) after a sigmoid)."""
    import torch

    flat = (raw.flatten(1) if raw.dim() > 1 else raw[:, None]).float()
    if kind in ("probabilities", "probability-maps"):
        return torch.log(flat.clamp_min(1e-12))
    if kind == "binary-probability":
        p = flat[:, 0].clamp(1e-7, 1 - 1e-7)
        z = torch.log(p) - torch.log1p(-p)
        return torch.stack([-z, z], dim=1)
    if kind == "binary-logit":
        return torch.stack([-flat[:, 0], flat[:, 0]], dim=1)
    return flat


def score_module(module: torch.nn.Module, kind: OutputKind) -> torch.nn.Module:
    """``module`` with its output turned into the class scores the search uses (``search_scores``)."""
    import torch

    class Scores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return search_scores(_first_output(self.inner(x)), kind)

    return Scores()


def scores_of(module: torch.nn.Module, batch: torch.Tensor, *, probabilities: bool) -> torch.Tensor:
    """N × classes scores of a converted graph (or a fine-tuned copy): log-probabilities if it outputs
    probabilities, so Eq. 5 and cross-entropy see logit differences either way."""
    return search_scores(_first_output(module(batch)), "probabilities" if probabilities else "logits")


class Surrogate:
    """A differentiable PyTorch copy of an ONNX classifier, returning scores to search on.

    ``parity_batch`` given: every attempt in ``ATTEMPTS`` is converted and checked against onnxruntime
    on it until one passes (``conversion`` says which); without it, the first that converts is kept.
    """

    def __init__(
        self,
        target: OnnxClassifier,
        *,
        parity_batch: FloatArray | None = None,
        status: StatusCallback | None = None,
        tolerance: float = PARITY_TOLERANCE,
    ) -> None:
        import onnx

        if target.path is None:
            raise SurrogateError("a surrogate needs the ONNX file, not a live session; pass the model's path")
        self.target = target
        self.chunk_values = CHUNK_VALUES
        """Input values per run of ``scores`` and ``raw_scores`` (``in_chunks``)."""
        if parity_batch is not None and target.output_spec.judge_by_values:
            target.scores(parity_batch)  # settles whether a single unit is a probability or a logit
        self.output_kind: OutputKind = target.output_spec.kind
        try:
            base = onnx.load(str(target.path))
        except Exception as exc:
            raise SurrogateError(f"cannot read {target.name} for conversion: {_short(exc)}") from None
        spec = target.input_spec
        try:
            keep_only_output(base, target.output_spec.name)
            _set_input_shape(base, spec.name, spec.sample_shape)
        except Exception as exc:
            raise SurrogateError(f"cannot prepare {target.name} for conversion: {_short(exc)}") from None
        opset = _opset(base)
        failures: list[str] = []
        self.parity: ParityReport | None = None
        for converter_name, prepass_name in ATTEMPTS:
            label = f"{converter_name} after pre-pass {prepass_name}"
            if status is not None:
                status(f"converting the graph to PyTorch: {label}")
            try:
                prepared = PREPASSES[prepass_name](_copy(base))
            except Exception as exc:
                failures.append(f"{label}: pre-pass failed ({_short(exc)})")
                continue
            for batching in self._batchings(prepared):
                attempt = f"{label} ({batching})"
                try:
                    module = self._convert(prepared, converter_name, batching)
                except _ConverterFailure as exc:
                    failures.append(f"{attempt}: {exc}")
                    break  # the same graph fails the same way however it is batched
                except Exception as exc:
                    failures.append(f"{attempt}: {type(exc).__name__}: {_short(exc)}")
                    continue
                self.module = module
                if parity_batch is not None:
                    try:
                        self.parity = self.check_parity(parity_batch, tolerance=tolerance)
                    except SurrogateError as exc:
                        failures.append(f"{attempt}: {exc}")
                        continue
                display, _ = CONVERTERS[converter_name]
                self.conversion = Conversion(f"{display} {_version(display)}", prepass_name, batching, tuple(failures))
                self.score_module = score_module(self.module, self.output_kind)
                return
        reasons = "; ".join(failures) or "no converter is installed"
        raise SurrogateError(
            f"no PyTorch surrogate of {target.name} (opset {opset}) reproduces onnxruntime, so the gradient "
            f"search cannot run: {reasons}"
        )

    def _batchings(self, model: onnx.ModelProto) -> list[str]:
        fixed = self.target.input_spec.fixed_batch
        return ["dynamic batch"] if fixed is None else [f"fixed batch {fixed} released", f"fixed batch {fixed} chunked"]

    def _convert(self, model: onnx.ModelProto, converter_name: str, batching: str) -> torch.nn.Module:
        fixed = self.target.input_spec.fixed_batch
        graph = _copy(model)
        if fixed is not None and batching.endswith("released"):
            graph = release_fixed_batch(graph, self.target.input_spec.name, fixed)
        _, convert = CONVERTERS[converter_name]
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            module = convert(graph)
        if fixed is not None and batching.endswith("chunked"):
            module = _fixed_batch_module(module, fixed)
        converted: torch.nn.Module = module.eval()
        for parameter in converted.parameters():
            parameter.requires_grad_(False)
        return converted

    def scores_tensor(self, batch: torch.Tensor) -> torch.Tensor:
        """Differentiable scores Z(x) for Eq. 5: logits as the graph gives them, log-probabilities after a
        softmax, (−z, z) for a single unit."""
        return search_scores(_first_output(self.module(batch)), self.output_kind)

    def scores(self, batch: FloatArray) -> FloatArray:
        """``scores_tensor`` on a numpy batch, without gradients."""
        import torch

        with torch.no_grad():
            parts = [
                self.scores_tensor(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))).numpy()
                for chunk in in_chunks(batch, self.chunk_values)
            ]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def predict(self, batch: FloatArray) -> LabelArray:
        """The surrogate's labels (argmax of its scores) for a numpy batch."""
        labels: LabelArray = self.scores(batch).argmax(axis=1).astype(np.int64)
        return labels

    def raw_scores(self, batch: FloatArray) -> FloatArray:
        import torch

        parts = []
        with torch.no_grad():
            for chunk in in_chunks(batch, self.chunk_values):
                output = _first_output(self.module(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))))
                flat = output.flatten(1) if output.dim() > 1 else output[:, None]
                parts.append(flat.float().numpy())
        return np.concatenate(parts).astype(np.float32, copy=False)

    def check_parity(self, batch: FloatArray, *, tolerance: float = PARITY_TOLERANCE) -> ParityReport:
        """Compare surrogate and onnxruntime outputs on ``batch``; raise if they disagree."""
        expected = self.target.raw_outputs(batch)
        try:
            got = self.raw_scores(batch)
        except Exception as exc:
            raise SurrogateError(
                f"the converted surrogate of {self.target.name} fails on a batch of "
                f"{len(batch)} ({type(exc).__name__}: {_short(exc)})"
            ) from None
        if got.shape != expected.shape:
            raise SurrogateError(
                f"surrogate output shape {got.shape} differs from onnxruntime's {expected.shape} "
                f"for {self.target.name}; the conversion is not faithful"
            )
        binary = self.output_kind if self.target.output_spec.is_binary else None
        report = parity_report(got, expected, binary=binary, tolerance=tolerance)
        if not report.ok:
            raise SurrogateError(
                f"the PyTorch surrogate disagrees with onnxruntime on {self.target.name}: "
                f"max relative score difference {report.max_abs_difference:.2e} (tolerance "
                f"{tolerance:.0e}), label agreement {report.label_agreement:.1%}; "
                "the gradient search would be misled, so nothing was fingerprinted"
            )
        return report


def parity_report(
    got: FloatArray, expected: FloatArray, *, binary: OutputKind | None = None, tolerance: float = PARITY_TOLERANCE
) -> ParityReport:
    """How closely ``got`` reproduces ``expected`` (onnxruntime's scores): the largest difference relative
    to max(1, |scores|), and label agreement (argmax, or the cut of a single ``binary`` unit)."""
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    if binary is not None:
        cut = 0.5 if binary == "binary-probability" else 0.0
        got_labels, expected_labels = got[:, 0] > cut, expected[:, 0] > cut
    else:
        got_labels, expected_labels = got.argmax(1), expected.argmax(1)
    return ParityReport(
        points=len(got),
        max_abs_difference=float(np.abs(got - expected).max()) / scale if got.size else 0.0,
        label_agreement=float((got_labels == expected_labels).mean()) if len(got) else 1.0,
        tolerance=tolerance,
    )


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnx

    duplicate = onnx.ModelProto()
    duplicate.CopyFrom(model)
    return duplicate
