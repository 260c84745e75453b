"""Evidence parts (issue 24): the family of point kinds a fingerprint is made of, and their self-calibration."""

from __future__ import annotations

from . import boundary, mistakes, students  # noqa: F401  (each registers its kind)
from .base import MIN_PART_POINTS, PART_KINDS, CandidateLoop, MadePart, PartKind, SearchTally, Workshop, register
from .calibration import calibrated, calibration_references, why_uncalibrated

__all__ = [
    "MIN_PART_POINTS",
    "PART_KINDS",
    "CandidateLoop",
    "MadePart",
    "PartKind",
    "SearchTally",
    "Workshop",
    "calibrated",
    "calibration_references",
    "register",
    "why_uncalibrated",
]
