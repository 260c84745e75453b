"""Reading an ONNX graph without running it: its inputs and outputs, and which of them to use.

``choose_input`` and ``choose_output`` decide what a classifier is queried through; the wording of
every load failure lives here too. Imports onnx lazily (suspects need only onnxruntime's view).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError, UnsupportedModelError, UsageError
from ..types import (
    ANY_SIZE,
    MAX_SAMPLE_VALUES,
    InputSpec,
    OutputKind,
    OutputSpec,
    Packing,
    ValueDescription,
    guess_layout,
)
from .inputs import FLOAT_TYPES, INTEGER_TYPES, infer_packing, shape_text

_FLOAT_TYPES = FLOAT_TYPES
_INTEGER_TYPES = INTEGER_TYPES
_LABEL_TYPES = {"tensor(int64)", "tensor(int32)", "tensor(string)"}
_ONNX_ELEM_NAMES = {
    1: "float",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "double",
    12: "uint32",
    13: "uint64",
    16: "bfloat16",
}
_PROBABILITY_OPS = {"Softmax", "ZipMap"}
_SHAPE_ONLY_OPS = {"Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose", "Cast", "Concat"}
_LINEAR_OPS = {"Gemm", "MatMul", "Add", "Conv", "Sub", "Mul", "ReduceSum", "ReduceMean"}
_PROBABILITY_NAME = re.compile(r"prob|softmax|sigmoid|score|confidence", re.IGNORECASE)
MAX_FIXED_BATCH = 4096


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


def check_model_file(path: Path) -> None:
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

    check_model_file(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several unrelated types
        raise _not_onnx(path, type(exc).__name__) from None
    graph = model.graph
    if not graph.node or not graph.output:
        raise ModelLoadError(f"{path} has an empty ONNX graph; pass an exported classifier")
    initializers = {init.name for init in graph.initializer}
    nodes = {out: node for node in graph.node for out in node.output}

    def _is_exp(name: str) -> bool:
        node = nodes.get(name)
        while node is not None and node.op_type in _SHAPE_ONLY_OPS and node.input:
            node = nodes.get(node.input[0])
        return node is not None and node.op_type == "Exp"

    def producer(name: str) -> str | None:
        """The op that computes ``name``, looking through reshapes, casts and identities (a softmax
        spelled out as Exp, ReduceSum and Div is a Softmax)."""
        for _ in range(16):
            node = nodes.get(name)
            if node is None:
                return None
            if node.op_type == "Div" and len(node.input) == 2 and _is_exp(node.input[0]):
                return "Softmax"  # exp(z) / Σ exp(z), spelled out (jax2tf and tf2onnx graphs)
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


def load_error(path: Path, exc: Exception) -> ModelLoadError | UnsupportedModelError:
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


def choose_input(
    inputs: list[ValueDescription],
    model_name: str,
    *,
    input_shape: tuple[int, ...] | None = None,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    holds: Mapping[str, float] | None = None,
    packing: Packing | None = None,
    data_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> InputSpec:
    """The single data input, float or integer (bytes, token ids: searched gradient-free on integer
    points), of any rank ≥ 2 (vectors, sequences, spectrograms, images, volumes).

    The first axis is the batch (free or fixed at any size); symbolic per-sample dimensions stay
    ``ANY_SIZE`` unless ``input_shape`` (``--input-shape``) fixes them. A model that needs other
    inputs are packed (``inputs``): every point is their data inputs side by side, the others held;
    ``input_shapes`` and ``holds`` (``--input-shape NAME=…``, ``--hold NAME=VALUE``) decide for named inputs,
    and ``packing`` (a fingerprint's, for a suspect) is taken as it is.
    """
    if not inputs:
        raise UnsupportedModelError(f"{model_name} takes no input")
    if packing is not None or len(inputs) > 1 or holds:
        if packing is None and input_shape is not None:
            raise UsageError(
                f"{model_name} takes several inputs; name the one --input-shape sizes: --input-shape NAME=SIZES"
            )
        if packing is None:
            names = {value.name for value in inputs}  # the owner's arrays named like inputs fix their sizes too
            shapes = {name: shape for name, shape in (data_shapes or {}).items() if name in names}
            packing = infer_packing(inputs, model_name, shapes={**shapes, **(input_shapes or {})}, holds=holds)
        declared = {value.name: value.dims for value in inputs}
        batch_sizes = [
            declared[value.name][value.batch_axis]
            for value in packing.inputs
            if value.name in declared and value.batch_axis is not None and value.batch_axis < len(declared[value.name])
        ]
        fixed = {size for size in batch_sizes if isinstance(size, int) and size > 0}
        return InputSpec(
            name=", ".join(value.name for value in packing.data),
            sample_shape=(packing.size,),
            dtype="int64" if packing.integer else "float32",
            layout="ND",
            fixed_batch=min(fixed) if len(fixed) == 1 and min(fixed) <= MAX_FIXED_BATCH else None,
            shape_source="packed from the data inputs (" + packing.describe() + ")",
            packing=packing,
        )
    value = inputs[0]
    if input_shapes:
        if set(input_shapes) != {value.name}:
            raise UsageError(
                f"{model_name} has one input, {value.name!r}; --input-shape names {', '.join(map(repr, input_shapes))}"
            )
        input_shape = input_shapes[value.name]
    if value.type not in _FLOAT_TYPES and value.type not in _INTEGER_TYPES:
        type_name = value.type.removeprefix("tensor(").removesuffix(")")
        raise UnsupportedModelError(
            f"{model_name}: input {value.name!r} is {type_name}{shape_text(value.dims)}; ipguard-onnx "
            "fingerprints classifiers over float or integer inputs"
        )
    dims = value.dims
    if len(dims) < 2:
        raise UnsupportedModelError(
            f"{model_name}: input {value.name!r} has rank {len(dims)} (shape {shape_text(dims)}); expected a "
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
        dtype=_FLOAT_TYPES.get(value.type) or _INTEGER_TYPES[value.type],
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


def _fixed_class_axis(dims: tuple[int | str | None, ...]) -> bool:
    """The output's last axis (its classes) has a size the graph fixes (> 1), not one that follows the input."""
    return bool(dims) and isinstance(dims[-1], int) and dims[-1] > 1


def choose_output(
    outputs: list[ValueDescription],
    model_name: str,
    *,
    need_scores: bool,
    output_name: str | None = None,
    num_classes: int | None = None,
    declared: Mapping[str, tuple[int | str | None, ...]] | None = None,
) -> OutputSpec:
    """The answer to read, and why it was chosen.

    ``output_name`` (``--output-name``) picks one by name. Otherwise a target reads a float class-score
    output — one whose class count is ``num_classes`` when known (an audit knows the bundle's), else the
    probability-like one (a Softmax/Sigmoid producer or a name like ``prob``), else the first; a
    single-unit output is a 2-class classifier. A suspect reads its label output when it has one
    (scikit-learn exports), then scores as above, then ZipMap probability maps. Among several float outputs,
    one whose class axis the graph fixes is preferred to one whose class axis follows the input (``declared``:
    the graph's own dims, where ``outputs`` holds sizes measured by a run).
    """
    scores: list[OutputSpec] = []
    labels: list[OutputSpec] = []
    maps: list[OutputSpec] = []
    for value in outputs:
        dims = value.dims
        wide = [d for d in dims[1:] if d != 1]
        if value.type in _FLOAT_TYPES and len(wide) > 1:  # several classifications per sample: positions × C
            sizes = [d for d in wide if isinstance(d, int) and d > 0]
            if len(sizes) == len(wide):
                positions = int(np.prod(sizes[:-1]))
                kind_ = "probabilities" if value.producer in _PROBABILITY_OPS else "logits"
                scores.append(OutputSpec(value.name, sizes[-1], kind_, positions=positions))  # type: ignore[arg-type]
            else:
                scores.append(OutputSpec(value.name, None, "logits"))  # sizes known once the model has run
        elif value.type in _FLOAT_TYPES and dims:
            classes = _class_axis(dims)
            if classes == 1 and not need_scores and num_classes is not None and num_classes > 2:
                # one float per point is no 2-class score against a C > 2 fingerprint: labels cast to float
                why = f"one float per point against the fingerprint's {num_classes} classes: read as class labels"
                labels.append(OutputSpec(value.name, None, "labels", chosen_because=why))
            elif classes == 1:
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
    described = ", ".join(
        f"{v.name!r} {v.type.removeprefix('tensor(').removesuffix(')')}{shape_text(v.dims)}" for v in outputs
    )
    if output_name is not None and "," in output_name:  # several heads, read as one classification
        names = [name.strip() for name in output_name.split(",")]
        heads = [next((s for s in scores if s.name == name), None) for name in names]
        missing = [name for name, head in zip(names, heads, strict=True) if head is None]
        if missing or len(set(names)) != len(names):
            raise UnsupportedModelError(
                f"{model_name}: --output-name lists {', '.join(map(repr, missing or names))}, which are not "
                f"distinct class-score outputs (outputs: {described})"
            )
        found = [head for head in heads if head is not None]
        if len({(head.num_classes, head.kind, head.positions) for head in found}) != 1 or found[0].num_classes is None:
            raise UnsupportedModelError(
                f"{model_name}: the heads {', '.join(map(repr, names))} differ in class count or kind; heads are "
                "read jointly only where they score the same classes"
            )
        first = found[0]
        return replace(
            first,
            heads=tuple(names),
            positions=sum(head.positions for head in found),
            chosen_because=f"--output-name: {len(names)} heads read jointly",
        )
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
    declared = declared if declared is not None else {value.name: value.dims for value in outputs}
    probability_like = [
        s
        for s in scores
        if s.kind in ("probabilities", "binary-probability")
        or _PROBABILITY_NAME.search(s.name)
        or (s.name in {v.name for v in outputs if v.producer in ("Softmax", "Sigmoid")})
    ]

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
        fixed = [s for s in known if _fixed_class_axis(declared[s.name])]
        if fixed and len(fixed) < len(known):  # a class axis whose size follows the input is no set of classes
            others = ", ".join(repr(s.name) for s in known if s not in fixed)
            why = (
                f"its class axis has a fixed size, {others} one that follows the input (a pairwise or "
                "attention map, not classes); pass --output-name to choose"
            )
            return replace(fixed[0], chosen_because=why)
        alike = [
            s.name
            for s in known
            if (s.num_classes, s.kind, s.positions) == (known[0].num_classes, known[0].kind, known[0].positions)
        ]
        hint = f"; --output-name {','.join(alike)} reads these {len(alike)} heads jointly" if len(alike) > 1 else ""
        return replace(
            known[0], chosen_because="the first of several float outputs; pass --output-name to choose" + hint
        )

    if need_scores:
        chosen = pick_scores()
        if chosen is not None:
            return chosen
        if maps and len(maps) == 1:
            return replace(maps[0], chosen_because="probability maps (ZipMap), the only class scores")
        if len(labels) == 1:  # the gradient-free search can still cross its boundaries, decision-based
            return replace(labels[0], chosen_because="its only answer: labels, no class scores (decision-based)")
        raise UnsupportedModelError(
            f"{model_name} has no class-score output (a float N×C tensor with C ≥ 2, or a single unit); "
            f"outputs: {described}; export the classifier's logits or probabilities"
        )
    if labels:
        return labels[0] if labels[0].chosen_because else replace(labels[0], chosen_because="its label output")
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


NON_DIFFERENTIABLE_OPS = frozenset(
    {
        "TreeEnsembleClassifier",
        "TreeEnsembleRegressor",
        "TreeEnsemble",
        "LinearClassifier",
        "SVMClassifier",
        "SVMRegressor",
        "LabelEncoder",
        "CategoryMapper",
        "Binarizer",
        "OneHotEncoder",
        "ArgMax",
        "ArgMin",
        "TopK",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
        "DequantizeLinear",
    }
)
"""Operators with no gradient a surrogate could follow (ai.onnx.ml models, integer kernels, hard choices)."""


def non_differentiable_ops(path: Path) -> tuple[str, ...]:
    """The operators of ``NON_DIFFERENTIABLE_OPS`` the graph at ``path`` holds (sub-graphs included), sorted."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    found: set[str] = set()

    def visit(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            if node.op_type in NON_DIFFERENTIABLE_OPS:
                found.add(str(node.op_type))
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    visit(attribute.g)

    visit(model.graph)
    return tuple(sorted(found))


_METADATA_OPS = {"Shape", "Size", "ConstantOfShape", "NonZero", "Range"}
"""Operators whose outputs describe a tensor's shape, not its ids: the search for an id reader stops there."""
MAX_ID_DEPTH = 12


def integer_ranges(path: Path) -> dict[str, tuple[int, int, str]]:
    """For each integer input of the graph at ``path``, the ids it reads, where the graph says: the rows of an
    embedding table (``Gather`` on a constant), a ``OneHot``'s depth, or the values an ``Equal`` compares with
    (a one-hot spelled out, as jax2tf exports it) — (lowest, highest, how it was found). The nearest such reader
    downstream of the input counts (within ``MAX_ID_DEPTH`` operators, never through shape operators: a
    position table indexed by the sequence length is no vocabulary); inputs no reader reaches are left out."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    constants: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for tensor in graph.initializer:
        shapes[tensor.name] = tuple(int(d) for d in tensor.dims)
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            constants[tensor.name] = numpy_helper.to_array(tensor)
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            shapes[node.output[0]] = constants[node.output[0]].shape
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    integer = {"tensor(int64)", "tensor(int32)", "tensor(int16)", "tensor(int8)", "tensor(uint8)", "tensor(uint16)"}
    ranges: dict[str, tuple[int, int, str]] = {}
    for value in graph.input:
        if value.name in shapes or _type_string(value.type) not in integer:
            continue
        frontier, seen = [value.name], {value.name}
        for _ in range(MAX_ID_DEPTH):
            found = [
                f
                for name in frontier
                for node in readers.get(name, [])
                for f in _ids_read(node, name, constants, shapes)
            ]
            if found:
                ranges[value.name] = (min(f[0] for f in found), max(f[1] for f in found), found[0][2])
                break
            following = [
                out
                for name in frontier
                for node in readers.get(name, [])
                if node.op_type not in _METADATA_OPS
                for out in node.output
                if out and out not in seen
            ]
            seen.update(following)
            frontier = following
            if not frontier:
                break
    return ranges


def _ids_read(
    node: object, name: str, constants: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]]
) -> list[tuple[int, int, str]]:
    """The id range ``node`` reads from its input ``name``, where it is a constant lookup (else none); an
    embedding table may live in external data (its shape is enough)."""
    op, inputs = node.op_type, list(node.input)  # type: ignore[attr-defined]
    attributes = {a.name: a for a in node.attribute}  # type: ignore[attr-defined]
    if op == "Gather" and len(inputs) > 1 and inputs[1] == name and inputs[0] in shapes:
        table = shapes[inputs[0]]
        axis = int(attributes["axis"].i) if "axis" in attributes else 0
        if table and table[axis % len(table)] > 1:
            return [(0, int(table[axis % len(table)]) - 1, f"the rows of the embedding table {inputs[0]!r}")]
    if op == "OneHot" and len(inputs) > 1 and inputs[0] == name and inputs[1] in constants:
        depth = int(np.asarray(constants[inputs[1]]).reshape(-1)[0])
        if depth > 1:
            return [(0, depth - 1, f"the depth of a OneHot ({depth})")]
    if op == "Equal" and len(inputs) == 2 and name in inputs:
        other = inputs[1] if inputs[0] == name else inputs[0]
        values = constants.get(other)
        if values is not None and values.size > 1 and np.issubdtype(values.dtype, np.integer):
            return [(int(values.min()), int(values.max()), f"the {values.size} ids an Equal compares with (a one-hot)")]
    return []
