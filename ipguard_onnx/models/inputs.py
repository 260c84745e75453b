"""Models of several inputs (issue 25): which inputs carry data and which are held, and how a point feeds them.

A point of such a model is the data inputs' values side by side (``types.Packing``); every other input —
a boolean mask, a length, a sample rate, recurrent state — is held at one value for every point. The rule,
in order (the first that applies decides, and is recorded as the input's ``why``):

1. ``--hold NAME=VALUE`` holds that input at VALUE;
2. a boolean input is a mask: held all true;
3. an input whose name says mask, length or state is held (mask 1, length the sequence length of the first
   data input, state 0);
4. an input with no batch axis (a scalar, a fixed-size tensor) cannot vary per point: held, and its value must
   be given with ``--hold`` (no value can be guessed for a sample rate);
5. every other float or integer input is data.

Symbolic sizes are resolved by symbol: a size fixed for one input (``--input-shape NAME=SHAPE``, the owner's
data, a declared size) fixes every dimension of the same name elsewhere. A suspect is fed the fingerprint's
packing by input name, else by position (``match_inputs``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from ..errors import UnsupportedModelError, UsageError
from ..types import MAX_SAMPLE_VALUES, GraphInput, Packing, ValueDescription


def shape_text(dims: tuple[int | str | None, ...]) -> str:
    """Declared dimensions as shown in messages: sizes, and ? for symbolic ones."""
    return "[" + ", ".join(str(d) if isinstance(d, int) and d > 0 else "?" for d in dims) + "]"


FLOAT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}
INTEGER_TYPES = {
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(uint16)": "uint16",
    "tensor(int16)": "int16",
}
BOOL_TYPE = "tensor(bool)"
_MASK = re.compile(r"mask", re.IGNORECASE)
_LENGTH = re.compile(r"(^|_)(len|lens|length|lengths|seq_len)($|_)", re.IGNORECASE)
_TOKEN_TYPE = re.compile(r"token_type|segment_ids|position_ids", re.IGNORECASE)
_STATE = re.compile(r"(^|_)(state|states|hidden|h0|c0|cache|past)($|_|\d)", re.IGNORECASE)


def _dtype(value: ValueDescription, model_name: str) -> str:
    if value.type == BOOL_TYPE:
        return "bool"
    dtype = FLOAT_TYPES.get(value.type) or INTEGER_TYPES.get(value.type)
    if dtype is None:
        shown = value.type.removeprefix("tensor(").removesuffix(")")
        raise UnsupportedModelError(
            f"{model_name}: input {value.name!r} is {shown}; ipguard-onnx feeds float, integer or boolean inputs"
        )
    return dtype


def _batch_symbol(inputs: list[ValueDescription]) -> int | str | None:
    """The batch axis's name (or None for an unnamed free axis): the symbolic name most inputs share (a batch
    runs through every batched input; a state ``[layers, N, H]`` still names N), else the first axis of the
    first input of rank ≥ 2."""
    counts: dict[str, int] = {}
    for value in inputs:
        for name in {d for d in value.dims if isinstance(d, str)}:
            counts[name] = counts.get(name, 0) + 1
    shared = [name for name, count in counts.items() if count == max(counts.values(), default=0) and count > 1]
    firsts = [value.dims[0] for value in inputs if value.dims and value.dims[0] in shared]
    if firsts:
        return firsts[0]
    for value in inputs:
        if len(value.dims) >= 2:
            return value.dims[0] if not isinstance(value.dims[0], int) or value.dims[0] > 0 else None
    return None


def _batch_axis(value: ValueDescription, symbol: int | str | None) -> int | None:
    """Where the batch sits in this input: the axis named like the batch; else a free first axis; else none."""
    if isinstance(symbol, str) and symbol in value.dims:
        return value.dims.index(symbol)
    if value.dims and (value.dims[0] is None or isinstance(value.dims[0], str)) and len(value.dims) >= 1:
        return 0
    if isinstance(symbol, int) and value.dims and value.dims[0] == symbol and len(value.dims) >= 2:
        return 0
    return None


def infer_packing(
    inputs: list[ValueDescription],
    model_name: str,
    *,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    holds: Mapping[str, float] | None = None,
) -> Packing:
    """Every input's role, shape and (held) value, by the module's rule."""
    shapes, holds = dict(shapes or {}), dict(holds or {})
    names = {value.name for value in inputs}
    for name in (*shapes, *holds):
        if name not in names:
            raise UsageError(f"{model_name} has no input named {name!r} (its inputs: {', '.join(sorted(names))})")
    symbol = _batch_symbol(inputs)
    axes = {value.name: _batch_axis(value, symbol) for value in inputs}
    sizes: dict[str, int] = {}  # symbolic dimension name → size, from every input whose size is known

    def per_sample(value: ValueDescription) -> tuple[int | str | None, ...]:
        axis = axes[value.name]
        return value.dims if axis is None else value.dims[:axis] + value.dims[axis + 1 :]

    for value in inputs:  # sizes the user or the graph fixes, by symbol
        dims = per_sample(value)
        given = shapes.get(value.name)
        if given is not None:
            if len(given) != len(dims):
                raise UsageError(
                    f"--input-shape {value.name}={','.join(map(str, given))}: input {value.name!r} has "
                    f"{len(dims)} dimensions per sample"
                )
            for declared, size in zip(dims, given, strict=True):
                if isinstance(declared, int) and declared > 0 and declared != size:
                    raise UsageError(f"--input-shape {value.name}: the graph fixes a size of {declared}, not {size}")
                if isinstance(declared, str):
                    sizes[declared] = size

    def resolved(value: ValueDescription) -> tuple[int, ...] | None:
        given = shapes.get(value.name)
        if given is not None:
            return tuple(given)
        out = []
        for declared in per_sample(value):
            if isinstance(declared, int) and declared > 0:
                out.append(declared)
            elif isinstance(declared, str) and declared in sizes:
                out.append(sizes[declared])
            else:
                return None
        return tuple(out)

    chosen: list[GraphInput] = []
    first_data_length: int | None = None
    pending_lengths: list[int] = []
    for value in inputs:
        dtype = _dtype(value, model_name)
        axis = axes[value.name]
        shape = resolved(value)
        if shape is None:
            shown = "×".join("?" if not isinstance(d, int) or d < 1 else str(d) for d in per_sample(value))
            raise UsageError(
                f"input {value.name!r} of {model_name} has symbolic sizes ({shown} per sample); pass "
                f"--input-shape {value.name}=SIZES (e.g. --input-shape {value.name}="
                f"{','.join('16' if not isinstance(d, int) or d < 1 else str(d) for d in per_sample(value))})"
            )
        role, held, why = "data", 0.0, "float or integer values that vary per point"
        if value.name in holds:
            role, held, why = "held", float(holds[value.name]), "--hold"
        elif dtype == "bool":
            role, held, why = "held", 1.0, "a boolean input reads as a mask: held all true"
        elif _MASK.search(value.name):
            role, held, why = "held", 1.0, "named a mask: held at 1 everywhere"
        elif _LENGTH.search(value.name):
            role, why = "held", "named a length: held at the first data input's sequence length"
            pending_lengths.append(len(chosen))
        elif _TOKEN_TYPE.search(value.name):
            role, held, why = "held", 0.0, "named like token types or positions: held at 0"
        elif _STATE.search(value.name):
            role, held, why = "held", 0.0, "named a state: held at 0 (a fresh start)"
        elif axis is None:
            raise UsageError(
                f"input {value.name!r} of {model_name} has no batch axis ({dtype}{list(shape)}), so it cannot "
                f"vary per point; pass --hold {value.name}=VALUE with the value deployments feed it"
            )
        if role == "data" and first_data_length is None:
            first_data_length = shape[0] if shape else 1
        chosen.append(GraphInput(value.name, shape, dtype, role, axis, held, why))  # type: ignore[arg-type]
    for index in pending_lengths:
        chosen[index] = replace(chosen[index], value=float(first_data_length or 1))
    packing = Packing(tuple(chosen))
    if not packing.data:
        raise UsageError(f"{model_name}: every input is held ({packing.describe()}); nothing is left to search over")
    if packing.size > MAX_SAMPLE_VALUES:
        raise UnsupportedModelError(
            f"{model_name}'s data inputs hold {packing.size:,} values per sample, more than the "
            f"{MAX_SAMPLE_VALUES:,} ipguard-onnx accepts"
        )
    return packing


def match_inputs(inputs: list[ValueDescription], packing: Packing, model_name: str) -> tuple[dict[str, str], str]:
    """How a suspect is fed a fingerprint's packing: the fingerprint's input names → the suspect's, and how.
    Inputs named alike are matched by name; the rest by position among the unmatched, and only where the
    suspect's input has the same rank and no declared size that contradicts the fingerprint's."""
    names = [value.name for value in inputs]
    wanted = [value.name for value in packing.inputs]
    if len(names) == len(wanted):
        by_name = {name: name for name in wanted if name in names}
        left_wanted = [name for name in wanted if name not in by_name]
        left_names = [name for name in names if name not in by_name.values()]
        described = {value.name: value for value in inputs}
        expected = {value.name: value for value in packing.inputs}
        pairs = dict(zip(left_wanted, left_names, strict=True))
        for ours, theirs in pairs.items():
            value, dims = expected[ours], described[theirs].dims
            axis = value.batch_axis
            sample = list(dims) if axis is None else [d for i, d in enumerate(dims) if i != axis]
            sizes = zip(sample, value.shape, strict=False)
            if len(sample) != len(value.shape) or any(isinstance(d, int) and d > 0 and d != n for d, n in sizes):
                raise UnsupportedModelError(
                    f"{model_name}'s input {theirs!r} ({shape_text(dims)}) cannot take the fingerprint's {ours!r} "
                    f"({value.dtype}{list(value.shape)}): the inputs match neither by name nor by position"
                )
        if not pairs:
            return by_name, "by name"
        how = ", ".join(f"{ours!r} → {theirs!r}" for ours, theirs in pairs.items())
        return {**by_name, **pairs}, f"by name where the names agree, else by position ({how})"
    raise UnsupportedModelError(
        f"{model_name} takes {len(names)} inputs ({', '.join(map(repr, names))}); the fingerprint feeds "
        f"{len(wanted)} ({', '.join(map(repr, wanted))}), neither by name nor by position"
    )
