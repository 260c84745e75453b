"""The target's own mistakes (AKH-style, as in QuRD's baseline; issue 14): samples of the owner's labelled data
the target labels wrong, with the wrong label. A student that learned the target's labels through its API
repeats them; an independent model mostly does not. They catch extracted and distilled students."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SearchError
from ..models import OnnxClassifier
from ..search import search_scores
from ..stats import MISTAKES_NULL_AGREEMENT
from ..types import FloatArray, LabelArray
from .base import MadePart, PartKind, Workshop, register

if TYPE_CHECKING:
    from ..fingerprint_settings import FingerprintSettings


@register
class MistakesPart(PartKind):
    """Made when ``--data`` carries the true classes (an ``.npz`` with ``y``) and the target gets some wrong."""

    name = "mistakes"
    summary = "the target's own mistakes on labelled owner data: students extracted or distilled through its API"

    def why_not(self, shop: Workshop) -> str | None:
        if shop.data is None or shop.truth is None:
            return "needs labelled owner data (--data FILE.npz with the true classes under 'y')"
        return None

    def make(self, shop: Workshop, wanted: int) -> MadePart:
        points, labels, found = _mistake_points(
            shop.target, shop.audit_labels, shop.settings, wanted, shop.data, shop.truth
        )
        how = f"{len(points)} of the target's {found} mistakes on the labelled owner data, middling confidence first"
        source = "default for the target's mistakes, uncalibrated: above every independent model measured on the zoos"
        return MadePart(self.name, points, labels, how, MISTAKES_NULL_AGREEMENT, source)


def _mistake_points(
    target: OnnxClassifier,
    audit_labels: Callable[[FloatArray], LabelArray],
    settings: FingerprintSettings,
    wanted: int,
    data: FloatArray | None,
    truth: LabelArray | None,
) -> tuple[FloatArray, LabelArray, int]:
    """Up to ``mistakes · n`` samples of the owner's data the target labels wrong (AKH-style, as in QuRD's
    baseline), the wrong label being the point's label; only where the scores and the label output agree,
    so the target matches itself. Mistakes of middling confidence come first (the margin nearest the
    median of all the mistakes'): the most confident ones are mostly label noise every model repeats, the
    least confident flip under fine-tuning (measured per quartile on the Fashion-MNIST zoo, BENCHMARKS.md)."""
    if not wanted or data is None or truth is None:
        return np.zeros((0, *target.input_spec.sample_shape), np.float32), np.zeros(0, np.int64), 0
    said = audit_labels(data)
    wrong = np.flatnonzero((said != truth) & (target.predict(data) == said))
    if target.output_spec.kind != "labels" and len(wrong):
        top = np.sort(search_scores(target.scores(data[wrong]), target.output_spec.kind), axis=1)
        margin = top[:, -1] - top[:, -2]
        wrong = wrong[np.argsort(np.abs(margin - np.median(margin)), kind="stable")]
    if not len(wrong) and settings.mistakes == 1.0:
        raise SearchError(
            f"{target.name} labels all {len(data)} samples of --data as their labels say: no mistakes to "
            "fingerprint with; lower --mistakes so the search makes the points"
        )
    chosen = wrong[:wanted]
    return data[chosen].astype(np.float32), said[chosen].astype(np.int64), len(wrong)
