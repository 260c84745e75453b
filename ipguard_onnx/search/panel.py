"""The panel behind ``--unique``: owner-made copies of the surrogate (positives) and independently
trained models (references), built in seconds from the owner's data.

Positives are last-layer-retrained, fine-tuned and pruned copies of the surrogate; references are
trained on bootstrap resamples of the owner's inputs labelled by the target (plus any the owner
supplies with ``--reference``).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..models import Classifier
from ..training import magnitude_pruned, train
from ..types import FloatArray, LabelArray

if TYPE_CHECKING:
    from torch import nn

PanelRole = Literal["positive", "reference"]
AGREEMENT_GOAL = 0.99
"""Panel models train until they label the owner's data like the target this often (or hit the epoch cap)."""
MAX_EPOCHS = 300
RETRAINED_COPIES = 3
PANEL_BUDGET = 50_000_000
"""Input values (rows × values per row, summed over epochs) each panel model may train on. Panel models only
choose points, so training them less costs power, never validity: q0 comes from the calibration references,
which are held out from the panel and trained to agreement (``parts.calibration``). The budget binds on inputs
of hundreds of values and thousands of rows (Fashion-MNIST's 2,700 panel rows: 23 epochs), not on the
small worlds (digits: 1,700 epochs, above ``MAX_EPOCHS``)."""
MIN_EPOCHS = 10


def epoch_cap(rows: int, values: int) -> int:
    """Most epochs a panel model trains on ``rows`` rows of ``values`` values each (``PANEL_BUDGET``)."""
    return max(MIN_EPOCHS, min(MAX_EPOCHS, PANEL_BUDGET // max(rows * values, 1)))


@dataclass(frozen=True)
class PanelMember:
    """One model the candidates are searched and screened with.

    ``module`` is set for models built here (differentiable, used in the search); supplied references
    only answer labels and are used to screen candidates.
    """

    name: str
    role: PanelRole
    how: str
    digest: str
    predict: Callable[[FloatArray], LabelArray]
    module: nn.Module | None = None
    agreement: float | None = None
    """Share of the owner's data this model labels like the target (None when not measured)."""


def _digest(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _predictor(module: nn.Module) -> Callable[[FloatArray], LabelArray]:
    import torch

    def predict(batch: FloatArray) -> LabelArray:
        with torch.no_grad():
            labels: LabelArray = (
                module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).argmax(dim=1).numpy()
            ).astype(np.int64)
        return labels

    return predict


def _reset(module: nn.Module) -> nn.Module:
    for child in module.modules():
        reset = getattr(child, "reset_parameters", None)
        if callable(reset):
            reset()
    return module


def _last_layer(module: nn.Module) -> nn.Module:
    from torch import nn as tnn

    return [m for m in module.modules() if isinstance(m, (tnn.Linear, tnn.Conv2d))][-1]


def _agreement(module: nn.Module, x: FloatArray, y: LabelArray) -> float:
    return float((_predictor(module)(x) == y).mean())


def train_until_agreement(
    module: nn.Module,
    x: FloatArray,
    y: LabelArray,
    *,
    seed: int,
    learning_rate: float = 1e-3,
    only: Sequence[nn.Parameter] | None = None,
    goal: float = AGREEMENT_GOAL,
    max_epochs: int = MAX_EPOCHS,
) -> tuple[nn.Module, int]:
    """Train five epochs at a time until ``module`` labels ``x`` as ``y`` at least ``goal`` of the time."""
    epochs = 0
    while epochs < max_epochs:
        step = min(5, max_epochs - epochs)
        train(module, x, y, seed=seed + epochs, epochs=step, learning_rate=learning_rate, only=only)
        epochs += step
        if _agreement(module, x, y) >= goal:
            break
    return module, epochs


STUDENT_QUERY_FACTOR = 4
"""An owner-made student sees the owner's data and three times as many synthetic queries."""


def extraction_queries(x: FloatArray, budget: int, seed: int) -> FloatArray:
    """What an extraction attacker sends: their data (or ``budget`` of its rows), then synthetic points up to
    ``budget`` — half rows with Gaussian noise (10 % of each feature's range), half mixtures of two rows — in the
    data's range. Also the queries of the benchmark zoo's extracted students (``benchmarks/zoo.py``)."""
    rng = np.random.default_rng(seed)
    if budget <= len(x):  # a budget the attacker's own data covers: that many of their rows
        subset: FloatArray = x[rng.permutation(len(x))[:budget]].astype(np.float32)
        return subset
    extra = budget - len(x)
    low, high = x.min(axis=0), x.max(axis=0)
    noisy = x[rng.integers(0, len(x), extra // 2)] + rng.normal(0, 0.1, (extra // 2, *x.shape[1:])) * (high - low)
    share = rng.random((extra - extra // 2,) + (1,) * (x.ndim - 1))
    mixed = share * x[rng.integers(0, len(x), len(share))] + (1 - share) * x[rng.integers(0, len(x), len(share))]
    queries: FloatArray = np.clip(np.concatenate([x, noisy, mixed]), low, high).astype(np.float32)
    return queries


def _pruning_levels(module: nn.Module, x: FloatArray, y: LabelArray) -> list[float]:
    """Magnitude-pruning levels a pirate could ship: 30% and the deepest of 10%, 20%, … that still
    labels the owner's data like the target within 3 points (Section 5.1.2's rule)."""
    deepest = 0.0
    for step in range(1, 10):
        if _agreement(magnitude_pruned(module, step / 10), x, y) < 0.97:
            break
        deepest = step / 10
    return sorted({0.3, deepest} - {0.0})


def build_panel(
    surrogate_module: nn.Module,
    data: FloatArray | None,
    data_labels: LabelArray | None,
    *,
    references: int,
    seed: int,
    supplied: Sequence[Classifier] = (),
    students: int = 0,
    label: Callable[[FloatArray], LabelArray] | None = None,
    reference_labels: LabelArray | None = None,
) -> list[PanelMember]:
    """Owner-made positives from the surrogate, references trained on the owner's inputs, and supplied ones.

    ``students`` > 0 adds positives an API thief would make (issue 14): models trained from scratch on the
    owner's inputs plus synthetic queries (``extraction_queries``), all labelled by the target (``label``).
    They copy the target off the data manifold, where the references — trained on the owner's inputs only —
    do not, so the conferrable search puts points there.

    ``reference_labels`` (the owner's ground truth) trains the references on the true classes instead of the
    target's labels, so they behave like models trained independently rather than like extracted students."""
    import torch
    from torch import nn as tnn

    torch.manual_seed(seed)
    panel: list[PanelMember] = []

    def add(module: nn.Module, name: str, role: PanelRole, how: str) -> None:
        module.eval()
        agreement = _agreement(module, data, data_labels) if data is not None and data_labels is not None else None
        panel.append(PanelMember(name, role, how, _digest(module), _predictor(module), module, agreement))

    if data is None or data_labels is None:
        add(magnitude_pruned(surrogate_module, 0.3), "pruned-0.3", "positive", "30% smallest weights set to 0")
        noised = copy.deepcopy(surrogate_module)
        with torch.no_grad():
            for parameter in noised.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.05 * parameter.std().clamp_min(1e-8))
        add(noised, "noised", "positive", "Gaussian weight noise, 5% of each tensor's std")
    else:
        x, y = data, data_labels
        features = int(np.prod(data.shape[1:]))
        cap = epoch_cap(len(x), features)
        for fraction in _pruning_levels(surrogate_module, x, y):
            add(
                magnitude_pruned(surrogate_module, fraction),
                f"pruned-{fraction:g}",
                "positive",
                f"{fraction:.0%} smallest weights per tensor set to 0",
            )
        tuned = train(copy.deepcopy(surrogate_module), x, y, seed=seed, epochs=5, learning_rate=5e-4)
        add(tuned, "fine-tuned", "positive", "all layers, 5 epochs, lr 5e-4, owner data")
        for copy_index in range(RETRAINED_COPIES):
            for all_layers in (False, True):
                copy_seed = seed * 100 + copy_index
                torch.manual_seed(copy_seed)
                copy_ = copy.deepcopy(surrogate_module)
                last = _last_layer(copy_)
                last.reset_parameters()  # type: ignore[operator]
                retrained, epochs = train_until_agreement(
                    copy_,
                    x,
                    y,
                    seed=copy_seed,
                    learning_rate=5e-4 if all_layers else 1e-3,
                    only=None if all_layers else list(last.parameters()),
                    max_epochs=cap,
                )
                scope = "all layers" if all_layers else "it"
                add(
                    retrained,
                    f"retrained-{'all' if all_layers else 'last'}-{copy_index}",
                    "positive",
                    f"last layer re-initialised, {scope} retrained {epochs} epochs, seed {copy_seed}",
                )
        classes = max(int(data_labels.max()) + 1, 2)
        truth = reference_labels if reference_labels is not None else y
        for index in range(references):
            reference_seed = seed * 1000 + index
            torch.manual_seed(reference_seed)
            resample = np.random.default_rng(reference_seed).integers(0, len(x), len(x))
            if index % 2 == 0:  # the target's own architecture, freshly initialised
                module: nn.Module = _reset(copy.deepcopy(surrogate_module))
                shape = "target architecture re-initialised"
            else:
                hidden = (32, 64, 128, 256)[index // 2 % 4]
                module = tnn.Sequential(
                    tnn.Flatten(), tnn.Linear(features, hidden), tnn.ReLU(), tnn.Linear(hidden, classes)
                )
                shape = f"MLP {features}-{hidden}-{classes}"
            trained, epochs = train_until_agreement(
                module, x[resample], truth[resample], seed=reference_seed, max_epochs=cap
            )
            extra = min(epochs * (index // 2 % 3), cap - epochs)  # 1×, 2× or 3× as long as needed: logit scales vary
            if extra:
                train(trained, x[resample], truth[resample], seed=reference_seed + 1, epochs=extra)
                epochs += extra
            labelled = "ground-truth labels" if reference_labels is not None else "the target's labels"
            add(
                trained,
                f"reference-{index}",
                "reference",
                f"{shape}, bootstrap resample, {labelled}, {epochs} epochs, seed {reference_seed}",
            )
    if students and data is not None and label is not None:
        features = int(np.prod(data.shape[1:]))
        classes = max(int(data_labels.max()) + 1 if data_labels is not None else 2, 2)
        for index in range(students):
            student_seed = seed * 1000 + 500 + index
            torch.manual_seed(student_seed)
            queries = extraction_queries(data, STUDENT_QUERY_FACTOR * len(data), student_seed)
            if index % 2 == 0:
                module = _reset(copy.deepcopy(surrogate_module))
                shape = "target architecture re-initialised"
            else:
                hidden = (64, 256)[index // 2 % 2]
                module = tnn.Sequential(
                    tnn.Flatten(), tnn.Linear(features, hidden), tnn.ReLU(), tnn.Linear(hidden, classes)
                )
                shape = f"MLP {features}-{hidden}-{classes}"
            student, epochs = train_until_agreement(
                module, queries, label(queries), seed=student_seed, max_epochs=epoch_cap(len(queries), features)
            )
            add(
                student,
                f"student-{index}",
                "positive",
                f"{shape}, extracted: owner data + "
                f"{len(queries) - len(data)} synthetic queries labelled by the target, {epochs} epochs, "
                f"seed {student_seed}",
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
