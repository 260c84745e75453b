"""Small real models on scikit-learn's bundled digits, for the quickstart, the tests and the benchmarks.

Needs the ``demo`` extra (scikit-learn, onnxscript). Nothing here is on the fingerprint or audit path.
"""

from __future__ import annotations

import copy
import io
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .training import magnitude_pruned, train

__all__ = ["accuracy", "digits", "digits_cnn", "digits_mlp", "export_onnx", "fine_tuned", "pruned", "train"]

if TYPE_CHECKING:
    from torch import nn

    from .types import FloatArray, LabelArray


def digits(layout: str = "NCHW") -> tuple[FloatArray, LabelArray]:
    """The 1,797 8×8 digits scaled to [0, 1], as N×1×8×8 (NCHW), N×8×8×1 (NHWC) or N×64 (ND)."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x = (images / 16.0).astype(np.float32)
    shapes = {"NCHW": (-1, 1, 8, 8), "NHWC": (-1, 8, 8, 1), "ND": (-1, 64)}
    return x.reshape(shapes[layout]), labels.astype(np.int64)


def digits_cnn(*, seed: int, width: int = 16) -> nn.Module:
    """The demo target's architecture: two 3×3 convolutions, max-pool, two dense layers (seeded init)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 16, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def digits_mlp(*, seed: int, hidden: int = 128) -> nn.Module:
    """A different architecture for the same task: a one-hidden-layer perceptron over the 64 pixels."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def fine_tuned(model: nn.Module, x: FloatArray, y: LabelArray, *, seed: int, epochs: int = 3) -> nn.Module:
    """A pirate's fine-tuned copy (FTAL: all layers, a few epochs, small learning rate)."""
    return train(copy.deepcopy(model), x, y, seed=seed, epochs=epochs, learning_rate=5e-4)


def pruned(model: nn.Module, fraction: float) -> nn.Module:
    """A pirate's weight-pruned copy: the smallest ``fraction`` of each weight tensor set to zero."""
    return magnitude_pruned(model, fraction)


def accuracy(model: nn.Module, x: FloatArray, y: LabelArray) -> float:
    import torch

    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def export_onnx(model: nn.Module, sample: FloatArray, path: Path, *, dynamic_batch: bool = True) -> Path:
    """Export with today's torch.onnx.export (dynamo, one self-contained file, quietly)."""
    import torch

    # Trace with a batch of 2: torch.export specialises a traced batch of 1 into the graph.
    example = (torch.from_numpy(np.ascontiguousarray(sample[:2] if dynamic_batch else sample[:1])),)
    dynamic_shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            example,
            str(path),
            dynamo=True,
            external_data=False,
            dynamic_shapes=dynamic_shapes,
            input_names=["input"],
            output_names=["logits"],
        )
    return path
