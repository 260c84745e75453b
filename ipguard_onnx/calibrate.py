"""Calibrate a bundle's null agreement q0 and threshold on the owner's independent models, and re-sign it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .audit import audit
from .bundle import Bundle, load_bundle, save_bundle, utc_timestamp
from .errors import AuditError, SigningKeyError, UsageError
from .keys import key_id
from .stats import CALIBRATION_MARGIN, DEFAULT_FALSE_ACCUSATION_RATE, binomial_tail, threshold_for


@dataclass(frozen=True)
class CalibratedNegative:
    name: str
    sha256: str | None
    matching_rate: float


@dataclass(frozen=True)
class Calibration:
    """What ``calibrate`` measured and signed into the bundle."""

    bundle_path: Path
    negatives: tuple[CalibratedNegative, ...]
    null_agreement: float
    margin: float
    threshold: float
    false_accusation_rate: float
    p_value_at_threshold: float
    signer_key_id: str


def calibrate(
    bundle: Bundle | str | os.PathLike[str],
    negatives: Sequence[object],
    signing_key: Ed25519PrivateKey,
    *,
    output_path: str | os.PathLike[str] | None = None,
    false_accusation_rate: float = DEFAULT_FALSE_ACCUSATION_RATE,
    margin: float = CALIBRATION_MARGIN,
    providers: str = "auto",
    output_name: str | None = None,
) -> Calibration:
    """Audit independent models; set each evidence part's q0 = its highest matching rate + ``margin``, sign α =
    ``false_accusation_rate`` for the evidence rule, and the paper's rule's threshold for it over all points
    (the smallest m/n with P(Binomial(n, q0) ≥ m) ≤ α, q0 from the highest overall match); re-sign."""
    if not 0.0 < false_accusation_rate < 1.0:
        raise UsageError(f"--false-accusation-rate must lie in (0, 1), got {false_accusation_rate}")
    if not 0.0 <= margin < 1.0:
        raise UsageError(f"--margin must lie in [0, 1), got {margin}")
    if not negatives:
        raise UsageError("calibrate needs at least one --negative model (independent of the target)")
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    signer = key_id(signing_key.public_key())
    if signer != bundle.signer_key_id:
        raise SigningKeyError(
            f"{bundle.name} is signed by {bundle.signer_key_id}, the key given is {signer}; "
            "calibrate with the key that signed the fingerprint"
        )
    measured = []
    part_rates: list[list[float]] = [[] for _ in bundle.parts]
    for negative in negatives:
        result = audit(bundle, negative, providers=providers, output_name=output_name, threshold=1.0)
        if result.verdict == "inconclusive":
            raise AuditError(f"{result.suspect} answered too few points to calibrate with; check it or leave it out")
        measured.append(CalibratedNegative(result.suspect, result.suspect_sha256, result.matching_rate))
        for rates, part in zip(part_rates, result.parts, strict=True):
            rates.append(part.matching_rate)
    highest = max(n.matching_rate for n in measured)
    null = round(min(0.999, highest + margin), 6)
    points = len(bundle.points)
    threshold = threshold_for(points, null, false_accusation_rate)
    source = (
        f"calibrated on {len(measured)} independent model(s): highest matching rate on the part + margin {margin:g}"
    )
    parts = tuple(  # every evidence part gets its own q0 from its own highest match (the threshold stays overall)
        replace(part, null_agreement=round(min(0.999, max(rates) + margin), 6), null_agreement_source=source)
        for part, rates in zip(bundle.parts, part_rates, strict=True)
    )
    if threshold is None:
        raise UsageError(
            f"with {points} points and null agreement {null:.3f} (highest independent match {highest:.1%} + "
            f"{margin:g}) no matching rate reaches a false-accusation rate of {false_accusation_rate:g}; "
            "fingerprint more points (--n), try --unique, or accept a higher --false-accusation-rate"
        )
    record = replace(
        bundle.record,
        null_agreement=parts[0].null_agreement,
        mistakes_null_agreement=None,
        parts=parts,
        false_accusation_rate=false_accusation_rate,
        null_agreement_source=source,
        calibration=json.dumps(
            {
                "calibrated_at": utc_timestamp(),
                "false_accusation_rate": false_accusation_rate,
                "margin": margin,
                "negatives": [{"name": n.name, "sha256": n.sha256, "matching_rate": n.matching_rate} for n in measured],
            },
            sort_keys=True,
        ),
        threshold=threshold,
    )
    target = Path(output_path) if output_path is not None else bundle.path
    if target is None:
        raise UsageError("give an output path for a bundle that was not read from a file")
    save_bundle(target, bundle.tensors(), record, signing_key)
    return Calibration(
        bundle_path=target,
        negatives=tuple(measured),
        null_agreement=null,
        margin=margin,
        threshold=threshold,
        false_accusation_rate=false_accusation_rate,
        p_value_at_threshold=binomial_tail(round(threshold * points), points, null),
        signer_key_id=signer,
    )
