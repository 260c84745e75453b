"""Adapting the fingerprint's points to a suspect's conventions: image axis order, channel order,
spatial size, a flatten to N×D, whole numbers for integer inputs. The adapters' side of an audit: the
audit asks, this module makes the question fit (paper Section 5.3 resizes its points for ImageNet models).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import AuditError, UsageError
from ..text import shown
from ..types import ANY_SIZE, FloatArray, InputSpec
from .base import Classifier

__all__ = ["IMAGE_AXES", "MAX_ADAPTED_VALUES", "fit_points", "parse_layout"]


def _resize(points: FloatArray, height: int, width: int, channels_first: bool) -> FloatArray:
    """Bilinear resize of every channel (the paper resizes its points for ImageNet models)."""
    from PIL import Image

    images = points if channels_first else points.transpose(0, 3, 1, 2)
    resized = np.empty((len(images), images.shape[1], height, width), np.float32)
    for i, image in enumerate(images):
        for c, channel in enumerate(image):
            pil = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32), mode="F")
            resized[i, c] = np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR))
    return resized if channels_first else np.ascontiguousarray(resized.transpose(0, 2, 3, 1))


IMAGE_AXES = frozenset("NCHW")
MAX_ADAPTED_VALUES = 1 << 28
"""The most input values an audit prepares for one suspect (1 GiB of float32: 100 points of 1,600×1,600 RGB)."""


def parse_layout(text: str) -> str:
    """A suspect's image axis order: the letters N, C, H and W in any order (e.g. NHWC, NWHC)."""
    layout = text.strip().upper()
    if len(layout) != 4 or set(layout) != IMAGE_AXES or layout[0] != "N":
        raise UsageError(
            f"--suspect-layout must be N then the letters C, H and W in any order (e.g. NHWC or NWHC), "
            f"got {shown(text)!r}"
        )
    return layout


def fit_points(
    points: FloatArray,
    source: InputSpec,
    suspect: Classifier,
    *,
    layout: str | None = None,
    bgr: bool = False,
) -> tuple[FloatArray, tuple[str, ...]]:
    """Fit the fingerprint points (taken as ``source`` describes) to the suspect's input: any image axis
    order, channel order, spatial resize, or a flatten to N×D, then whole numbers for an integer input.
    ``layout`` (``--suspect-layout``) overrides the guessed image layout; ``bgr`` reverses the channels.
    Symbolic suspect dimensions take the points' sizes. Returns the points and the steps taken, in words."""
    fitted, steps = _fit_shape(points, source, suspect, layout=layout, bgr=bgr)
    return _whole_numbers(fitted, suspect, steps)


def _fit_shape(
    points: FloatArray,
    source: InputSpec,
    suspect: Classifier,
    *,
    layout: str | None = None,
    bgr: bool = False,
) -> tuple[FloatArray, tuple[str, ...]]:
    spec = suspect.input_spec
    steps: list[str] = []
    if spec is not None and ANY_SIZE not in spec.sample_shape:
        values = len(points) * math.prod(spec.sample_shape)
        if values > MAX_ADAPTED_VALUES:  # a suspect (or a server's metadata) declaring 4096×4096 inputs
            raise AuditError(
                f"suspect {suspect.name} takes inputs of shape {spec.sample_shape}: the fingerprint's "
                f"{len(points)} points adapted to it would hold {values:,} values, more than the "
                f"{MAX_ADAPTED_VALUES:,} an audit prepares; it is not a model of the fingerprint's task"
            )
    if points.ndim == 4:  # images: work in NCHW, then order the axes as the suspect wants
        nchw = points if source.layout != "NHWC" else np.ascontiguousarray(points.transpose(0, 3, 1, 2))
        if bgr:
            nchw = np.ascontiguousarray(nchw[:, ::-1])
            steps.append("RGB → BGR")
        wanted = layout or (spec.layout if spec is not None and spec.layout in ("NCHW", "NHWC") else source.layout)
        if wanted == "ND":
            wanted = "NCHW"
        if spec is not None and len(spec.sample_shape) == 3:
            sizes = dict(zip(wanted[1:], spec.sample_shape, strict=True))
            if sizes["C"] not in (ANY_SIZE, nchw.shape[1]):
                raise AuditError(
                    f"suspect {suspect.name} takes {sizes['C']} channels in layout {wanted} (input shape "
                    f"{spec.sample_shape}); the fingerprint's points have {nchw.shape[1]}: pass --suspect-layout "
                    "if its axes are in another order"
                )
            height = nchw.shape[2] if sizes["H"] == ANY_SIZE else sizes["H"]
            width = nchw.shape[3] if sizes["W"] == ANY_SIZE else sizes["W"]
            if (height, width) != tuple(nchw.shape[2:]):
                steps.append(f"resized {nchw.shape[2]}×{nchw.shape[3]} → {height}×{width}")
                nchw = _resize(nchw, height, width, channels_first=True)
        order = ["NCHW".index(axis) for axis in wanted]
        if order != [0, 1, 2, 3]:
            nchw = np.ascontiguousarray(nchw.transpose(order))
        if wanted != source.layout or layout is not None:
            steps.append(f"{source.layout} → {wanted}")
        if spec is None or spec.fits(tuple(nchw.shape[1:])):
            return nchw, tuple(steps)
        points = nchw
    elif bgr or layout is not None:
        raise UsageError("--bgr and --suspect-layout apply to image fingerprints (N×C×H×W or N×H×W×C points)")
    if spec is None or spec.fits(tuple(points.shape[1:])):
        return points, tuple(steps)
    if len(spec.sample_shape) == 1 and int(np.prod(points.shape[1:])) == spec.sample_shape[0]:
        return points.reshape(len(points), -1), (*steps, f"flattened {tuple(points.shape[1:])} → {spec.sample_shape}")
    shown = tuple("?" if d == ANY_SIZE else d for d in spec.sample_shape)
    raise AuditError(
        f"suspect {suspect.name} takes inputs of shape {shown}, the fingerprint's points "
        f"are {tuple(points.shape[1:])} ({source.layout}); audit a suspect of the same task and input size"
    )


def _whole_numbers(
    points: FloatArray, suspect: Classifier, steps: tuple[str, ...]
) -> tuple[FloatArray, tuple[str, ...]]:
    """Points for a suspect that takes integers: rounded (not truncated) and said so in the report; refused
    when rounding would erase them (points within one unit, e.g. pixels in [0, 1] for a 0–255 model)."""
    spec = suspect.input_spec
    if spec is None or not spec.integer or not len(points):
        return points, steps
    rounded = np.rint(points)
    if np.array_equal(rounded, points):
        return points, steps
    if float(points.max() - points.min()) <= 1.0:
        raise AuditError(
            f"suspect {suspect.name} takes {spec.dtype} inputs and the fingerprint's points lie within one unit: "
            "rounding would erase them; pass --input-scale (e.g. 255 for 0–255 pixels) if that is how it takes them"
        )
    return rounded.astype(np.float32), (*steps, f"rounded to whole numbers ({spec.dtype} input)")
