"""The onnxruntime adapter: an ONNX file (or a live session) as a fingerprint target or a suspect.

Never imports torch or onnx on the suspect path: the audit stays light.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from .. import requirements
from ..errors import DeadlineError, UnsupportedModelError, UsageError
from ..types import (
    Answers,
    FloatArray,
    InputSpec,
    LabelArray,
    OutputKind,
    OutputSpec,
    Packing,
    ValueDescription,
    site_axes,
)
from .base import Classifier, from_labels, from_scores, label_indices, sha256_file
from .bounded import model_timeout, run_bounded
from .inputs import match_inputs, shape_text
from .onnx_graph import (
    check_model_file,
    choose_input,
    choose_output,
    describe_graph,
    describe_session,
    load_error,
)
from .providers import choose_providers, intra_op_threads

DEFAULT_BATCH = 256
"""Points per run where the input's shape is not known."""
BATCH_VALUES = 1 << 19
"""A run holds up to this many input values: 8,192 points at most of small inputs (one run per bundle's points,
or per several bundles' in a scan), down to one of large images. Not more: onnxruntime ran the Fashion-MNIST CNN
at 14.5 µs a point in batches of 3,000 against 9.9 in batches of 256–512, and the corpus's 256×256 NudeNet
classifier at 178 ms a point in a batch of 100 against 92–102 in batches of 1–16 (BENCHMARKS.md)."""


def _default_batch(spec: InputSpec) -> int:
    """Points per run: as many as ``BATCH_VALUES`` input values hold, from 1 to 8,192."""
    if not spec.resolved:
        return DEFAULT_BATCH
    values = max(1, math.prod(spec.sample_shape))
    return max(1, min(8192, BATCH_VALUES // values))


class OnnxClassifier(Classifier):
    """An ONNX model run by onnxruntime, queried in batches (a fixed batch is padded, then trimmed): the
    adapter of a fingerprint's **target**, which must output class scores (labels are their argmax); its
    graph is read, so that logits are told from probabilities. ``OnnxSuspect`` is the suspect's adapter.

    ``output_name`` picks the output; ``num_classes`` (the fingerprint's) guides the automatic choice;
    ``input_shape`` fixes symbolic per-sample dimensions; ``timeout`` bounds every run (``bounded``).
    """

    input_spec: InputSpec
    needs_scores: ClassVar[bool] = True
    """Whether the adapter must read class scores (a target) or may read a label output (a suspect)."""

    def __init__(
        self,
        model: str | os.PathLike[str] | Any,
        *,
        providers: str = "auto",
        allow_spinning: bool = True,
        batch_size: int | None = None,
        input_shape: tuple[int, ...] | None = None,
        output_name: str | None = None,
        num_classes: int | None = None,
        timeout: float | None = None,
        batch_axis: int | None = None,
        class_axis: int | None = None,
        position: str = "",
        input_shapes: Mapping[str, tuple[int, ...]] | None = None,
        holds: Mapping[str, float] | None = None,
        packing: Packing | None = None,
        data_shapes: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        ort = requirements.onnxruntime()
        self.timeout = model_timeout(timeout)
        """Seconds one run may take (``bounded``); a run past it stops this model for good."""
        self._stopped: str | None = None

        if isinstance(model, ort.InferenceSession):
            self.path: Path | None = None
            self.name = "onnxruntime session"
            self.sha256: str | None = None
            self.session = model
            inputs, outputs = describe_session(model)
        else:
            self.path = Path(model)
            self.name = self.path.name
            if self.needs_scores:  # the graph tells logits from probabilities (softmax producer)
                inputs, outputs = describe_graph(self.path)
                self.session = self._open(self.path, providers, allow_spinning)
            else:  # a suspect needs only what onnxruntime reports: no onnx import on the audit path
                check_model_file(self.path)
                self.session = self._open(self.path, providers, allow_spinning)
                inputs, outputs = describe_session(self.session)
            self.sha256 = sha256_file(self.path)
        self._producers_known = self.needs_scores and self.path is not None
        if packing is not None and len(inputs) > 1:  # a suspect fed the fingerprint's packing
            self._feed_names, self.inputs_fed = match_inputs(inputs, packing, self.name)
        else:
            packing, self._feed_names, self.inputs_fed = None, {}, ""
        self.input_spec = choose_input(
            inputs,
            self.name,
            input_shape=input_shape,
            input_shapes=input_shapes,
            holds=holds,
            packing=packing,
            data_shapes=data_shapes,
        )
        if self.input_spec.packing is not None and not self.inputs_fed:
            self.inputs_fed = "by name"
        self._outputs = outputs
        self._graph_outputs = outputs
        """The outputs as the graph declares them (``_outputs`` becomes their measured sizes)."""
        self._output_name, self._num_classes = output_name, num_classes
        self._map_classes: list[Any] | None = None
        self._declared_classes: int | None = None
        """For a label output, the class count the caller knows (``with_classes``)."""
        self.batch_size = self.input_spec.fixed_batch or batch_size or _default_batch(self.input_spec)
        self.providers = tuple(self.session.get_providers())
        self._numpy_dtype = np.dtype(self.input_spec.dtype if self.input_spec.packing is None else "float32")
        self._axes = (batch_axis, class_axis)
        self._position = check_position(position)
        self._measured = False
        """Whether the output axes were measured by running the model (``_choose_by_probe``)."""
        self._probed_for: tuple[int, ...] | None = None
        """The sample shape the output was last measured at (``_choose_by_probe``)."""
        self._measured_at: dict[tuple[int, ...], OutputSpec] = {}
        """For a symbolic input: the output as read at each sample shape asked before the current one."""
        self.batch_note = ""
        """Why the model is run one sample at a time, where a batch failed ("" otherwise)."""
        self._output_spec: OutputSpec | None = None
        try:
            self._output_spec = self._choose(outputs)
        except UnsupportedModelError:
            if not _untrusted(outputs) and batch_axis is None and class_axis is None:
                raise
        if _untrusted(outputs) or batch_axis is not None or class_axis is not None:
            # declared shapes are trusted only where a run agrees: run it (when the input size is known;
            # else when it is, in resolve_input or the first query)
            self._output_spec = None
            if self.input_spec.resolved:
                self._output_spec = self._choose_by_probe(self.input_spec.sample_shape)

    def _choose(
        self, outputs: list[ValueDescription], declared: Mapping[str, tuple[int | str | None, ...]] | None = None
    ) -> OutputSpec:
        return choose_output(
            outputs,
            self.name,
            need_scores=self.needs_scores,
            output_name=self._output_name,
            num_classes=self._num_classes,
            declared=declared,
        )

    def with_classes(self, count: int) -> Self:
        """This model, answering on a label output, with the class count the caller knows (a label output
        does not tell it): a new adapter over the same session."""
        clone = copy.copy(self)
        clone._declared_classes = count
        return clone

    @property
    def output_spec(self) -> OutputSpec:
        if self._output_spec is None:
            shown = shape_text(self.input_spec.sample_shape)
            raise UnsupportedModelError(
                f"{self.name}: the output sizes depend on the input size, which is symbolic ({shown}); "
                "pass --input-shape"
            )
        return self._output_spec

    @property
    def num_classes(self) -> int | None:
        """The class count: the output's class axis, or for ZipMap probability maps the classes the
        maps name (read from one all-zero input the first time, once the input shape is known)."""
        spec = self.output_spec
        if spec.kind == "labels":
            return self._declared_classes
        if spec.kind != "probability-maps" or spec.num_classes is not None:
            return spec.num_classes
        if self._map_classes is None and self.input_spec.resolved:
            self.scores(np.zeros((1, *self.input_spec.sample_shape), np.float32))
        return len(self._map_classes) if self._map_classes else None

    @property
    def map_classes(self) -> tuple[Any, ...]:
        """For probability maps (ZipMap): the class keys in the order their scores are read (sorted);
        empty for any other output."""
        if self.output_spec.kind != "probability-maps":
            return ()
        self.num_classes  # noqa: B018 - reads the keys from one input the first time
        return tuple(self._map_classes or ())

    @property
    def other_outputs(self) -> tuple[str, ...]:
        return tuple(v.name for v in self._outputs if v.name != self.output_spec.name)

    def _choose_by_probe(self, sample_shape: tuple[int, ...]) -> OutputSpec:
        """Choose the output from the sizes onnxruntime gives for all-zero inputs of ``sample_shape``, run
        with two batch sizes (one where the batch is fixed) to find each output's batch axis: the axis that
        follows the batch (``--batch-axis`` overrides). The class axis is the last (``--class-axis``)."""
        fixed = self.input_spec.fixed_batch
        self._measured = True
        runs = []
        for rows in (fixed,) if fixed else (1, 2):
            probe = np.zeros((rows, *sample_shape), dtype=self._numpy_dtype)
            try:
                runs.append((rows, self._session_run(None, self._feeds(probe))))
            except DeadlineError:
                raise
            except Exception as exc:
                if runs:  # one sample runs, two do not: a free batch axis the graph cannot take
                    self.batch_size = 1
                    self.batch_note = f"run one sample at a time: a batch of {rows} failed"
                    break
                raise UnsupportedModelError(
                    f"onnxruntime failed to run {self.name} on {rows} input(s) of shape {list(sample_shape)}: "
                    f"{' '.join(str(exc).split())[:200]}"
                ) from None
        measured, axes = [], {}
        varying: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
        batch_override, class_override = self._axes
        for index, value in enumerate(self._graph_outputs):
            shapes = [(rows, tuple(np.shape(results[index]))) for rows, results in runs]
            if not all(hasattr(results[index], "shape") for _, results in runs):
                measured.append(value)  # probability maps: a list per row
                continue
            batch = batch_override if batch_override is not None else _batch_axis(shapes)
            rank = len(shapes[0][1])
            if batch is not None and not -rank <= batch < rank:
                raise UsageError(f"--batch-axis {batch}: output {value.name!r} has {rank} axes")
            classes = class_override if class_override is not None else -1
            if not -rank <= classes < rank:
                raise UsageError(f"--class-axis {classes}: output {value.name!r} has {rank} axes")
            shape = shapes[0][1]
            if batch is None:  # no batch axis: every axis is the sample's
                class_index: int | None = classes % rank if rank else None
                others = [d for axis, d in enumerate(shape) if axis != class_index]
            else:
                batch_index, class_index = site_axes(rank, batch, classes)
                others = [d for axis, d in enumerate(shape) if axis not in (batch_index, class_index)]
            dims = ("N", *others, shape[class_index]) if class_index is not None else ("N", *others)
            measured.append(replace(value, dims=dims))
            axes[value.name] = (batch, classes)
            if batch is None and len({shape for _, shape in shapes}) > 1:
                varying[value.name] = shapes  # its size follows the batch, yet no axis is the batch
        declared = {value.name: value.dims for value in self._graph_outputs}
        self._outputs = measured
        chosen = self._choose(measured, declared)
        if chosen.name in varying:
            shown = "; ".join(f"{list(shape)} for {rows} point(s)" for rows, shape in varying[chosen.name])
            raise UnsupportedModelError(
                f"{self.name} answered {shown} in output {chosen.name!r}: no axis has one row for each point, "
                "which audits need (rows for points)"
            )
        batch, classes = axes.get(chosen.name, (0, -1))
        site = replace(chosen, batch_axis=batch, class_axis=classes, position=self._position)
        if self._position not in ("", "mean") and not -site.positions <= int(self._position) < site.positions:
            raise UsageError(f"--position {self._position}: output {site.name!r} has {site.positions} positions")
        if batch is None:
            self.batch_size = 1  # no batch axis: one sample per run
        if batch != 0 or site.positions > 1:
            site = replace(site, chosen_because=f"{site.chosen_because}; read at {site.site}")
        self._probed_for = sample_shape
        return site

    def _measure_for(self, shape: tuple[int, ...]) -> None:
        """Check that points of ``shape`` fit the input, and measure the output at that size where it is not known
        for it: before the first query of a symbolic input, and again for points of another size — a fully
        convolutional graph answers a grid that grows with its input, so positions measured at one size would
        misread another. Each size keeps its own reading (and how a single unit was read, by its values)."""
        spec = self._check_fits(shape)
        if self._output_spec is not None and (spec.resolved or self._probed_for in (None, shape)):
            return
        if self._output_spec is not None and self._probed_for is not None:
            self._measured_at[self._probed_for] = self._output_spec
        known = self._measured_at.pop(shape, None)
        if known is None:
            self._output_spec = self._choose_by_probe(shape)
        else:
            self._output_spec, self._probed_for = known, shape

    def _check_fits(self, shape: tuple[int, ...]) -> InputSpec:
        spec = self.input_spec
        if not spec.fits(shape):
            raise UnsupportedModelError(
                f"points of shape {shape} do not fit input {spec.name!r} of shape {shape_text(spec.sample_shape)}"
            )
        return spec

    def reads_output_by_values(self, sample_shape: tuple[int, ...]) -> bool:
        """Whether the first answers to points of ``sample_shape`` will decide how the output is read: a single unit
        whose producer is unknown is read as a probability or a logit by the values of the first batch asked."""
        self._measure_for(sample_shape)
        return self.output_spec.judge_by_values

    def resolve_input(self, shape: tuple[int, ...], source: str) -> None:
        """Fix the input's symbolic per-sample dimensions (``--input-shape`` or the owner's data)."""
        self.input_spec = self.input_spec.resolve(shape, source)
        if self._output_spec is None:
            self._output_spec = self._choose_by_probe(self.input_spec.sample_shape)

    def _feeds(self, chunk: npt.NDArray[Any]) -> dict[str, npt.NDArray[Any]]:
        """What one batch of points feeds: the one input, or every input of a packing."""
        packing = self.input_spec.packing
        if packing is None:
            return {self.input_spec.name: chunk}
        return packing.feeds(chunk, self._feed_names)

    @staticmethod
    def _open(path: Path, providers: str, allow_spinning: bool) -> Any:
        ort = requirements.onnxruntime()

        options = ort.SessionOptions()
        options.log_severity_level = 4  # never onnxruntime's own lines: they quote the model raw
        if not allow_spinning:
            # With torch in the same process, spinning idle threads steal the cores torch needs.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        # Models are untrusted input: bounded threads, no arena that keeps a hostile graph's peak memory.
        options.intra_op_num_threads = intra_op_threads()
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        try:
            return ort.InferenceSession(str(path), sess_options=options, providers=choose_providers(providers))
        except Exception as exc:
            raise load_error(path, exc) from None

    def _run(self, batch: npt.NDArray[np.floating]) -> list[Any]:
        spec = self.input_spec
        if len(batch):
            self._measure_for(tuple(batch.shape[1:]))
        else:
            self._check_fits(tuple(batch.shape[1:]))
        outputs = []
        for start in range(0, len(batch), self.batch_size):
            chunk = np.ascontiguousarray(batch[start : start + self.batch_size], dtype=self._numpy_dtype)
            rows = len(chunk)
            if spec.fixed_batch is not None and rows < spec.fixed_batch:  # a fixed batch: pad, then trim
                padding = np.zeros((spec.fixed_batch - rows, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, padding])
            try:
                names = list(self.output_spec.heads) or [self.output_spec.name]
                results = self._session_run(names, self._feeds(chunk))
            except DeadlineError:
                raise
            except Exception as exc:
                text = str(exc).strip()
                first_line = " ".join(text.split())[:300] if text else type(exc).__name__
                if len(chunk) > 1 and spec.fixed_batch is None and self.batch_size > 1:
                    # a batch axis declared free that the graph cannot take (a Reshape to 1 inside): one at a time
                    self.batch_size = 1
                    self.batch_note = f"run one sample at a time: a batch of {len(chunk)} failed ({first_line[:120]})"
                    return self._run(batch)
                raise UnsupportedModelError(f"onnxruntime failed to run {self.name}: {first_line}") from None
            if len(results) > 1:  # heads: each one's rows side by side, averaged as positions
                result = np.stack([self._head_rows(r) for r in results], axis=1).mean(axis=1)
            else:
                (result,) = results
                if not isinstance(result, list):
                    result = self.output_spec.rows(result)
            answered = len(result) if isinstance(result, list) else (np.shape(result)[0] if np.ndim(result) else 0)
            if answered != len(chunk) and not self._measured and spec.resolved:
                # the declared shape said N × C and the run disagrees: measure the axes by running, once
                self._output_spec = self._choose_by_probe(spec.sample_shape)
                return self._run(batch)
            if answered != len(chunk):  # 0 rows, N − 1 rows, or [T, N, C]: no row to read per point
                raise UnsupportedModelError(
                    f"{self.name} answered {answered} rows for {len(chunk)} points in output "
                    f"{self.output_spec.name!r}; audits need one row per point, batch axis first"
                )
            outputs.append(result[:rows] if spec.fixed_batch is not None else result)
        return outputs

    def _head_rows(self, result: Any) -> npt.NDArray[np.float32]:
        """One head's answer as N × C (its own positions averaged)."""
        spec = self.output_spec
        rows = replace(spec, heads=(), positions=spec.positions // max(len(spec.heads), 1)).rows(result)
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)

    def _session_run(self, outputs: list[str] | None, feeds: dict[str, Any]) -> list[Any]:
        """One bounded run; once a run has overrun, every later one fails at once with the same reason."""
        if self._stopped is not None:
            raise DeadlineError(self._stopped)
        try:
            result: list[Any] = run_bounded(self.session, outputs, feeds, timeout=self.timeout, name=self.name)
        except DeadlineError as error:
            self._stopped = str(error)
            raise
        return result

    def raw_outputs(self, batch: npt.NDArray[np.floating]) -> FloatArray:
        """The chosen output as the graph computes it, one flat float32 row per point (for parity)."""
        if self.output_spec.kind == "probability-maps":
            return self.scores(batch)
        if not self.output_spec.has_scores:
            raise UnsupportedModelError(f"{self.name} outputs {self.output_spec.kind}, not class scores")
        parts = [np.asarray(r, dtype=np.float32).reshape(len(r), -1) for r in self._run(batch)]
        if not parts:
            return np.zeros((0, 1 if self.output_spec.is_binary else self.num_classes or 0), dtype=np.float32)
        return np.concatenate(parts, axis=0)

    def scores(self, batch: npt.NDArray[np.floating]) -> FloatArray:
        """Class scores N×C: logits or probabilities as the graph outputs them, unit axes squeezed; a
        single unit z becomes (−z, z), a sigmoid p becomes (1 − p, p); ZipMap maps become a matrix."""
        kind = self.output_spec.kind
        if kind == "probability-maps":
            rows: list[Any] = []
            for result in self._run(batch):
                rows.extend(result)
            if self._map_classes is None:
                self._map_classes = sorted(rows[0].keys()) if rows else []
            classes = self._map_classes
            return np.asarray([[row.get(c, 0.0) for c in classes] for row in rows], dtype=np.float32).reshape(
                len(rows), len(classes)
            )
        raw = self.raw_outputs(batch)
        if not self.output_spec.is_binary:
            return raw
        return binary_scores(raw[:, 0], probability=self._binary_is_probability(raw))

    def _binary_is_probability(self, raw: FloatArray) -> bool:
        spec = self.output_spec
        if spec.judge_by_values and raw.size:  # decided once, by the first answers
            probability = bool(((raw >= 0) & (raw <= 1)).all())
            kind: OutputKind = "binary-probability" if probability else "binary-logit"
            read_as = "a probability" if probability else "a logit"
            why = f"{spec.chosen_because}; a single unit read as {read_as} by its values"
            self._output_spec = replace(spec, kind=kind, judge_by_values=False, chosen_because=why)
        return self.output_spec.kind == "binary-probability"

    def predict(self, batch: npt.NDArray[np.floating]) -> LabelArray:
        """Class indices: the argmax of the scores; for a label output, its labels as indices
        (``label_indices``: integer labels are their own index)."""
        if self.output_spec.kind == "labels":
            return label_indices(self.answer(np.asarray(batch, np.float32)), ())
        labels: LabelArray = self.scores(batch).argmax(axis=1).astype(np.int64)
        return labels

    def answer_batch(self, batch: FloatArray) -> Answers:
        if len(batch):
            self._measure_for(tuple(batch.shape[1:]))
        kind = self.output_spec.kind
        if kind != "labels" and (kind != "probability-maps" or self._producers_known):
            return from_scores(self.scores(batch))  # a row with a NaN or infinite score is unanswered
        raw: list[Any] = []
        for result in self._run(batch):
            if kind == "labels":
                raw.extend(np.asarray(result).reshape(-1).tolist())
            else:  # probability maps: {class label: probability} per row; a non-finite one answers nothing
                raw.extend(
                    max(row.items(), key=lambda item: item[1])[0]
                    if all(np.isfinite(value) for value in row.values())
                    else float("nan")
                    for row in result
                )
        return from_labels(raw)

    def describe(self) -> dict[str, str]:
        spec = self.output_spec
        facts = {"providers": ",".join(self.providers), "output": f"{spec.name} ({spec.kind})"}
        if spec.chosen_because:
            facts["output_chosen"] = spec.chosen_because
        if self.other_outputs:
            facts["other_outputs"] = ", ".join(self.other_outputs)
        if self.sha256:
            facts["sha256"] = self.sha256
        if self.path is not None:
            facts["path"] = str(self.path)
        if self.batch_note:
            facts["batch"] = self.batch_note
        if self.input_spec.packing is not None:
            facts["inputs"] = f"{self.input_spec.packing.describe()}; fed {self.inputs_fed}"
        return facts


def check_position(text: str) -> str:
    """``--position``: "" (the middle), "mean", or a whole number (negative counts from the end)."""
    text = text.strip()
    if text in ("", "mean"):
        return text
    try:
        return str(int(text))
    except ValueError:
        raise UsageError(f"--position takes a position's index or 'mean', got {text!r}") from None


def _untrusted(outputs: list[ValueDescription]) -> bool:
    """Whether the declared shapes of float outputs leave the batch or class axis to be measured: a rank
    below 2, or a symbolic size past the first axis (``[T, N, C]``, ``[seq]``, a declared rank 0 that lies)."""
    return any(
        value.type.startswith("tensor(float")
        and (len(value.dims) < 2 or not all(isinstance(d, int) and d > 0 for d in value.dims[1:]))
        for value in outputs
    )


def _batch_axis(shapes: list[tuple[int, tuple[int, ...]]]) -> int | None:
    """The axis whose size is the batch in every run (the first such; axis 0 first); None: none is."""
    rank = len(shapes[0][1])
    if any(len(shape) != rank for _, shape in shapes):
        return None
    candidates = [axis for axis in range(rank) if all(shape[axis] == rows for rows, shape in shapes)]
    if len(shapes) == 1 and shapes[0][0] == 1 and 0 not in candidates:
        return None  # one sample per run and no unit axis: the output has no batch axis
    return candidates[0] if candidates else None


def binary_scores(values: FloatArray, *, probability: bool) -> FloatArray:
    """Class scores of a single-unit classifier: (1 − p, p) for a sigmoid, (−z, z) for a logit."""
    values = np.asarray(values, dtype=np.float32)
    if probability:
        return np.stack([1.0 - values, values], axis=1).astype(np.float32)
    return np.stack([-values, values], axis=1).astype(np.float32)


class OnnxSuspect(OnnxClassifier):
    """The adapter of a suspect: it answers with its label output when it has one (scikit-learn exports),
    else the argmax of its scores or of its probability maps (ZipMap). It reads only what onnxruntime
    reports, so the audit path never imports ``onnx``."""

    needs_scores: ClassVar[bool] = False
