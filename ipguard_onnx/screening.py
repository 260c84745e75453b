"""Beyond the paper: keep the boundary points that copies share and independent models do not.

On small inputs, independently trained models agree on many IPGuard points. With what an owner has
(the target and its training inputs) we build a *panel*: owner-made positives (pruned, weight-noised,
fine-tuned and last-layer-retrained copies of the surrogate) and references (models trained
independently, in seconds, on the owner's inputs labelled by the target; plus any the owner supplies).
A candidate pool several times larger than n, from a mix of margins k, is screened: a point is kept when
the positives label it like the target and as many references as possible label it differently
(the idea of conferrable adversarial examples, Lukas et al., ICLR 2021).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .models import Classifier, FloatArray, LabelArray
from .training import magnitude_pruned, train

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class PanelMember:
    """One model the candidates are screened with."""

    name: str
    role: str  # "positive" or "reference"
    how: str
    digest: str
    predict: Callable[[FloatArray], LabelArray]


@dataclass(frozen=True)
class ScreeningReport:
    panel: tuple[PanelMember, ...]
    pool: int
    kept: int
    build_seconds: float
    screen_seconds: float
    mean_reference_disagreement: float
    mean_positive_agreement: float


def _digest(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _predictor(module: nn.Module, flatten: bool) -> Callable[[FloatArray], LabelArray]:
    import torch

    def predict(batch: FloatArray) -> LabelArray:
        with torch.no_grad():
            inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            if flatten:
                inputs = inputs.reshape(len(inputs), -1)
            labels: LabelArray = module(inputs).argmax(dim=1).numpy().astype(np.int64)
        return labels

    return predict


def _reset(module: nn.Module) -> nn.Module:
    for child in module.modules():
        reset = getattr(child, "reset_parameters", None)
        if callable(reset):
            reset()
    return module


def _last_linear(module: nn.Module) -> nn.Module:
    from torch import nn as tnn

    layers = [m for m in module.modules() if isinstance(m, (tnn.Linear, tnn.Conv2d))]
    return layers[-1]


def build_panel(
    surrogate_module: nn.Module,
    data: FloatArray | None,
    data_labels: LabelArray | None,
    *,
    references: int,
    seed: int,
    supplied: Sequence[Classifier] = (),
    epochs: int = 15,
    retrained_copies: int = 2,
) -> list[PanelMember]:
    """Owner-made positives from the surrogate, references trained on the owner's inputs, and supplied ones."""
    import torch
    from torch import nn as tnn

    torch.manual_seed(seed)
    panel: list[PanelMember] = []

    def add(module: nn.Module, name: str, role: str, how: str, flatten: bool = False) -> None:
        panel.append(PanelMember(name, role, how, _digest(module), _predictor(module, flatten)))

    for fraction in (0.2, 0.4):
        add(
            magnitude_pruned(surrogate_module, fraction),
            f"pruned-{fraction:g}",
            "positive",
            f"{fraction:.0%} smallest weights per tensor set to 0",
        )
    noised = copy.deepcopy(surrogate_module)
    with torch.no_grad():
        for parameter in noised.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05 * parameter.std().clamp_min(1e-8))
    add(noised, "noised", "positive", "Gaussian weight noise, 5% of each tensor's std")
    if data is not None and data_labels is not None:
        x, y = data, data_labels
        tuned = train(copy.deepcopy(surrogate_module), x, y, seed=seed, epochs=max(2, epochs // 5), learning_rate=5e-4)
        add(tuned, "fine-tuned", "positive", f"all layers, {max(2, epochs // 5)} epochs, lr 5e-4, owner data")
        for copy_index in range(retrained_copies):
            for all_layers in (False, True):
                torch.manual_seed(seed * 100 + copy_index)
                copy_ = copy.deepcopy(surrogate_module)
                last = _last_linear(copy_)
                last.reset_parameters()  # type: ignore[operator]
                only = None if all_layers else list(last.parameters())
                rate = 5e-4 if all_layers else 1e-3
                retrained = train(
                    copy_, x, y, seed=seed * 100 + copy_index, epochs=max(3, epochs // 3), learning_rate=rate, only=only
                )
                scope = "all layers" if all_layers else "it"
                name = f"retrained-{'all' if all_layers else 'last'}-{copy_index}"
                add(retrained, name, "positive", f"last layer re-initialised, {scope} retrained, seed {copy_index}")
        features = int(np.prod(data.shape[1:]))
        classes = int(data_labels.max()) + 1
        for index in range(references):
            torch.manual_seed(seed * 1000 + index)
            if index % 2 == 0:  # same architecture as the target, fresh initialisation
                reference = train(
                    _reset(copy.deepcopy(surrogate_module)), x, y, seed=seed * 1000 + index, epochs=epochs
                )
                add(reference, f"reference-{index}", "reference", f"target architecture re-initialised, seed {index}")
            else:
                hidden = (64, 128, 256)[index // 2 % 3]
                mlp = tnn.Sequential(tnn.Linear(features, hidden), tnn.ReLU(), tnn.Linear(hidden, max(classes, 2)))
                reference = train(mlp, x.reshape(len(x), -1), y, seed=seed * 1000 + index, epochs=epochs)
                add(
                    reference,
                    f"reference-{index}",
                    "reference",
                    f"MLP {features}-{hidden}-{classes}, seed {index}",
                    flatten=True,
                )
    for classifier in supplied:
        digest = classifier.describe().get("sha256", "")[:16]

        def predict(batch: FloatArray, classifier: Classifier = classifier) -> LabelArray:
            answers = classifier.answer(batch)
            return np.asarray(
                [int(label) if ok else -1 for label, ok in zip(answers.labels, answers.answered, strict=True)],
                dtype=np.int64,
            )

        panel.append(PanelMember(classifier.name, "reference", "supplied with --reference", digest, predict))
    return panel


def screen(
    points: FloatArray, labels: LabelArray, panel: Sequence[PanelMember], n: int
) -> tuple[np.ndarray, float, float]:
    """Indices of the ``n`` most conferrable candidates.

    Score = (share of positives that label the point like the target) × (share of references that do
    not), the conferrability score of Lukas et al.; ties keep pool order (which is random).
    """
    positives = [m for m in panel if m.role == "positive"]
    references = [m for m in panel if m.role == "reference"]
    agree = np.stack([m.predict(points) == labels for m in positives]) if positives else np.ones((1, len(points)), bool)
    disagree = (
        np.stack([m.predict(points) != labels for m in references]) if references else np.ones((1, len(points)), bool)
    )
    score = agree.mean(axis=0) * disagree.mean(axis=0)
    chosen = np.argsort(-score, kind="stable")[:n].astype(np.int64)
    return chosen, float(disagree[:, chosen].mean()) if references else 0.0, float(agree[:, chosen].mean())
