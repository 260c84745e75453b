"""Surrogate: the ONNX graph converted back to PyTorch (onnx2pytorch) for the gradient search.

The surrogate only proposes points; their labels always come from onnxruntime on the real file.
Before any search its outputs are checked against onnxruntime on a batch (parity), at run time.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import SurrogateError
from .models import FloatArray, OnnxClassifier

if TYPE_CHECKING:
    import onnx
    import torch

PARITY_TOLERANCE = 1e-3
"""Largest |surrogate − onnxruntime| score difference accepted, relative to max(1, |scores|)."""


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


def _constant_tensors(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    tensors = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    tensors[node.output[0]] = attribute.t
    return tensors


def release_fixed_batch(model: onnx.ModelProto, input_name: str) -> onnx.ModelProto:
    """Make a model exported with a fixed batch of 1 accept any batch, so all points search at once.

    The input's batch axis becomes symbolic, and constant Reshape targets that start with that 1
    (a flatten before the classifier head) start with -1 instead. Parity then checks the result.
    """
    import onnx
    from onnx import numpy_helper

    for value in model.graph.input:
        if value.name == input_name:
            value.type.tensor_type.shape.dim[0].dim_param = "N"
    for value in model.graph.output:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
            dims[0].dim_param = "N"
    del model.graph.value_info[:]
    constants = _constant_tensors(model)
    for node in model.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        proto = constants[node.input[1]]
        shape = numpy_helper.to_array(proto)
        if shape.ndim == 1 and len(shape) > 0 and shape[0] == 1 and -1 not in shape:
            shape = shape.copy()
            shape[0] = -1
            proto.CopyFrom(numpy_helper.from_array(shape, proto.name))
    onnx.checker.check_model(model)
    return model


def scores_of(module: torch.nn.Module, batch: torch.Tensor, *, probabilities: bool) -> torch.Tensor:
    """N × classes scores of a converted graph (or a fine-tuned copy): log-probabilities if it outputs
    probabilities, so Eq. 5 and cross-entropy see logit differences either way."""
    import torch

    output = module(batch)
    if isinstance(output, (list, tuple)):
        output = output[0]
    output = output.reshape(len(batch), -1).float()
    scores: torch.Tensor = torch.log(output.clamp_min(1e-12)) if probabilities else output
    return scores


class Surrogate:
    """A differentiable PyTorch copy of an ONNX classifier, returning scores to search on.

    If the graph outputs probabilities, ``logits`` returns log-probabilities: Eq. 5 then works on
    log p, whose differences are the same as the underlying logits' (softmax is shift-invariant).
    """

    def __init__(self, target: OnnxClassifier) -> None:
        import onnx

        if target.path is None:
            raise SurrogateError("a surrogate needs the ONNX file, not a live session; pass the model's path")
        self.target = target
        self.output_kind = target.output_spec.kind
        try:
            model = onnx.load(str(target.path))
        except Exception as exc:
            raise SurrogateError(f"cannot read {target.name} for conversion: {exc}") from None
        if target.input_spec.fixed_batch == 1:
            try:
                model = release_fixed_batch(model, target.input_spec.name)
            except Exception as exc:
                raise SurrogateError(
                    f"{target.name} is exported with a fixed batch of 1 and could not be "
                    f"made batchable ({type(exc).__name__}); re-export it with a dynamic batch axis"
                ) from None
        self.module = _convert(model, target.name)

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Scores Z(x) for Eq. 5 (log-probabilities if the graph ends in a softmax)."""
        return scores_of(self.module, batch, probabilities=self.output_kind == "probabilities")

    def raw_scores(self, batch: FloatArray) -> FloatArray:
        import torch

        with torch.no_grad():
            output = self.module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        if isinstance(output, (list, tuple)):
            output = output[0]
        return np.asarray(output.reshape(len(batch), -1).float().numpy(), dtype=np.float32)

    def check_parity(self, batch: FloatArray, *, tolerance: float = PARITY_TOLERANCE) -> ParityReport:
        """Compare surrogate and onnxruntime scores on ``batch``; raise if they disagree."""
        expected = self.target.scores(batch)
        try:
            got = self.raw_scores(batch)
        except Exception as exc:
            raise SurrogateError(
                f"the converted surrogate of {self.target.name} fails on a batch of "
                f"{len(batch)} ({type(exc).__name__}: {str(exc)[:200]}); re-export with a dynamic "
                "batch axis, or report the model to ipguard-onnx"
            ) from None
        if got.shape != expected.shape:
            raise SurrogateError(
                f"surrogate output shape {got.shape} differs from onnxruntime's {expected.shape} "
                f"for {self.target.name}; the conversion is not faithful"
            )
        scale = max(1.0, float(np.abs(expected).max()))
        report = ParityReport(
            points=len(batch),
            max_abs_difference=float(np.abs(got - expected).max()) / scale,
            label_agreement=float((got.argmax(1) == expected.argmax(1)).mean()),
            tolerance=tolerance,
        )
        if not report.ok:
            raise SurrogateError(
                f"the PyTorch surrogate disagrees with onnxruntime on {self.target.name}: "
                f"max relative score difference {report.max_abs_difference:.2e} (tolerance "
                f"{tolerance:.0e}), label agreement {report.label_agreement:.1%}; "
                "the gradient search would be misled, so nothing was fingerprinted"
            )
        return report


def _convert(model: onnx.ModelProto, name: str) -> torch.nn.Module:
    try:
        from onnx2pytorch import ConvertModel
    except Exception as exc:  # torchvision/torch mismatch surfaces here
        raise SurrogateError(
            f"the ONNX→PyTorch converter (onnx2pytorch) cannot be imported: {exc}; "
            "reinstall as the README says (torch and torchvision versions must match)"
        ) from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = ConvertModel(model, experimental=True)
    except NotImplementedError as exc:
        match = re.search(r"op_type=(\w+)", str(exc))
        op = match.group(1) if match else str(exc)[:120]
        raise SurrogateError(
            f"{name} uses ONNX op {op} (opset {opset}), which the PyTorch converter does not "
            "support; the model cannot be fingerprinted by gradient search"
        ) from None
    except Exception as exc:
        raise SurrogateError(
            f"converting {name} (opset {opset}) to PyTorch failed: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    converted: torch.nn.Module = module.eval()
    for parameter in converted.parameters():
        parameter.requires_grad_(False)
    return converted
