"""Model adapters: what every suspect offers (input spec, predict) and the onnxruntime adapter.

This module never imports torch: the audit path stays light.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import warnings
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .errors import ModelLoadError, UnsupportedModelError

Layout = Literal["NCHW", "NHWC", "ND"]
FloatArray = npt.NDArray[np.float32]
LabelArray = npt.NDArray[np.int64]

_FLOAT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}
_LABEL_TYPES = {"tensor(int64)", "tensor(int32)", "tensor(string)"}
_ONNX_ELEM_NAMES = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
    9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64", 16: "bfloat16",
}  # fmt: skip
_PROBABILITY_OPS = {"Softmax", "ZipMap"}
_SHAPE_ONLY_OPS = {"Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose", "Cast", "Concat"}
_LINEAR_OPS = {"Gemm", "MatMul", "Add", "Conv", "Sub", "Mul", "ReduceSum", "ReduceMean"}
_PROBABILITY_NAME = re.compile(r"prob|softmax|sigmoid|score|confidence", re.IGNORECASE)
OutputKind = Literal["logits", "probabilities", "labels", "probability-maps", "binary-logit", "binary-probability"]


@dataclass(frozen=True)
class ValueDescription:
    """One graph input or output as onnxruntime names it: 'tensor(float)', 'seq(map(int64,tensor(float)))'."""

    name: str
    type: str
    dims: tuple[int | str | None, ...]
    producer: str | None = None


ANY_SIZE = -1
"""A per-sample dimension the graph leaves symbolic (resolved by --input-shape or --data)."""


@dataclass(frozen=True)
class InputSpec:
    """The single float input of a classifier: name, per-sample shape, dtype and layout.

    ``sample_shape`` holds ``ANY_SIZE`` where the graph declares a symbolic per-sample dimension
    (an image model that resizes any size); ``resolve`` fixes them. ``layout`` matters only for
    images (rank 4): every other rank is ``ND``, a plain tensor.
    """

    name: str
    sample_shape: tuple[int, ...]
    dtype: str
    layout: Layout
    fixed_batch: int | None
    shape_source: str = "declared by the graph"

    @property
    def batch_shape(self) -> tuple[int | str, ...]:
        return ("N" if self.fixed_batch is None else self.fixed_batch, *self.sample_shape)

    @property
    def resolved(self) -> bool:
        return ANY_SIZE not in self.sample_shape

    def fits(self, shape: tuple[int, ...]) -> bool:
        """Whether points of per-sample ``shape`` can be fed as they are (symbolic dims take any size)."""
        return len(shape) == len(self.sample_shape) and all(
            want in (ANY_SIZE, got) for want, got in zip(self.sample_shape, shape, strict=True)
        )

    def resolve(self, shape: tuple[int, ...], source: str) -> InputSpec:
        """This input with its symbolic dimensions fixed to ``shape`` (declared sizes must agree)."""
        shown = "×".join("?" if d == ANY_SIZE else str(d) for d in self.sample_shape)
        if len(shape) != len(self.sample_shape) or any(d < 1 for d in shape):
            raise UnsupportedModelError(
                f"{source} gives a per-sample shape {list(shape)}; input {self.name!r} takes {shown} "
                f"({len(self.sample_shape)} dimensions after the batch axis)"
            )
        if not self.fits(shape):
            raise UnsupportedModelError(
                f"{source} gives a per-sample shape {list(shape)} that contradicts input {self.name!r} ({shown}); "
                "only the dimensions shown as ? may be chosen"
            )
        if int(np.prod(shape)) > MAX_SAMPLE_VALUES:
            raise UnsupportedModelError(
                f"{source} asks for {int(np.prod(shape)):,} values per sample, more than the "
                f"{MAX_SAMPLE_VALUES:,} ipguard-onnx accepts"
            )
        declared = self.sample_shape
        if len(shape) != 3:
            layout: Layout = "ND"
        elif declared[0] != ANY_SIZE or declared[-1] != ANY_SIZE:  # the graph fixes an end axis: it decides
            layout = guess_layout(declared)
        else:
            layout = guess_layout(shape)
        return InputSpec(self.name, tuple(shape), self.dtype, layout, self.fixed_batch, source)


@dataclass(frozen=True)
class OutputSpec:
    """The output read as the model's answer: class scores (logits or probabilities), labels, or maps.

    ``binary-logit``/``binary-probability`` are single-unit outputs (N×1 or N): a 2-class classifier
    whose class scores are (−z, z), z the logit (IPGuard's Eq. 5 then applies unchanged).
    """

    name: str
    num_classes: int | None
    kind: OutputKind
    chosen_because: str = ""
    judge_by_values: bool = False
    """A single unit whose producer does not say sigmoid or logit (an If, no graph): the first answers
    decide — all in [0, 1] is a probability."""

    @property
    def has_scores(self) -> bool:
        return self.kind in ("logits", "probabilities", "binary-logit", "binary-probability", "probability-maps")

    @property
    def is_binary(self) -> bool:
        return self.kind in ("binary-logit", "binary-probability")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


LabelKind = Literal["index", "class-label"]


@dataclass(frozen=True)
class Answers:
    """A suspect's answers to a batch: one raw label per point, and why any point went unanswered.

    ``kind`` says what the labels are: ``index`` (the argmax of a score vector, a class index) or
    ``class-label`` (the value a model outputs, e.g. scikit-learn's ``classes_`` entry, int or str).
    Where ``answered`` is False the label is meaningless and the point counts as skipped.
    """

    labels: npt.NDArray[Any]
    kind: LabelKind
    answered: npt.NDArray[np.bool_]
    skipped: Mapping[str, int] = field(default_factory=dict)

    @staticmethod
    def concatenate(parts: list[Answers], kind: LabelKind) -> Answers:
        if not parts:
            return Answers(np.zeros(0, np.int64), kind, np.zeros(0, np.bool_))
        reasons: Counter[str] = Counter()
        for part in parts:
            reasons.update(part.skipped)
        return Answers(
            labels=np.concatenate([np.asarray(p.labels, dtype=object) for p in parts]),
            kind=kind,
            answered=np.concatenate([p.answered for p in parts]),
            skipped=dict(reasons),
        )


class Classifier(ABC):
    """A model an audit can query; label-only access is enough (foolbox-style adapter base)."""

    name: str
    input_spec: InputSpec | None = None

    @abstractmethod
    def answer(self, batch: FloatArray) -> Answers:
        """Labels for every row of ``batch`` (or the reason a row went unanswered)."""

    def describe(self) -> dict[str, str]:
        """Facts about the model for reports (hash, providers, endpoint, ...)."""
        return {}


def guess_layout(sample_shape: tuple[int, ...]) -> Layout:
    """N×D is a vector; for images, a channel axis of 1, 3 or 4 picks NCHW or NHWC (NCHW when unclear)."""
    if len(sample_shape) == 1:
        return "ND"
    channels_first = sample_shape[0] in (1, 3, 4)
    channels_last = sample_shape[-1] in (1, 3, 4)
    if channels_last and not channels_first:
        return "NHWC"
    return "NCHW"


def _type_string(type_proto: object) -> str:
    """onnxruntime's spelling of an ONNX type, from the graph's TypeProto."""
    kind = type_proto.WhichOneof("value")  # type: ignore[attr-defined]
    if kind == "tensor_type":
        elem = type_proto.tensor_type.elem_type  # type: ignore[attr-defined]
        return f"tensor({_ONNX_ELEM_NAMES.get(elem, str(elem))})"
    if kind == "sequence_type":
        return f"seq({_type_string(type_proto.sequence_type.elem_type)})"  # type: ignore[attr-defined]
    if kind == "map_type":
        key = _ONNX_ELEM_NAMES.get(type_proto.map_type.key_type, "?")  # type: ignore[attr-defined]
        return f"map({key},{_type_string(type_proto.map_type.value_type)})"  # type: ignore[attr-defined]
    return str(kind)


def _graph_dims(value_info: object) -> tuple[int | str | None, ...]:
    type_proto = value_info.type  # type: ignore[attr-defined]
    if type_proto.WhichOneof("value") != "tensor_type" or not type_proto.tensor_type.HasField("shape"):
        return ()
    dims: list[int | str | None] = []
    for dim in type_proto.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param"):
            dims.append(str(dim.dim_param))
        else:
            dims.append(None)
    return tuple(dims)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}; check the path")
    if not path.is_file():
        raise ModelLoadError(f"{path} is not a file; pass the path of an .onnx model")


def _not_onnx(path: Path, detail: str) -> ModelLoadError:
    return ModelLoadError(
        f"{path} is not a readable ONNX model ({detail}); pass a model saved with onnx.save, "
        "torch.onnx.export or skl2onnx"
    )


def describe_graph(path: Path) -> tuple[list[ValueDescription], list[ValueDescription]]:
    """Inputs (initialisers excluded) and outputs of the ONNX file at ``path``, without running it."""
    import onnx

    _check_file(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several unrelated types
        raise _not_onnx(path, type(exc).__name__) from None
    graph = model.graph
    if not graph.node or not graph.output:
        raise ModelLoadError(f"{path} has an empty ONNX graph; pass an exported classifier")
    initializers = {init.name for init in graph.initializer}
    nodes = {out: node for node in graph.node for out in node.output}

    def producer(name: str) -> str | None:
        """The op that computes ``name``, looking through reshapes, casts and identities."""
        for _ in range(16):
            node = nodes.get(name)
            if node is None:
                return None
            if node.op_type not in _SHAPE_ONLY_OPS or not node.input:
                return str(node.op_type)
            name = node.input[0]
        return None

    inputs = [
        ValueDescription(v.name, _type_string(v.type), _graph_dims(v))
        for v in graph.input
        if v.name not in initializers
    ]
    outputs = [ValueDescription(v.name, _type_string(v.type), _graph_dims(v), producer(v.name)) for v in graph.output]
    return inputs, outputs


def describe_session(session: object) -> tuple[list[ValueDescription], list[ValueDescription]]:
    """The same description from a live onnxruntime session (no graph: producers unknown)."""

    def describe(arg: object) -> ValueDescription:
        shape = getattr(arg, "shape", None) or []
        dims = tuple(d if isinstance(d, (int, str)) or d is None else None for d in shape)
        return ValueDescription(arg.name, arg.type, dims)  # type: ignore[attr-defined]

    return (
        [describe(a) for a in session.get_inputs()],  # type: ignore[attr-defined]
        [describe(a) for a in session.get_outputs()],  # type: ignore[attr-defined]
    )


MAX_SAMPLE_VALUES = 1 << 24
"""Largest input a model may declare per sample (16.7 M values; a 3×2048×2048 image is 12.6 M)."""
MAX_FIXED_BATCH = 4096
MAX_THREADS = 8


def _load_error(path: Path, exc: Exception) -> ModelLoadError | UnsupportedModelError:
    """One clear line for why onnxruntime refused a model file."""
    text = str(exc).strip()
    flat = " ".join(text.split())
    if "INVALID_PROTOBUF" in text or "Protobuf parsing failed" in text:
        return _not_onnx(path, "protobuf parsing failed")
    if "escapes model directory" in text or "Absolute path not allowed" in text:
        return ModelLoadError(
            f"refused {path.name}: its external data points outside the model's folder (path traversal); "
            "do not trust this file, ask its provider for one whose .data file sits beside it"
        )
    if "External data path does not exist" in text:
        found = re.search(r'External data path does not exist: "([^"]*)"', text)
        missing = Path(found.group(1)).name if found else "its .data file"
        return ModelLoadError(
            f"{path.name} keeps its weights in an external data file that is missing ({missing}); "
            "put it beside the model"
        )
    if "is not a registered function/op" in text:
        found = re.search(r"([\w.]*:\w+)\(-?\d+\) is not a registered", text)
        op = found.group(1) if found else "an unknown operator"
        return UnsupportedModelError(
            f"{path.name} uses the custom operator {op}, which onnxruntime does not know; ipguard-onnx runs "
            "standard ONNX operators only (no custom-op libraries are loaded)"
        )
    return ModelLoadError(
        f"onnxruntime cannot load {path.name}: {flat[:300]}; check that the file is complete and a valid ONNX model"
    )


def _shape_text(dims: tuple[int | str | None, ...]) -> str:
    return "[" + ", ".join("?" if not isinstance(d, int) or d < 1 else str(d) for d in dims) + "]"


def choose_input(
    inputs: list[ValueDescription], model_name: str, *, input_shape: tuple[int, ...] | None = None
) -> InputSpec:
    """The single float data input, of any rank ≥ 2 (vectors, sequences, spectrograms, images, volumes).

    The first axis is the batch (free or fixed at any size); symbolic per-sample dimensions stay
    ``ANY_SIZE`` unless ``input_shape`` (``--input-shape``) fixes them. A model that needs other
    inputs (state tensors, a sample rate, a second image) or takes integer tokens is refused by name.
    """
    if len(inputs) != 1:
        names = ", ".join(f"{value.name!r} {value.type.removeprefix('tensor(').removesuffix(')')}"
                          f"{_shape_text(value.dims)}" for value in inputs) or "none"  # fmt: skip
        raise UnsupportedModelError(
            f"{model_name} takes {len(inputs)} inputs ({names}); ipguard-onnx queries classifiers with one "
            "float data input, so a model that also needs state tensors, a sample rate or a second input "
            "must be wrapped or re-exported with those fixed"
        )
    value = inputs[0]
    if value.type not in _FLOAT_TYPES:
        type_name = value.type.removeprefix("tensor(").removesuffix(")")
        type_name = {"float": "float32", "double": "float64"}.get(type_name, type_name)
        hint = (
            "integer inputs are tokens or raw bytes, with no boundary a gradient or a small step can cross"
            if type_name.startswith(("int", "uint"))
            else "ipguard-onnx fingerprints classifiers over float inputs"
        )
        raise UnsupportedModelError(
            f"{model_name}: input {value.name!r} is {type_name}{_shape_text(value.dims)}, not float; {hint}"
        )
    dims = value.dims
    if len(dims) < 2:
        raise UnsupportedModelError(
            f"{model_name}: input {value.name!r} has rank {len(dims)} (shape {_shape_text(dims)}); expected a "
            "batch axis followed by the sample's dimensions (N×D, N×T×F, N×C×H×W, ...)"
        )
    sample = tuple(int(d) if isinstance(d, int) and d > 0 else ANY_SIZE for d in dims[1:])
    batch = dims[0]
    if isinstance(batch, int) and batch > MAX_FIXED_BATCH:
        raise UnsupportedModelError(
            f"input {value.name!r} declares a fixed batch of {batch:,}; ipguard-onnx queries at most "
            f"{MAX_FIXED_BATCH} rows at a time: re-export the model with a dynamic batch axis"
        )
    spec = InputSpec(
        name=value.name,
        sample_shape=sample,
        dtype=_FLOAT_TYPES[value.type],
        layout=guess_layout(sample) if len(sample) == 3 else "ND",
        fixed_batch=batch if isinstance(batch, int) and batch > 0 else None,
    )
    if input_shape is not None:
        return spec.resolve(tuple(input_shape), "--input-shape")
    if spec.resolved and int(np.prod(sample)) > MAX_SAMPLE_VALUES:
        raise UnsupportedModelError(
            f"input {value.name!r} declares {int(np.prod(sample)):,} values per sample (shape "
            f"{list(sample)}), more than the {MAX_SAMPLE_VALUES:,} ipguard-onnx accepts; this is not a "
            "classifier it can query safely"
        )
    return spec


def _class_axis(dims: tuple[int | str | None, ...]) -> int | str | None:
    """The class count of an output N × ... : the one per-sample axis that is not 1 (trailing or
    inner unit axes, as in N×C×1×1, are squeezed); 1 for a single unit (N×1, or N); None if unclear."""
    sample = dims[1:]
    if not sample:
        return 1
    wide = [d for d in sample if d != 1]
    if not wide:
        return 1
    if len(wide) == 1:
        return wide[0] if isinstance(wide[0], int) else "symbolic"
    return None


def choose_output(
    outputs: list[ValueDescription],
    model_name: str,
    *,
    need_scores: bool,
    output_name: str | None = None,
    num_classes: int | None = None,
) -> OutputSpec:
    """The answer to read, and why it was chosen.

    ``output_name`` (``--output-name``) picks one by name. Otherwise a target reads a float class-score
    output — one whose class count is ``num_classes`` when known (an audit knows the bundle's), else the
    probability-like one (a Softmax/Sigmoid producer or a name like ``prob``), else the first; a
    single-unit output is a 2-class classifier. A suspect reads its label output when it has one
    (scikit-learn exports), then scores as above, then ZipMap probability maps.
    """
    scores: list[OutputSpec] = []
    labels: list[OutputSpec] = []
    maps: list[OutputSpec] = []
    for value in outputs:
        dims = value.dims
        if value.type in _FLOAT_TYPES and dims:
            classes = _class_axis(dims)
            if classes == 1:
                binary: OutputKind = "binary-probability" if value.producer == "Sigmoid" else "binary-logit"
                unsure = value.producer not in _LINEAR_OPS and value.producer != "Sigmoid"
                scores.append(OutputSpec(value.name, 2, binary, judge_by_values=unsure))
            elif classes is not None and classes != 0:
                kind: OutputKind = "probabilities" if value.producer in _PROBABILITY_OPS else "logits"
                scores.append(OutputSpec(value.name, classes if isinstance(classes, int) else None, kind))
        elif value.type in _LABEL_TYPES and (len(dims) == 1 or (len(dims) == 2 and dims[1] == 1)):
            labels.append(OutputSpec(value.name, None, "labels"))
        elif value.type.startswith("seq(map("):
            maps.append(OutputSpec(value.name, None, "probability-maps"))
    described = ", ".join(f"{v.name!r} {v.type.removeprefix('tensor(').removesuffix(')')}{_shape_text(v.dims)}"
                          for v in outputs)  # fmt: skip
    if output_name is not None:
        for group in (scores, labels, maps):
            for spec in group:
                if spec.name == output_name:
                    return replace(spec, chosen_because="--output-name")
        if any(v.name == output_name for v in outputs):
            raise UnsupportedModelError(
                f"{model_name}: output {output_name!r} is not class scores, labels or probability maps "
                f"(outputs: {described}); pick another with --output-name"
            )
        raise UnsupportedModelError(f"{model_name} has no output named {output_name!r}; its outputs are {described}")
    probability_like = [
        s for s in scores
        if s.kind in ("probabilities", "binary-probability")
        or _PROBABILITY_NAME.search(s.name)
        or (s.name in {v.name for v in outputs if v.producer in ("Softmax", "Sigmoid")})
    ]  # fmt: skip

    def pick_scores() -> OutputSpec | None:
        if num_classes is not None:
            fitting = [s for s in scores if s.num_classes == num_classes]
            if fitting:
                best = next((s for s in fitting if s in probability_like), fitting[0])
                why = f"its class axis is {num_classes}, the fingerprint's class count"
                return replace(best, chosen_because=why if len(scores) > 1 else "the only class-score output")
        known = [s for s in scores if s.num_classes is not None] if need_scores else scores
        if not known:
            return None
        if len(known) == 1:
            return replace(known[0], chosen_because="the only class-score output")
        likely = [s for s in known if s in probability_like]
        if likely:
            return replace(likely[0], chosen_because="probability-like (softmax/sigmoid producer or name)")
        return replace(known[0], chosen_because="the first of several float outputs; pass --output-name to choose")

    if need_scores:
        chosen = pick_scores()
        if chosen is not None:
            return chosen
        if maps and len(maps) == 1:
            return replace(maps[0], chosen_because="probability maps (ZipMap), the only class scores")
        raise UnsupportedModelError(
            f"{model_name} has no class-score output (a float N×C tensor with C ≥ 2, or a single unit); "
            f"outputs: {described}; export the classifier's logits or probabilities"
        )
    if labels:
        return replace(labels[0], chosen_because="its label output")
    chosen = pick_scores()
    if chosen is not None:
        return chosen
    if maps:
        return replace(maps[0], chosen_because="probability maps (ZipMap)")
    raise UnsupportedModelError(
        f"{model_name} has no label or class-score output (outputs: {described}); "
        "a suspect must answer with labels, scores, or probability maps"
    )


def read_model_specs(
    path: Path, *, input_shape: tuple[int, ...] | None = None, output_name: str | None = None
) -> tuple[InputSpec, OutputSpec]:
    """The input and class-score output of a fingerprint target, read from its graph."""
    inputs, outputs = describe_graph(path)
    return (
        choose_input(inputs, path.name, input_shape=input_shape),
        choose_output(outputs, path.name, need_scores=True, output_name=output_name),
    )


def installed_onnxruntime_wheels() -> list[str]:
    """Which onnxruntime distributions are installed (two at once break each other)."""
    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(dist)
    return found


def choose_providers(requested: str = "auto") -> list[str]:
    """CUDA when present (or asked for), else CPU; a request that cannot be met falls back to CPU loudly."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if requested == "cuda":
        wheels = installed_onnxruntime_wheels()
        hint = (
            "both onnxruntime and onnxruntime-gpu are installed; uninstall both and reinstall onnxruntime-gpu"
            if len(wheels) > 1
            else "install the 'gpu' extra (see README)"
        )
        warnings.warn(
            f"CUDA was requested but onnxruntime offers only {available}; using the CPU ({hint})",
            stacklevel=2,
        )
    return ["CPUExecutionProvider"]


class OnnxClassifier(Classifier):
    """An ONNX model run by onnxruntime, queried in batches (a fixed batch is padded, then trimmed).

    As a fingerprint ``target`` it must output class scores (labels are their argmax); as a
    ``suspect`` it answers with its label output when it has one (scikit-learn exports), else the
    argmax of its scores or of its probability maps (ZipMap). ``output_name`` picks the output;
    ``num_classes`` (the fingerprint's) guides the automatic choice; ``input_shape`` fixes symbolic
    per-sample dimensions.
    """

    input_spec: InputSpec

    def __init__(
        self,
        model: str | os.PathLike[str] | Any,
        *,
        role: Literal["target", "suspect"] = "target",
        providers: str = "auto",
        allow_spinning: bool = True,
        batch_size: int = 256,
        input_shape: tuple[int, ...] | None = None,
        output_name: str | None = None,
        num_classes: int | None = None,
    ) -> None:
        import onnxruntime as ort

        if isinstance(model, ort.InferenceSession):
            self.path: Path | None = None
            self.name = "onnxruntime session"
            self.sha256: str | None = None
            self.session = model
            inputs, outputs = describe_session(model)
        else:
            self.path = Path(model)
            self.name = self.path.name
            if role == "target":  # the graph tells logits from probabilities (softmax producer)
                inputs, outputs = describe_graph(self.path)
                self.session = self._open(self.path, providers, allow_spinning)
            else:  # a suspect needs only what onnxruntime reports: no onnx import on the audit path
                _check_file(self.path)
                self.session = self._open(self.path, providers, allow_spinning)
                inputs, outputs = describe_session(self.session)
            self.sha256 = sha256_file(self.path)
        self._producers_known = role == "target" and self.path is not None
        self.input_spec = choose_input(inputs, self.name, input_shape=input_shape)
        self._outputs = outputs
        self._choice = {"need_scores": role == "target", "output_name": output_name, "num_classes": num_classes}
        self._map_classes: list[Any] | None = None
        self.batch_size = self.input_spec.fixed_batch or batch_size
        self.providers = tuple(self.session.get_providers())
        self._numpy_dtype = np.dtype(self.input_spec.dtype)
        self._output_spec: OutputSpec | None = None
        try:
            self._output_spec = choose_output(outputs, self.name, **self._choice)  # type: ignore[arg-type]
        except UnsupportedModelError:
            if not any(isinstance(d, str) or d is None for v in outputs for d in v.dims[1:]):
                raise
            if self.input_spec.resolved:  # symbolic output axes: run once to see their sizes
                self._output_spec = self._choose_by_probe(self.input_spec.sample_shape)
            # else decided when the input size is known (resolve_input, or the first query)

    @property
    def output_spec(self) -> OutputSpec:
        if self._output_spec is None:
            shown = _shape_text(self.input_spec.sample_shape)
            raise UnsupportedModelError(
                f"{self.name}: the output sizes depend on the input size, which is symbolic ({shown}); "
                "pass --input-shape"
            )
        return self._output_spec

    @property
    def num_classes(self) -> int | None:
        return self.output_spec.num_classes

    @property
    def other_outputs(self) -> tuple[str, ...]:
        return tuple(v.name for v in self._outputs if v.name != self.output_spec.name)

    def _choose_by_probe(self, sample_shape: tuple[int, ...]) -> OutputSpec:
        """Choose the output from the sizes onnxruntime gives for one all-zero input of ``sample_shape``."""
        rows = self.input_spec.fixed_batch or 1
        probe = np.zeros((rows, *sample_shape), dtype=self._numpy_dtype)
        try:
            results = self.session.run(None, {self.input_spec.name: probe})
        except Exception as exc:
            raise UnsupportedModelError(
                f"onnxruntime failed to run {self.name} on one input of shape {list(sample_shape)}: "
                f"{' '.join(str(exc).split())[:200]}"
            ) from None
        measured = [
            replace(value, dims=("N", *np.shape(result)[1:])) if hasattr(result, "shape") else value
            for value, result in zip(self._outputs, results, strict=True)
        ]
        self._outputs = measured
        return choose_output(measured, self.name, **self._choice)  # type: ignore[arg-type]

    def resolve_input(self, shape: tuple[int, ...], source: str) -> None:
        """Fix the input's symbolic per-sample dimensions (``--input-shape`` or the owner's data)."""
        self.input_spec = self.input_spec.resolve(shape, source)
        if self._output_spec is None:
            self._output_spec = self._choose_by_probe(self.input_spec.sample_shape)

    @staticmethod
    def _open(path: Path, providers: str, allow_spinning: bool) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if not allow_spinning:
            # With torch in the same process, spinning idle threads steal the cores torch needs.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        # Models are untrusted input: bounded threads, no arena that keeps a hostile graph's peak memory.
        options.intra_op_num_threads = min(os.cpu_count() or 1, MAX_THREADS)
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        try:
            return ort.InferenceSession(str(path), sess_options=options, providers=choose_providers(providers))
        except Exception as exc:
            raise _load_error(path, exc) from None

    def _run(self, batch: npt.NDArray[np.floating]) -> list[Any]:
        spec = self.input_spec
        if not spec.fits(tuple(batch.shape[1:])):
            raise UnsupportedModelError(
                f"points of shape {tuple(batch.shape[1:])} do not fit input {spec.name!r} of shape "
                f"{_shape_text(spec.sample_shape)}"
            )
        if self._output_spec is None and len(batch):
            self._output_spec = self._choose_by_probe(tuple(batch.shape[1:]))
        outputs = []
        for start in range(0, len(batch), self.batch_size):
            chunk = np.ascontiguousarray(batch[start : start + self.batch_size], dtype=self._numpy_dtype)
            rows = len(chunk)
            if spec.fixed_batch is not None and rows < spec.fixed_batch:  # a fixed batch: pad, then trim
                padding = np.zeros((spec.fixed_batch - rows, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, padding])
            try:
                (result,) = self.session.run([self.output_spec.name], {spec.name: chunk})
            except Exception as exc:
                text = str(exc).strip()
                first_line = " ".join(text.split())[:300] if text else type(exc).__name__
                raise UnsupportedModelError(f"onnxruntime failed to run {self.name}: {first_line}") from None
            outputs.append(result[:rows] if spec.fixed_batch is not None else result)
        return outputs

    def raw_outputs(self, batch: npt.NDArray[np.floating]) -> FloatArray:
        """The chosen output as the graph computes it, one flat float32 row per point (for parity)."""
        if self.output_spec.kind == "probability-maps":
            return self.scores(batch)
        if not self.output_spec.has_scores:
            raise UnsupportedModelError(f"{self.name} outputs {self.output_spec.kind}, not class scores")
        parts = [np.asarray(r, dtype=np.float32).reshape(len(r), -1) for r in self._run(batch)]
        if not parts:
            return np.zeros((0, 1 if self.output_spec.is_binary else self.num_classes or 0), dtype=np.float32)
        return np.concatenate(parts, axis=0)

    def scores(self, batch: npt.NDArray[np.floating]) -> FloatArray:
        """Class scores N×C: logits or probabilities as the graph outputs them, unit axes squeezed; a
        single unit z becomes (−z, z), a sigmoid p becomes (1 − p, p); ZipMap maps become a matrix."""
        kind = self.output_spec.kind
        if kind == "probability-maps":
            rows: list[Any] = []
            for result in self._run(batch):
                rows.extend(result)
            if self._map_classes is None:
                self._map_classes = sorted(rows[0].keys()) if rows else []
            classes = self._map_classes
            return np.asarray([[row.get(c, 0.0) for c in classes] for row in rows], dtype=np.float32).reshape(
                len(rows), len(classes)
            )
        raw = self.raw_outputs(batch)
        if not self.output_spec.is_binary:
            return raw
        return binary_scores(raw[:, 0], probability=self._binary_is_probability(raw))

    def _binary_is_probability(self, raw: FloatArray) -> bool:
        spec = self.output_spec
        if spec.judge_by_values and raw.size:  # decided once, by the first answers
            probability = bool(((raw >= 0) & (raw <= 1)).all())
            kind: OutputKind = "binary-probability" if probability else "binary-logit"
            read_as = "a probability" if probability else "a logit"
            why = f"{spec.chosen_because}; a single unit read as {read_as} by its values"
            self._output_spec = replace(spec, kind=kind, judge_by_values=False, chosen_because=why)
        return self.output_spec.kind == "binary-probability"

    def predict(self, batch: npt.NDArray[np.floating]) -> LabelArray:
        """Class indices: the argmax of the scores."""
        labels: LabelArray = self.scores(batch).argmax(axis=1).astype(np.int64)
        return labels

    def answer(self, batch: FloatArray) -> Answers:
        if self._output_spec is None and len(batch):  # output sizes depend on the input size: measure them
            self._output_spec = self._choose_by_probe(tuple(batch.shape[1:]))
        kind = self.output_spec.kind
        if kind != "labels" and (kind != "probability-maps" or self._producers_known):
            return Answers(self.predict(batch), "index", np.ones(len(batch), np.bool_))
        raw: list[Any] = []
        for result in self._run(batch):
            if kind == "labels":
                raw.extend(np.asarray(result).reshape(-1).tolist())
            else:  # probability maps: {class label: probability} per row
                raw.extend(max(row.items(), key=lambda item: item[1])[0] for row in result)
        return Answers(np.asarray(raw, dtype=object), "class-label", np.ones(len(batch), np.bool_))

    def describe(self) -> dict[str, str]:
        spec = self.output_spec
        facts = {"providers": ",".join(self.providers), "output": f"{spec.name} ({spec.kind})"}
        if spec.chosen_because:
            facts["output_chosen"] = spec.chosen_because
        if self.other_outputs:
            facts["other_outputs"] = ", ".join(self.other_outputs)
        if self.sha256:
            facts["sha256"] = self.sha256
        if self.path is not None:
            facts["path"] = str(self.path)
        return facts


def binary_scores(values: FloatArray, *, probability: bool) -> FloatArray:
    """Class scores of a single-unit classifier: (1 − p, p) for a sigmoid, (−z, z) for a logit."""
    values = np.asarray(values, dtype=np.float32)
    if probability:
        return np.stack([1.0 - values, values], axis=1).astype(np.float32)
    return np.stack([-values, values], axis=1).astype(np.float32)


class CallableClassifier(Classifier):
    """Any Python callable mapping a float batch to labels (shape N) or class scores (N×C).

    A call that raises leaves its rows unanswered, with the exception as the reason: they are
    reported as skipped, never counted as a match or a mismatch.
    """

    def __init__(
        self,
        function: Callable[[FloatArray], Any],
        *,
        name: str | None = None,
        input_spec: InputSpec | None = None,
        batch_size: int = 256,
    ) -> None:
        self.function = function
        self.name = name or getattr(function, "__qualname__", None) or type(function).__name__
        self.input_spec = input_spec
        self.batch_size = batch_size

    def answer(self, batch: FloatArray) -> Answers:
        parts: list[Answers] = []
        kinds: set[LabelKind] = set()
        for start in range(0, len(batch), self.batch_size):
            chunk = batch[start : start + self.batch_size]
            try:
                output = np.asarray(self.function(chunk))
            except Exception as exc:  # the user's code: its failure is a reason, not a crash
                reason = f"{type(exc).__name__}: {str(exc)[:120]}"
                parts.append(
                    Answers(np.zeros(len(chunk), object), "index", np.zeros(len(chunk), np.bool_), {reason: len(chunk)})
                )
                continue
            if output.ndim == 2 and output.shape == (len(chunk), 1):
                output = output[:, 0]
            if output.ndim == 2 and output.shape[0] == len(chunk) and output.shape[1] >= 2:
                kinds.add("index")
                parts.append(Answers(output.argmax(axis=1).astype(np.int64), "index", np.ones(len(chunk), np.bool_)))
            elif output.shape == (len(chunk),):
                kinds.add("class-label")
                parts.append(Answers(output.astype(object), "class-label", np.ones(len(chunk), np.bool_)))
            else:
                raise UnsupportedModelError(
                    f"{self.name} returned shape {output.shape} for {len(chunk)} points; "
                    "return one label per point (N,) or one score row per point (N×C)"
                )
        if len(kinds) > 1:
            raise UnsupportedModelError(f"{self.name} returned labels for some batches and scores for others")
        return Answers.concatenate(parts, kinds.pop() if kinds else "index")
