"""Composing a fingerprint from its evidence parts (issue 24, point 4): which kinds to build from what the owner
gives, each part's points checked on onnxruntime, and the signed list of parts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ..bundle import BundlePart
from ..errors import SearchError, UsageError
from ..stats import best_p_value
from .base import PART_KINDS, MadePart, Workshop
from .students import AUTO_MAX_FEATURES as STUDENTS_AUTO_MAX_FEATURES

if TYPE_CHECKING:
    from ..fingerprint_settings import FingerprintSettings


def compose(settings: FingerprintSettings, shop: Workshop) -> tuple[list[tuple[str, int, str]], list[str]]:
    """The parts to build — (kind, points wanted, why) — and the kinds left out with why (issue 24, point 4).

    By default from what the owner gives: boundary points always; with labelled ``--data`` the target's
    mistakes (n/2 more); with ``--data`` on inputs of ≤ ``students.AUTO_MAX_FEATURES`` values the points
    owner-made students share (n/2 more). ``--parts`` names them instead; ``--mistakes F`` takes a share F of
    ``--n`` from the mistakes (1: the mistakes alone) and 0 leaves them out."""
    half = max(settings.n // 2, 1)
    share = round((settings.mistakes or 0.0) * settings.n)
    sizes = {"boundary": settings.n - share if settings.mistakes else settings.n, "mistakes": share or half}
    if settings.parts is not None:
        plan = []
        for kind in settings.parts:
            reason = PART_KINDS[kind]().why_not(shop)
            if reason is not None:
                raise UsageError(f"--parts {kind}: {reason}")
            plan.append((kind, sizes.get(kind, half), "asked for with --parts"))
        return plan, []
    plan, skipped = [], []
    if settings.mistakes != 1.0:
        plan.append(("boundary", sizes["boundary"], "always: copies that keep the target's boundary"))
    mistakes_reason = PART_KINDS["mistakes"]().why_not(shop) if settings.mistakes != 0.0 else "--mistakes 0"
    if mistakes_reason is None:
        plan.append(
            ("mistakes", sizes["mistakes"], "--data has the true classes: students repeat the target's mistakes")
        )
    else:
        skipped.append(f"mistakes: {mistakes_reason}")
    students_reason = PART_KINDS["students"]().why_not(shop)
    if students_reason is None and shop.features > STUDENTS_AUTO_MAX_FEATURES:
        students_reason = (
            f"inputs of {shop.features:,} values: owner-made students would take minutes to train "
            f"(the default builds them up to {STUDENTS_AUTO_MAX_FEATURES}; --parts builds them anyway)"
        )
    if students_reason is None and settings.mistakes != 1.0:
        plan.append(("students", half, "--data given: points owner-made extracted students share"))
    elif students_reason is not None:
        skipped.append(f"students: {students_reason}")
    return plan, skipped


def checked(part: MadePart, shop: Workshop) -> MadePart:
    """Keep only points the target labels as the part says, through the output an audit reads and through its
    scores (effectiveness, Section 3.3). A point where they disagree, or whose label another batch does not
    reproduce (a forest's tied vote: summed in another order, 0.5 falls either side), is dropped; a part none
    of whose labels is reproduced is an error (an unstable provider)."""
    target, points, labels = shop.target, part.points, part.labels
    if not len(points):
        return part
    read = shop.audit_labels(points)
    same_view = target.output_spec.kind == "labels" or shop.audit_labels == target.predict
    scored = read if same_view else target.predict(points)  # the same run on the same batch: asked once
    if not ((read == labels) | (scored == labels)).any():  # each part labels through one of the two views
        raise SearchError(f"onnxruntime gives unstable labels on {target.name}; rerun with --providers cpu")
    agreed = (read == labels) & (scored == labels)  # a tie broken apart (by view or by batch) is no evidence
    if agreed.all():
        return part
    shop.tally.disagreement += int((~agreed).sum())
    return replace(part, points=points[agreed], labels=labels[agreed])


def bundle_parts(built: Sequence[tuple[MadePart, str]]) -> tuple[BundlePart, ...]:
    """The signed list: each part's kind, index range in the bundle, q0 and its source."""
    parts, start = [], 0
    for part, _ in built:
        stop = start + len(part.points)
        parts.append(BundlePart(part.kind, start, stop, part.null_agreement, part.null_agreement_source, part.how))
        start = stop
    return tuple(parts)


def without_weak_parts(
    built: list[tuple[MadePart, str]], alpha: float, asked: bool | frozenset[str]
) -> tuple[list[tuple[MadePart, str]], list[str]]:
    """Leave out composed parts that could never show a match: with every point matching, a part's p-value
    under its q0 would still exceed its Bonferroni share α / parts — it would only dilute the others' evidence
    (e.g. 12 mistakes that independent references repeat at 0.9). Boundary points, parts asked for by name
    (``asked``: every kind, or the kinds ``--parts``/``--mistakes`` named) and the last part always stay; the
    report says which parts were left out and why."""
    kept, dropped = list(built), list[str]()

    def named(kind: str) -> bool:
        return asked if isinstance(asked, bool) else kind in asked

    while len(kept) > 1:
        share = alpha / len(kept)
        weak = [
            (part, why)
            for part, why in kept
            if part.kind != "boundary"
            and not named(part.kind)
            and best_p_value(len(part.points), part.null_agreement) > share
        ]
        if not weak:
            return kept, dropped
        part, why = max(weak, key=lambda item: best_p_value(len(item[0].points), item[0].null_agreement))
        kept.remove((part, why))
        dropped.append(
            f"{part.kind}: built, then left out — with q0 = {part.null_agreement:.2f} even all "
            f"{len(part.points)} points matching give p = {best_p_value(len(part.points), part.null_agreement):.1e}, "
            f"above its share α / {len(kept) + 1} of the false-accusation rate"
        )
    return kept, dropped
