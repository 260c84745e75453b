"""The adapter base: what every suspect offers (a name, an input spec, labels for a batch).

A member answers one batch in ``answer_batch``; ``answer`` is the one batch loop every adapter shares
(foolbox-style: one base, one file per kind of model).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import UnsupportedModelError
from ..text import shown
from ..types import Answers, FloatArray, InputSpec, LabelKind


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unanswered(count: int, reason: str) -> Answers:
    """``count`` points that got no answer, all for ``reason`` (skipped, never a match or a mismatch)."""
    return Answers(np.zeros(count, object), "index", np.zeros(count, np.bool_), {reason: count} if count else {})


NON_FINITE = "non-finite scores (NaN or infinity)"


def from_scores(scores: npt.ArrayLike) -> Answers:
    """Answers from an N×C score table: the argmax of each row, and a row with any NaN or infinite score
    unanswered (``NON_FINITE``) — garbage is never read as a class."""
    table = np.asarray(scores, dtype=np.float64)
    finite = np.zeros(len(table), np.bool_)
    if table.ndim == 2:
        finite = np.asarray(np.isfinite(table).all(axis=1), np.bool_)
    labels = np.where(finite, np.nan_to_num(table, nan=0.0, posinf=0.0, neginf=0.0).argmax(axis=1), 0)
    failed = int((~finite).sum())
    return Answers(labels.astype(np.int64), "index", finite, {NON_FINITE: failed} if failed else {})


def from_labels(labels: npt.ArrayLike) -> Answers:
    """Answers from one raw label per point (numbers or strings); a NaN or infinite number is unanswered."""
    values = np.asarray(labels, dtype=object).reshape(-1)
    answered = np.array([not (isinstance(v, (float, np.floating)) and not np.isfinite(v)) for v in values], np.bool_)
    failed = int((~answered).sum())
    return Answers(values, "class-label", answered, {"non-finite label (NaN or infinity)": failed} if failed else {})


def label_indices(answers: Answers, class_names: Sequence[str]) -> npt.NDArray[np.int64]:
    """Answers as class indices; -1 where unanswered or not a known class.

    A class label maps through ``class_names`` when given, else an integer label is its own index
    (scikit-learn trained on 0..C-1). A label that is not a number, with no names to look it up in,
    raises ``UnsupportedModelError`` ("class labels like ...").
    """
    indices = np.full(len(answers.labels), -1, dtype=np.int64)
    if answers.kind == "index":  # class indices already: one vectorised step (a scan asks millions)
        answered = np.asarray(answers.answered, dtype=bool)
        if answered.any():
            indices[answered] = np.asarray(answers.labels[answered]).astype(np.int64)
        return indices
    lookup = {name: index for index, name in enumerate(class_names)} if class_names else None
    for row, (label, answered) in enumerate(zip(answers.labels, answers.answered, strict=True)):
        if not answered:
            continue
        text = label.decode(errors="replace") if isinstance(label, bytes) else str(label)
        if lookup is not None:
            indices[row] = lookup.get(text, -1)
            continue
        try:
            number = float(text)
        except ValueError:
            raise UnsupportedModelError(f"class labels like {shown(text[:40])!r}") from None
        # 1e300 or inf is no class index: out of range, never an overflow
        indices[row] = int(number) if number.is_integer() and abs(number) < 2**62 else -1
    return indices


class Classifier(ABC):
    """A model an audit can query; label-only access is enough.

    Subclasses implement ``answer_batch`` for at most ``batch_size`` points; ``answer`` splits any
    number of points into such batches and checks that the model answers in one kind throughout.
    """

    name: str
    input_spec: InputSpec | None = None
    batch_size: int = 256

    @abstractmethod
    def answer_batch(self, batch: FloatArray) -> Answers:
        """Labels for every row of ``batch`` (or the reason a row went unanswered)."""

    def answer(self, points: FloatArray) -> Answers:
        """Labels for every point, asked ``batch_size`` at a time."""
        parts = [
            self.answer_batch(points[start : start + self.batch_size])
            for start in range(0, len(points), self.batch_size)
        ]
        return self.join(parts)

    def join(self, parts: Sequence[Answers]) -> Answers:
        """Answers to several batches as one; a model that switched between labels and scores is refused."""
        kinds: set[LabelKind] = {part.kind for part in parts if part.answered.any()}
        if len(kinds) > 1:
            raise UnsupportedModelError(
                f"{self.name} answered some batches with labels and others with scores; "
                "pin one answer format (for a remote API, --output-name)"
            )
        return Answers.concatenate(list(parts), kinds.pop() if kinds else "index")

    def reads_output_by_values(self, sample_shape: tuple[int, ...]) -> bool:
        """Whether the first answers to points of ``sample_shape`` decide how every later answer is read (an
        ONNX suspect's single unit: a probability or a logit, by its values). Audits that ask in rounds then ask
        every point at once, as one batch decides for all."""
        return False

    def describe(self) -> dict[str, str]:
        """Facts about the model for reports (hash, providers, endpoint, ...)."""
        return {}
