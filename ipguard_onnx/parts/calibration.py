"""Self-calibration (issue 24): every part's null agreement q0 measured on owner-made calibration references.

With owner data, ``fingerprint`` trains ``--calibration-references`` models the way an independent party would
— on the owner's inputs with their true classes (or, without labels, with the target's labels on different
random subsets, which agree with the target more and so keep q0 conservative), of the target's architecture and
of others — that took **no part** in choosing any point (a model that screened a point is biased towards
rejecting it). For a target that is not a network the surrogate re-initialises (a forest, an SVM, a linear
model), half the references are of classical kinds (forest, RBF SVM, logistic regression, boosted trees, k-NN).
q0 of each part is then an upper confidence bound over these references (``stats.null_agreement_bound``),
never their mean. Without data q0 stays at each kind's conservative default.
"""

from __future__ import annotations

import numpy as np

from ..stats import null_agreement_bound
from .base import MadePart, Workshop
from .owner_models import OwnerModel, architecture, classical, predictor, sklearn_missing, torch_missing, trained

MAX_EPOCHS = 100
MAX_TRAINING_ROWS = 2000
"""Each reference trains on a random subset of at most this many of the calibration half's rows (and on 3/4
of them at most, so that references differ in their data as independent parties do)."""
MAX_FEATURES = 4096
"""Inputs of more values than this are not self-calibrated (references would take minutes each)."""


def why_uncalibrated(shop: Workshop) -> str | None:
    """Why the parts' q0 cannot be measured here (None: it can)."""
    if shop.data is None:
        return "no owner data (--data) to train calibration references from"
    if shop.settings.calibration_references < 2:
        return "--calibration-references is below 2: no spread to bound"
    if shop.target.input_spec.integer:
        return f"input {shop.target.input_spec.name!r} takes whole numbers: no reference architecture fits it"
    if shop.features > MAX_FEATURES:
        return f"inputs of {shop.features:,} values: references would take minutes each (limit {MAX_FEATURES:,})"
    if shop.surrogate is None and sklearn_missing():
        return sklearn_missing()
    return torch_missing()


def calibration_references(shop: Workshop) -> list[OwnerModel]:
    """Train the held-out references (seeds of their own: no panel model is among them)."""
    data, truth = shop.calibration_data
    seed, count = shop.settings.seed, shop.settings.calibration_references
    truth = truth if truth is not None else shop.audit_labels(data)
    labelled = "the true classes" if shop.truth is not None else "the target's labels"
    classes = max(shop.target.num_classes or 0, int(truth.max()) + 1, 2)
    template = shop.surrogate.score_module if shop.surrogate is not None else None
    rows = min(MAX_TRAINING_ROWS, max(3 * len(data) // 4, 1))
    shop.say(f"self-calibration: training {count} calibration references held out from the panel")
    references = []
    for index in range(count):
        reference_seed = seed * 1000 + 900 + index
        subset = np.random.default_rng(reference_seed).permutation(len(data))[:rows]
        if template is None and index % 2 == 0:  # not a network to re-initialise: classical kinds instead
            predict, shape = classical(index // 2, data[subset], truth[subset], reference_seed)
            how = f"{shape}, {rows} owner rows no panel model saw, {labelled}, seed {reference_seed}"
            references.append(OwnerModel(f"calibration-{index}", how, predict))
            continue
        module, shape = architecture(index, template, shop.features, classes, reference_seed)
        module, epochs = trained(module, data[subset], truth[subset], seed=reference_seed, max_epochs=MAX_EPOCHS)
        how = f"{shape}, {rows} owner rows no panel model saw, {labelled}, {epochs} epochs, seed {reference_seed}"
        references.append(OwnerModel(f"calibration-{index}", how, predictor(module)))
    return references


def calibrated(part: MadePart, references: list[OwnerModel]) -> MadePart:
    """``part`` with q0 the upper bound over the references' matching rates on its points."""
    rates = [float((reference.predict(part.points) == part.labels).mean()) for reference in references]
    null = null_agreement_bound(rates, len(part.points))
    source = (
        f"self-calibrated on {len(references)} owner-made references held out from the panel: 95 % upper "
        f"bound (their rates: mean {np.mean(rates):.2f}, highest {max(rates):.2f})"
    )
    return MadePart(
        part.kind,
        part.points,
        part.labels,
        part.how,
        null,
        source,
        {**part.details, "calibration_rates": [round(rate, 4) for rate in rates]},
    )
