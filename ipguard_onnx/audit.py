"""Audit: ask a suspect for labels of the fingerprint points and compare (IPGuard's Verify, Section 3.2).

Never imports torch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundle import Bundle, load_bundle
from .errors import AuditError, UnsupportedModelError
from .models import Classifier, FloatArray, OnnxClassifier


@dataclass(frozen=True)
class AuditResult:
    """One suspect against one fingerprint: the matching rate m/n and the verdict at the threshold."""

    suspect: str
    suspect_sha256: str | None
    fingerprint: str
    fingerprint_sha256: str
    signer_key_id: str
    signer_pinned: bool
    matching_rate: float
    matched: bool
    threshold: float
    points_queried: int
    points_matched: int
    points_skipped: int
    providers: tuple[str, ...]
    seconds: float

    @property
    def verdict(self) -> str:
        return "match" if self.matched else "no match"


def adapt_points(points: FloatArray, bundle: Bundle, suspect: Classifier) -> FloatArray:
    """Fit the fingerprint points to the suspect's input: same shape, or NCHW↔NHWC."""
    spec = suspect.input_spec
    if spec is None or tuple(points.shape[1:]) == spec.sample_shape:
        return points
    source = bundle.input_spec
    if points.ndim == 4 and len(spec.sample_shape) == 3:
        nhwc = points.transpose(0, 2, 3, 1)
        if tuple(nhwc.shape[1:]) == spec.sample_shape:
            return np.ascontiguousarray(nhwc)
        nchw = points.transpose(0, 3, 1, 2)
        if tuple(nchw.shape[1:]) == spec.sample_shape:
            return np.ascontiguousarray(nchw)
    raise AuditError(
        f"suspect {suspect.name} takes inputs of shape {spec.sample_shape}, the fingerprint's points "
        f"are {tuple(points.shape[1:])} ({source.layout}); audit a suspect of the same task and input size"
    )


def audit(
    bundle: Bundle | str | os.PathLike[str],
    suspect: Classifier | str | os.PathLike[str],
    *,
    threshold: float | None = None,
    providers: str = "auto",
) -> AuditResult:
    """Query ``suspect`` with the fingerprint points; matched when m/n ≥ threshold (Section 3.2)."""
    started = time.perf_counter()
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    if not isinstance(suspect, Classifier):
        suspect = OnnxClassifier(Path(suspect), providers=providers)
    threshold = bundle.threshold if threshold is None else threshold
    if not 0.0 <= threshold <= 1.0:
        raise AuditError(f"threshold must lie in [0, 1], got {threshold}")
    points = adapt_points(bundle.points, bundle, suspect)
    try:
        answers = np.asarray(suspect.predict(points))
    except UnsupportedModelError as exc:
        raise AuditError(str(exc)) from None
    if answers.shape != bundle.labels.shape:
        raise AuditError(
            f"suspect {suspect.name} returned {answers.shape} labels for {len(points)} points; "
            "it must return one label per point"
        )
    matched_points = int((answers == bundle.labels).sum())
    queried = len(points)
    rate = matched_points / queried
    description = suspect.describe()
    return AuditResult(
        suspect=suspect.name,
        suspect_sha256=description.get("sha256"),
        fingerprint=bundle.name,
        fingerprint_sha256=bundle.sha256,
        signer_key_id=bundle.signer_key_id,
        signer_pinned=bundle.signer_pinned,
        matching_rate=rate,
        matched=rate >= threshold,
        threshold=threshold,
        points_queried=queried,
        points_matched=matched_points,
        points_skipped=0,
        providers=tuple(p for p in description.get("providers", "").split(",") if p),
        seconds=time.perf_counter() - started,
    )
