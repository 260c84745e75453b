"""Models the owner makes from their own data while fingerprinting: owner-made students (what an API thief
would train) and references (what an independent party would train). Shared by the students part and
self-calibration (``parts.calibration``); the ``--unique`` panel (``search.panel``) makes its own the same way."""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..types import FloatArray, LabelArray

if TYPE_CHECKING:
    from torch import nn

MLP_WIDTHS = (64, 256, 32, 128)


def torch_missing() -> str | None:
    """Why owner-made models cannot be trained here (None: torch is installed)."""
    if importlib.util.find_spec("torch") is None:
        return "needs torch to train owner-made models: pip install 'ipguard-onnx[fingerprint]'"
    return None


@dataclass(frozen=True)
class OwnerModel:
    """One owner-made model: its name, how it was made, and its labels for a batch."""

    name: str
    how: str
    predict: Callable[[FloatArray], LabelArray]


def architecture(
    index: int, template: nn.Module | None, features: int, classes: int, seed: int
) -> tuple[nn.Module, str]:
    """Model ``index`` of a set: even indices the target's own architecture freshly initialised (when a
    surrogate gives it), the others one-hidden-layer perceptrons of varying width."""
    import torch
    from torch import nn as tnn

    torch.manual_seed(seed)
    if template is not None and index % 2 == 0:
        module = copy.deepcopy(template)
        for child in module.modules():
            reset = getattr(child, "reset_parameters", None)
            if callable(reset):
                reset()
        return module, "the target's architecture, re-initialised"
    hidden = MLP_WIDTHS[(index // 2 if template is not None else index) % len(MLP_WIDTHS)]
    mlp = tnn.Sequential(tnn.Flatten(), tnn.Linear(features, hidden), tnn.ReLU(), tnn.Linear(hidden, classes))
    return mlp, f"MLP {features}-{hidden}-{classes}"


CLASSICAL_KINDS = ("random forest", "RBF SVM", "logistic regression", "gradient-boosted trees", "k-nearest neighbours")
"""Reference kinds for a target that is not a network the surrogate can re-initialise (a forest, an SVM, a
linear model, a graph no converter reads): an independent party may have trained any of them, and one of the
target's own kind agrees with it far more than a network does (measured on the tree worlds, BENCHMARKS.md)."""


def classical(index: int, x: FloatArray, y: LabelArray, seed: int) -> tuple[Callable[[FloatArray], LabelArray], str]:
    """Reference ``index`` of ``CLASSICAL_KINDS`` (cycled) trained on ``x``, ``y``: its labels and its kind."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    kind = CLASSICAL_KINDS[index % len(CLASSICAL_KINDS)]
    makers = {
        "random forest": lambda: RandomForestClassifier(n_estimators=50, random_state=seed),
        "RBF SVM": lambda: SVC(C=1.0 + index, random_state=seed),
        "logistic regression": lambda: LogisticRegression(max_iter=2000),
        "gradient-boosted trees": lambda: HistGradientBoostingClassifier(max_iter=50, random_state=seed),
        "k-nearest neighbours": lambda: KNeighborsClassifier(n_neighbors=5),
    }
    flat = x.reshape(len(x), -1)
    model = makers[kind]().fit(flat, y)

    def predict(batch: FloatArray) -> LabelArray:
        labels: LabelArray = np.asarray(model.predict(batch.reshape(len(batch), -1)), dtype=np.int64)
        return labels

    return predict, kind


def sklearn_missing() -> str | None:
    """Why references of classical kinds cannot be trained here (None: scikit-learn is installed)."""
    if importlib.util.find_spec("sklearn") is None:
        return "needs scikit-learn for references of classical kinds: pip install 'ipguard-onnx[fingerprint]'"
    return None


def trained(module: nn.Module, x: FloatArray, y: LabelArray, *, seed: int, max_epochs: int) -> tuple[nn.Module, int]:
    """Train until ``module`` labels ``x`` as ``y`` on 99 % (or ``max_epochs``); returns it and the epochs."""
    from ..search.panel import train_until_agreement

    return train_until_agreement(module, x, y, seed=seed, max_epochs=max_epochs)


def predictor(module: nn.Module) -> Callable[[FloatArray], LabelArray]:
    """Class indices of a torch module, batch by batch, without gradients."""
    import torch

    module.eval()

    def predict(batch: FloatArray) -> LabelArray:
        with torch.no_grad():
            scores = module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        labels: LabelArray = scores.argmax(dim=1).numpy().astype(np.int64)
        return labels

    return predict
