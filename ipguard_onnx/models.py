"""Model adapters: what every suspect offers (input spec, predict) and the onnxruntime adapter.

This module never imports torch: the audit path stays light.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from .errors import ModelLoadError, UnsupportedModelError

Layout = Literal["NCHW", "NHWC", "ND"]
OutputKind = Literal["logits", "probabilities"]
FloatArray = npt.NDArray[np.float32]
LabelArray = npt.NDArray[np.int64]

_ONNX_FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64"}
_ONNX_TYPE_NAMES = {
    1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 16: "bfloat16",
}  # fmt: skip
_PROBABILITY_OPS = {"Softmax"}


@dataclass(frozen=True)
class InputSpec:
    """The single float input of a classifier: name, per-sample shape, dtype and layout."""

    name: str
    sample_shape: tuple[int, ...]
    dtype: str
    layout: Layout
    fixed_batch: int | None

    @property
    def batch_shape(self) -> tuple[int | str, ...]:
        return ("N" if self.fixed_batch is None else self.fixed_batch, *self.sample_shape)


@dataclass(frozen=True)
class OutputSpec:
    """The class-score output: name, number of classes, and whether it holds logits or probabilities."""

    name: str
    num_classes: int
    kind: OutputKind


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Classifier(ABC):
    """A model that labels a batch of points; label-only access is enough for an audit."""

    name: str
    input_spec: InputSpec | None
    num_classes: int | None

    @abstractmethod
    def predict(self, batch: FloatArray) -> LabelArray:
        """Return one integer label per row of ``batch``."""

    def describe(self) -> dict[str, str]:
        """Facts about the model for reports (hash, providers, ...)."""
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


def _dims(value_info: object) -> list[int | str | None]:
    tensor_type = value_info.type.tensor_type  # type: ignore[attr-defined]
    if not tensor_type.HasField("shape"):
        return []
    dims: list[int | str | None] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param"):
            dims.append(str(dim.dim_param))
        else:
            dims.append(None)
    return dims


def read_model_specs(path: Path) -> tuple[InputSpec, OutputSpec]:
    """Read the input and class-score output of the ONNX file at ``path`` from its graph."""
    import onnx

    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}; check the path")
    if not path.is_file():
        raise ModelLoadError(f"{path} is not a file; pass the path of an .onnx model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several unrelated types
        raise ModelLoadError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}); "
            "pass a model saved with onnx.save or torch.onnx.export"
        ) from None
    graph = model.graph
    if not graph.node or not graph.output:
        raise ModelLoadError(f"{path} has an empty ONNX graph; pass an exported classifier")
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(value.name) for value in inputs) or "none"
        raise UnsupportedModelError(
            f"expected one input tensor, got {len(inputs)} ({names}); "
            "ipguard-onnx fingerprints classifiers with a single float input"
        )
    value = inputs[0]
    elem_type = value.type.tensor_type.elem_type
    if elem_type not in _ONNX_FLOAT_TYPES:
        type_name = _ONNX_TYPE_NAMES.get(elem_type, f"type {elem_type}")
        raise UnsupportedModelError(
            f"expected a float input tensor, got {type_name} {value.name!r}; "
            "ipguard-onnx fingerprints classifiers over float inputs"
        )
    dims = _dims(value)
    if len(dims) not in (2, 4):
        raise UnsupportedModelError(
            f"input {value.name!r} has rank {len(dims)} (shape {dims}); expected N×D vectors "
            "or N×C×H×W / N×H×W×C images"
        )
    sample = dims[1:]
    if not all(isinstance(d, int) and d > 0 for d in sample):
        raise UnsupportedModelError(
            f"input {value.name!r} has symbolic per-sample dimensions {sample}; "
            "re-export the model with a fixed input size (only the batch axis may be dynamic)"
        )
    sample_shape = tuple(int(d) for d in sample)  # type: ignore[arg-type]
    batch = dims[0]
    fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
    input_spec = InputSpec(
        name=value.name,
        sample_shape=sample_shape,
        dtype=_ONNX_FLOAT_TYPES[elem_type],
        layout=guess_layout(sample_shape),
        fixed_batch=fixed_batch,
    )
    return input_spec, _read_output_spec(model, path)


def _read_output_spec(model: object, path: Path) -> OutputSpec:
    graph = model.graph  # type: ignore[attr-defined]
    producers = {out: node for node in graph.node for out in node.output}
    for value in graph.output:
        elem_type = value.type.tensor_type.elem_type
        dims = _dims(value)
        if elem_type not in _ONNX_FLOAT_TYPES or len(dims) != 2:
            continue
        classes = dims[1]
        if not isinstance(classes, int) or classes < 2:
            continue
        producer = producers.get(value.name)
        kind: OutputKind = (
            "probabilities" if producer is not None and producer.op_type in _PROBABILITY_OPS else "logits"
        )
        return OutputSpec(name=value.name, num_classes=classes, kind=kind)
    described = ", ".join(f"{v.name!r} {_dims(v)}" for v in graph.output)
    raise UnsupportedModelError(
        f"{path.name} has no class-score output (a float N×C tensor with C ≥ 2); outputs: "
        f"{described}; export the classifier's logits or probabilities"
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
    """An ONNX classifier run by onnxruntime: queried in batches, labels by argmax of the scores."""

    input_spec: InputSpec
    num_classes: int

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        providers: str = "auto",
        allow_spinning: bool = True,
        batch_size: int = 256,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.input_spec, self.output_spec = read_model_specs(self.path)
        self.name = self.path.name
        self.num_classes = self.output_spec.num_classes
        self.sha256 = sha256_file(self.path)
        self.batch_size = 1 if self.input_spec.fixed_batch == 1 else batch_size
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if not allow_spinning:
            # With torch in the same process, spinning idle threads steal the cores torch needs.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=choose_providers(providers)
            )
        except Exception as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(
                f"onnxruntime cannot load {self.path.name}: {first_line[:300]}; "
                "check that the file is complete (and its .data file sits beside it)"
            ) from None
        self.providers = tuple(self.session.get_providers())
        self._numpy_dtype = np.dtype(self.input_spec.dtype)

    def scores(self, batch: npt.NDArray[np.floating]) -> FloatArray:
        """Raw class scores (logits or probabilities, as the graph outputs them) as float32."""
        spec = self.input_spec
        if tuple(batch.shape[1:]) != spec.sample_shape:
            raise UnsupportedModelError(
                f"points of shape {tuple(batch.shape[1:])} do not fit input {spec.name!r} of shape {spec.sample_shape}"
            )
        outputs = []
        for start in range(0, len(batch), self.batch_size):
            chunk = np.ascontiguousarray(batch[start : start + self.batch_size], dtype=self._numpy_dtype)
            (result,) = self.session.run([self.output_spec.name], {spec.name: chunk})
            outputs.append(np.asarray(result, dtype=np.float32).reshape(len(chunk), -1))
        if not outputs:
            return np.zeros((0, self.output_spec.num_classes), dtype=np.float32)
        return np.concatenate(outputs, axis=0)

    def predict(self, batch: FloatArray) -> LabelArray:
        labels: LabelArray = self.scores(batch).argmax(axis=1).astype(np.int64)
        return labels

    def describe(self) -> dict[str, str]:
        return {"sha256": self.sha256, "providers": ",".join(self.providers)}
