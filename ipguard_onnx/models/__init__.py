"""Model adapters: everything an audit can query. A small base, one file per kind of model.

* ``base``       the ``Classifier`` ABC and its one batch loop
* ``onnx_graph`` reading an ONNX graph: inputs, outputs, which to use, load errors
* ``onnx``       ``OnnxClassifier`` (onnxruntime) and the choice of providers
* ``function``   ``CallableClassifier`` (a Python callable)
* ``http``       ``HttpClassifier`` (a remote prediction API)

A new kind of suspect is a new file with a ``Classifier`` subclass, and a branch in ``as_classifier``.
Nothing here imports torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..discovery import is_url
from ..errors import AuditError
from ..types import Packing
from .base import Classifier, label_indices, sha256_file, unanswered
from .function import CallableClassifier
from .http import HttpClassifier, WireProtocol, headers_from_environment
from .onnx import OnnxClassifier, OnnxSuspect, binary_scores
from .onnx_graph import (
    choose_input,
    choose_output,
    describe_graph,
    describe_session,
    integer_ranges,
    non_differentiable_ops,
    read_model_specs,
)
from .providers import Providers, choose_providers, installed_onnxruntime_wheels

__all__ = [
    "CallableClassifier",
    "Classifier",
    "HttpClassifier",
    "OnnxClassifier",
    "OnnxSuspect",
    "Providers",
    "WireProtocol",
    "as_classifier",
    "binary_scores",
    "label_indices",
    "choose_input",
    "choose_output",
    "choose_providers",
    "describe_graph",
    "describe_session",
    "headers_from_environment",
    "installed_onnxruntime_wheels",
    "integer_ranges",
    "non_differentiable_ops",
    "read_model_specs",
    "sha256_file",
    "unanswered",
]


def as_classifier(
    suspect: object,
    *,
    providers: str = "auto",
    output_name: str | None = None,
    num_classes: int | None = None,
    model_timeout: float | None = None,
    packing: Packing | None = None,
    axes: tuple[int | None, int | None, str] = (None, None, ""),
) -> Classifier:
    """Wrap what the user holds: a Classifier, an ONNX path, an http(s) URL of a prediction API (auth from the
    environment, ``headers_from_environment``), an onnxruntime session, or a callable.

    For ONNX suspects ``output_name`` picks the output to read; ``num_classes`` (the fingerprint's)
    guides the automatic choice among several outputs; ``model_timeout`` bounds each run (``bounded``);
    ``packing`` (the fingerprint's, for a model of several inputs) says how a point feeds them; ``axes``
    (the fingerprint's ``--batch-axis``, ``--class-axis``) where the answer sits in the output.
    """
    if isinstance(suspect, Classifier):
        return suspect
    if is_url(suspect):
        return HttpClassifier(suspect, output_name=output_name, headers=headers_from_environment(), packing=packing)
    if isinstance(suspect, (str, os.PathLike)):
        return OnnxSuspect(
            Path(suspect),
            providers=providers,
            output_name=output_name,
            num_classes=num_classes,
            timeout=model_timeout,
            packing=packing,
            batch_axis=axes[0],
            class_axis=axes[1],
            position=axes[2],
        )
    onnxruntime = sys.modules.get("onnxruntime")  # a live session means it is imported already
    if onnxruntime is not None and isinstance(suspect, onnxruntime.InferenceSession):
        return OnnxSuspect(
            suspect,
            output_name=output_name,
            num_classes=num_classes,
            timeout=model_timeout,
            packing=packing,
            batch_axis=axes[0],
            class_axis=axes[1],
            position=axes[2],
        )
    if callable(suspect):
        return CallableClassifier(suspect)
    raise AuditError(
        f"cannot audit a {type(suspect).__name__}; pass an ONNX path, an onnxruntime session, "
        "a callable returning labels or scores, or an ipguard_onnx.Classifier"
    )
