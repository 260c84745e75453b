"""Shared types: arrays, the input and output a classifier is read through, and a batch of answers.

Every stage imports these from here; nothing here imports an adapter, torch or onnxruntime.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .errors import UnsupportedModelError

Layout = Literal["NCHW", "NHWC", "ND"]
FloatArray = npt.NDArray[np.float32]
LabelArray = npt.NDArray[np.int64]
OutputKind = Literal["logits", "probabilities", "labels", "probability-maps", "binary-logit", "binary-probability"]
LabelKind = Literal["index", "class-label"]

MAX_DOMAIN = 1e30
"""Input bounds beyond ±this overflow float32 arithmetic on the points (their width, a step along it)."""
MAX_SAMPLE_VALUES = 1 << 24
"""Largest input a model may declare per sample (16.7 M values; a 3×2048×2048 image is 12.6 M)."""


@dataclass(frozen=True)
class ValueDescription:
    """One graph input or output as onnxruntime names it: 'tensor(float)', 'seq(map(int64,tensor(float)))'."""

    name: str
    type: str
    dims: tuple[int | str | None, ...]
    producer: str | None = None


ANY_SIZE = -1
"""A per-sample dimension the graph leaves symbolic (resolved by --input-shape or --data)."""


InputRole = Literal["data", "held"]


@dataclass(frozen=True)
class GraphInput:
    """One input of a model with several (issue 25): fed from a slice of every point (``data``), or held at one
    value for every point (``held``: masks, lengths, sample rates, recurrent state) — how it was decided in ``why``.

    ``shape`` is the per-sample shape when ``batch_axis`` is not None (the batch axis sits at that index of
    the fed tensor), else the whole tensor's shape (a scalar sample rate: ``()``).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    role: InputRole
    batch_axis: int | None = 0
    value: float = 0.0
    """Held inputs: every element's value (a mask's 1, a state's 0, a sample rate)."""
    why: str = ""

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def integer(self) -> bool:
        return self.dtype.startswith(("int", "uint", "bool"))

    def tensor(self, values: npt.NDArray[Any], rows: int) -> npt.NDArray[Any]:
        """The tensor fed for ``rows`` points: ``values`` (rows × size, a data input's slice), or the held value."""
        if self.role == "held":
            if self.batch_axis is None:
                return np.full(self.shape, self.value, dtype=self.dtype)
            shape = list(self.shape)
            shape.insert(self.batch_axis, rows)
            return np.full(shape, self.value, dtype=self.dtype)
        block = np.asarray(values).reshape(rows, *self.shape)
        if self.integer:
            block = np.rint(block)
        if self.batch_axis not in (0, None):
            block = np.moveaxis(block, 0, self.batch_axis)
        return np.ascontiguousarray(block.astype(self.dtype))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "role": self.role,
            "batch_axis": self.batch_axis,
            "value": self.value,
            "why": self.why,
        }

    @staticmethod
    def from_json(record: Mapping[str, Any]) -> GraphInput:
        role = record["role"]
        if role not in ("data", "held"):
            raise ValueError(f"input role {role!r} is neither data nor held")
        axis = record.get("batch_axis", 0)
        return GraphInput(
            name=str(record["name"]),
            shape=tuple(int(d) for d in record["shape"]),
            dtype=str(record["dtype"]),
            role=role,
            batch_axis=None if axis is None else int(axis),
            value=float(record.get("value", 0.0)),
            why=str(record.get("why", "")),
        )


@dataclass(frozen=True)
class Packing:
    """How one point feeds a model of several inputs: the data inputs' values side by side (each flattened,
    in this order), every held input at its value. The fingerprint's points live in this packed space."""

    inputs: tuple[GraphInput, ...]

    @property
    def data(self) -> tuple[GraphInput, ...]:
        return tuple(value for value in self.inputs if value.role == "data")

    @property
    def size(self) -> int:
        return sum(value.size for value in self.data)

    @property
    def integer(self) -> bool:
        """Every data input takes whole numbers (ids, bytes): the points are whole numbers throughout."""
        return all(value.integer for value in self.data)

    def feeds(self, batch: npt.NDArray[Any], names: Mapping[str, str] | None = None) -> dict[str, npt.NDArray[Any]]:
        """The tensors a batch of packed points (rows × ``size``) feeds, by input name (``names`` renames them:
        a suspect whose inputs are named otherwise)."""
        rows = len(batch)
        flat = np.asarray(batch).reshape(rows, self.size)
        feeds: dict[str, npt.NDArray[Any]] = {}
        start = 0
        for value in self.inputs:
            name = names.get(value.name, value.name) if names else value.name
            if value.role == "data":
                feeds[name] = value.tensor(flat[:, start : start + value.size], rows)
                start += value.size
            else:
                feeds[name] = value.tensor(flat[:, :0], rows)
        return feeds

    def whole_numbers(self, points: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """``points`` with the slices of integer inputs rounded, as they are fed (what the evidence stores)."""
        flat = np.array(points, dtype=np.float32).reshape(len(points), self.size)
        start = 0
        for value in self.data:
            if value.integer:
                flat[:, start : start + value.size] = np.rint(flat[:, start : start + value.size])
            start += value.size
        return flat.reshape(np.shape(points))

    def describe(self) -> str:
        """One line: each input, its role and shape."""
        return "; ".join(
            f"{value.name} {value.dtype}{list(value.shape)} "
            + ("data" if value.role == "data" else f"held at {value.value:g} ({value.why})")
            for value in self.inputs
        )

    def to_json(self) -> list[dict[str, Any]]:
        return [value.to_json() for value in self.inputs]

    @staticmethod
    def from_json(records: list[Mapping[str, Any]]) -> Packing:
        packing = Packing(tuple(GraphInput.from_json(record) for record in records))
        if not packing.data:
            raise ValueError("no input is fed from the points")
        return packing


@dataclass(frozen=True)
class InputSpec:
    """The single data input of a classifier (float, or integer bytes or ids): name, per-sample shape, dtype, layout.

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
    packing: Packing | None = None
    """A model of several inputs: how each packed point (``sample_shape`` = (values,)) feeds them."""

    @property
    def batch_shape(self) -> tuple[int | str, ...]:
        return ("N" if self.fixed_batch is None else self.fixed_batch, *self.sample_shape)

    @property
    def integer(self) -> bool:
        """Integer inputs (bytes, token ids): no gradient, and every point must be whole numbers."""
        if self.packing is not None:
            return self.packing.integer
        return self.dtype.startswith(("int", "uint"))

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
    batch_axis: int | None = 0
    """The output's batch axis as onnxruntime returns it (measured by running the model with two batch sizes;
    ``--batch-axis``); None: the output has none (a model fed one sample at a time, e.g. ``[seq]``)."""
    class_axis: int = -1
    """The class axis of the output tensor (``--class-axis``); the last unless told."""
    heads: tuple[str, ...] = ()
    """Several outputs read as one classification (``--output-name a,b,c``): each head's scores are positions."""
    positions: int = 1
    """Classifications per sample (time steps, tokens, heads of one tensor): a point's label is then the class
    at one position (``position``), or the class with the highest mean score over them (``--position mean``)."""
    position: str = ""
    """Which position labels a sample (``--position``): "" the middle one, an index, or "mean" (which washes
    out where one class fills most positions: a tagger's 'no mark', CTC's blank — measured, BENCHMARKS.md)."""

    @property
    def site(self) -> str:
        """How a sample's label is read from this output, in words (recorded in the bundle)."""
        where = "no batch axis (one sample per run)" if self.batch_axis is None else f"batch axis {self.batch_axis}"
        if self.heads:
            where = f"{len(self.heads)} heads ({', '.join(self.heads)}), {where}"
        if self.positions == 1:
            return f"{where}, class axis {self.class_axis}"
        rule = (
            "the class with the highest mean score over them"
            if self.position == "mean"
            else f"the class at position {self.position_index} (of 0–{self.positions - 1}, flattened)"
        )
        return (
            f"{where}, class axis {self.class_axis}, {self.positions} positions per sample: a point's label is {rule}"
        )

    @property
    def position_index(self) -> int:
        """The flattened position that labels a sample (the middle one unless ``position`` names one)."""
        if self.position in ("", "mean"):
            return self.positions // 2
        return int(self.position) % max(self.positions, 1)

    def rows(self, result: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """One row per sample from what onnxruntime returned: batch axis first, class axis last, positions
        averaged (probabilities stay probabilities: their mean is one)."""
        values = np.asarray(result)
        if values.ndim == 0 or (self.batch_axis == 0 and self.positions == 1):
            return values  # N × C, N (a single unit or labels); unit axes are squeezed by the reader
        if self.batch_axis is None:
            values = values[None]
        batch, classes = site_axes(
            values.ndim,
            0 if self.batch_axis is None else self.batch_axis,
            self.class_axis,
            shifted=self.batch_axis is None,
        )
        if classes is None:
            return np.moveaxis(values, batch, 0)
        moved = np.moveaxis(values, (batch, classes), (0, -1)) if values.ndim > 1 else values
        if self.positions > 1:
            grid = moved.reshape(len(moved), -1, moved.shape[-1])
            chosen: npt.NDArray[Any] = grid.mean(axis=1) if self.position == "mean" else grid[:, self.position_index]
            return chosen
        return moved

    @property
    def has_scores(self) -> bool:
        return self.kind in ("logits", "probabilities", "binary-logit", "binary-probability", "probability-maps")

    @property
    def is_binary(self) -> bool:
        return self.kind in ("binary-logit", "binary-probability")


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


def site_axes(rank: int, batch: int, classes: int, *, shifted: bool = False) -> tuple[int, int | None]:
    """The batch and class axes of an output of ``rank`` axes as indices (the class axis counts from the
    output as returned; ``shifted``: a batch axis of one was put in front). The class axis defaults to the
    last; where that is the batch axis, the last other axis; None where the output has no other axis."""
    batch = batch % rank
    if shifted:
        classes = classes % (rank - 1) + 1 if rank > 1 else 0
    else:
        classes = classes % rank
    if classes == batch:
        others = [axis for axis in range(rank) if axis != batch]
        return batch, (others[-1] if others else None)
    return batch, classes


def guess_layout(sample_shape: tuple[int, ...]) -> Layout:
    """N×D is a vector; for images, a channel axis of 1, 3 or 4 picks NCHW or NHWC (NCHW when unclear)."""
    if len(sample_shape) == 1:
        return "ND"
    channels_first = sample_shape[0] in (1, 3, 4)
    channels_last = sample_shape[-1] in (1, 3, 4)
    if channels_last and not channels_first:
        return "NHWC"
    return "NCHW"
