"""Points owner-made extracted students share (issue 24): the owner trains students the way an API thief would
(their data plus synthetic queries, labelled by the target) and references the way an independent party would
(the owner's data with its true classes); the points are synthetic queries near the data where every student
says the target's label and the references do not. A student a thief extracts learns the same labels there."""

from __future__ import annotations

import numpy as np

from ..search.panel import extraction_queries
from ..stats import MISTAKES_NULL_AGREEMENT
from .base import MadePart, PartKind, Workshop, register
from .owner_models import OwnerModel, architecture, predictor, torch_missing, trained

STUDENTS = 4
"""Owner-made students; each sees the owner's data and three times as many synthetic queries."""
STUDENT_REFERENCES = 4
STUDENT_QUERY_FACTOR = 4
MAX_EPOCHS = 100
CANDIDATES_PER_POINT = 20
AUTO_MAX_FEATURES = 256
"""The default builds this part for inputs of at most this many values: students train in seconds there
(measured on the zoos); larger inputs take minutes (``--parts`` builds it anyway)."""


@register
class StudentsPart(PartKind):
    """Made when ``--data`` is given and torch can train the students."""

    name = "students"
    summary = "synthetic queries owner-made extracted students label like the target: students stolen through its API"

    def why_not(self, shop: Workshop) -> str | None:
        if shop.data is None:
            return "needs owner data (--data) to train students from"
        if shop.target.input_spec.integer:
            return f"input {shop.target.input_spec.name!r} takes whole numbers (ids or bytes): no synthetic queries"
        return torch_missing()

    def make(self, shop: Workshop, wanted: int) -> MadePart:
        data, truth = shop.panel_data  # (why_not said there is data)
        seed = shop.settings.seed
        classes = max(shop.target.num_classes or 0, int(shop.audit_labels(data).max()) + 1, 2)
        template = shop.surrogate.score_module if shop.surrogate is not None else None
        shop.say(f"students part: training {STUDENTS} owner-made students and {STUDENT_REFERENCES} references")
        students: list[OwnerModel] = []
        for index in range(STUDENTS):
            student_seed = seed * 1000 + 600 + index
            queries = extraction_queries(data, STUDENT_QUERY_FACTOR * len(data), student_seed)
            module, shape = architecture(index, template, shop.features, classes, student_seed)
            module, epochs = trained(
                module, queries, shop.audit_labels(queries), seed=student_seed, max_epochs=MAX_EPOCHS
            )
            students.append(OwnerModel(f"student-{index}", f"{shape}, {epochs} epochs", predictor(module)))
        truth = truth if truth is not None else shop.audit_labels(data)
        references: list[OwnerModel] = []
        for index in range(STUDENT_REFERENCES):
            reference_seed = seed * 1000 + 700 + index
            resample = np.random.default_rng(reference_seed).integers(0, len(data), len(data))
            module, shape = architecture(index, template, shop.features, classes, reference_seed)
            module, epochs = trained(
                module, data[resample], truth[resample], seed=reference_seed, max_epochs=MAX_EPOCHS
            )
            references.append(OwnerModel(f"reference-{index}", f"{shape}, {epochs} epochs", predictor(module)))
        candidates = extraction_queries(data, len(data) + CANDIDATES_PER_POINT * wanted, seed * 1000 + 650)[len(data) :]
        labels = shop.audit_labels(candidates)
        same = (
            shop.target.predict(candidates) == labels
        )  # the scores and the label output agree: the target matches itself
        agree = np.mean([student.predict(candidates) == labels for student in students], axis=0)
        disagree = np.mean([reference.predict(candidates) != labels for reference in references], axis=0)
        score = np.where(same, agree * disagree, 0.0)
        chosen = np.argsort(-score, kind="stable")[:wanted]
        chosen = chosen[score[chosen] > 0]
        how = (
            f"{len(chosen)} of {len(candidates)} synthetic queries (noise and mixtures of owner rows) ranked by "
            f"(students agreeing) × (references disagreeing); {STUDENTS} students, {STUDENT_REFERENCES} "
            f"references trained on {'the true classes' if shop.truth is not None else 'the target labels'}"
        )
        details = {
            "students_agreement": round(float(agree[chosen].mean()), 4) if len(chosen) else 0.0,
            "references_disagreement": round(float(disagree[chosen].mean()), 4) if len(chosen) else 0.0,
            "models": [{"name": m.name, "how": m.how} for m in (*students, *references)],
        }
        source = "default for student-shared points, uncalibrated"
        return MadePart(
            self.name,
            candidates[chosen].astype(np.float32),
            labels[chosen].astype(np.int64),
            how,
            MISTAKES_NULL_AGREEMENT,
            source,
            details,
        )
