"""Scan many suspects against many bundles, streaming one JSON line per suspect × bundle as each suspect ends.

The journal (a JSON Lines file) is also the scan's memory: ``resume`` reads it back and audits only the
pairs it lacks, so every suspect × bundle is reported exactly once — failures included, with their reason.
The unit of work is one suspect against every bundle (``scan_suspect``): the single process runs it in a
loop, ``fleet`` runs it on Ray actors; both write through the same journal.
"""

from __future__ import annotations

import json
import os
import time
import traceback
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from .audit import (
    AuditOptions,
    AuditResult,
    SuspectGroup,
    audit_each,
    audit_with,
    check_min_answered,
    sequential_settings_for,
    suspect_groups,
)
from .bundle import Bundle
from .deadlines import check_seconds
from .discovery import is_url
from .errors import IPGuardError, ScanError, UsageError
from .files import check_regular_file
from .models import Classifier, HttpClassifier, as_classifier, headers_from_environment
from .models.bounded import model_timeout
from .models.http import DEFAULT_DEADLINE
from .schemas import schema_id
from .sequential import SequentialSettings
from .text import shown

ROW_SCHEMA = schema_id("scan-row")
ROW_FIELDS_ADDED = ("points_in_bundle", "stopped_because")
"""Fields v1 rows gained later: a journal written before them lacks them (they read as their defaults, and its
schema does not require them), so ``--resume`` goes on with it."""

Status = Literal["ok", "error", "internal-error"]


@dataclass(frozen=True)
class ScanOptions:
    """What every audit of a scan shares (the ``audit`` options that make sense for a fleet)."""

    providers: str = "auto"
    min_answered: float = 0.8
    sequential: bool | None = None
    """True for every suspect, False for none, None for remote APIs only (as ``audit``)."""
    sequential_settings: SequentialSettings = field(default_factory=SequentialSettings)
    screen: bool = True
    """Ask each bundle's points in rounds and stop a bundle once no answers could make it a match (the same
    accusations for fewer points; ``audit.audit_each``); False: every point of every bundle (``--every-point``)."""
    model_timeout: float | None = None
    """Seconds one model run may take (``models.bounded``); a suspect past it is a failed suspect."""
    deadline: float = DEFAULT_DEADLINE
    """Seconds the audit of one remote API may take in all."""

    def __post_init__(self) -> None:
        check_min_answered(self.min_answered)
        model_timeout(self.model_timeout)
        check_seconds(self.deadline, "--deadline")


@dataclass(frozen=True)
class ScanRow:
    """One suspect × bundle: the verdict and its evidence, or why there is none."""

    suspect: str
    fingerprint: str
    fingerprint_sha256: str
    status: Status
    verdict: str = ""
    matching_rate: float | None = None
    p_value: float | None = None
    points_queried: int = 0
    points_matched: int = 0
    points_skipped: int = 0
    threshold: float | None = None
    licensee: str = ""
    suspect_sha256: str | None = None
    error: str = ""
    seconds: float = 0.0
    points_in_bundle: int = 0
    """The bundle's points; more than ``points_queried`` where the audit stopped early (``stopped_because``) or
    failed."""
    stopped_because: str = ""
    """Why fewer points were asked: ``match ruled out`` (screened: no answers to the rest could make a match),
    ``match settled`` or ``no match settled`` (``--sequential``); empty where every point was asked."""

    @property
    def key(self) -> tuple[str, str]:
        return self.suspect, self.fingerprint_sha256

    def to_json(self) -> str:
        """One journal line, naming its schema (``schemas``: ``ipguard-onnx/scan-row/v1``)."""
        row = {"schema": ROW_SCHEMA, **{name: getattr(self, name) for name in _ROW_FIELDS}}  # asdict copies deeply
        return json.dumps(row, sort_keys=True, allow_nan=False)

    @staticmethod
    def from_json(line: str) -> ScanRow:
        """A journal line, every field of its type (a list where a name belongs is no scan row)."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.pop("schema", ROW_SCHEMA) != ROW_SCHEMA:  # journals written before rows named it have none
            raise ValueError("a row of another schema")
        hints = typing.get_type_hints(ScanRow)
        unknown = sorted(set(data) - set(hints))
        if unknown:
            raise ValueError(f"unknown field {shown(unknown[0])[:40]!r}")
        for name, value in data.items():
            if not _fits(value, hints[name]):
                raise ValueError(f"field {name!r} is not {hints[name]}")
        return ScanRow(**data)


def _fits(value: object, hint: object) -> bool:
    """Whether a journal value has its field's type (``ScanRow``'s annotations): counts are whole numbers
    ≥ 0, numbers are not booleans, a status is one of ``Status``."""
    if typing.get_origin(hint) is Literal:
        return value in typing.get_args(hint)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return any(
        (kind is type(None) and value is None)
        or (kind is str and isinstance(value, str))
        or (kind is int and number and isinstance(value, int) and value >= 0)
        or (kind is float and number)
        for kind in typing.get_args(hint) or (hint,)
    )


@dataclass(frozen=True)
class ScanSummary:
    """What a scan did: rows written now, pairs already in the journal, and the verdict counts."""

    journal: Path
    suspects: int
    bundles: int
    written: int
    already_done: int
    matches: int
    errors: int
    internal_errors: int
    seconds: float
    first_result_seconds: float
    """From the start to the first suspect's results: start-up (and, on Ray, the cluster and its actors)."""
    points_asked: int = 0
    """Points asked over the audited pairs in the journal; fewer than ``points_in_bundles`` where audits stopped
    early (``ScanRow.stopped_because``)."""
    points_in_bundles: int = 0


def suspect_reference(suspect: str | os.PathLike[str]) -> str:
    """How a suspect is named in the journal: its absolute path (symlinks not followed: a loop must not
    stop the scan), or the URL as given."""
    text = os.fspath(suspect)
    return text if is_url(text) else os.path.abspath(text)


def _row(result: AuditResult, reference: str) -> ScanRow:
    return ScanRow(
        suspect=reference,
        fingerprint=result.fingerprint,
        fingerprint_sha256=result.fingerprint_sha256,
        status="ok",
        verdict=result.verdict,
        matching_rate=result.matching_rate,
        p_value=result.p_value,
        points_queried=result.points_queried,
        points_matched=result.points_matched,
        points_skipped=result.points_skipped,
        threshold=result.threshold,
        licensee=result.licensee,
        suspect_sha256=result.suspect_sha256,
        seconds=result.seconds,
        points_in_bundle=len(result.answers),
        stopped_because=""
        if result.sequential is None or result.sequential.queries >= result.sequential.points
        else result.sequential.stopped_because,
    )


def _failed(reference: str, bundle: Bundle, status: Status, error: str) -> ScanRow:
    return ScanRow(
        suspect=reference,
        fingerprint=bundle.name,
        fingerprint_sha256=bundle.sha256,
        status=status,
        error=error,
        licensee=bundle.licensee,
        points_in_bundle=len(bundle.points),
    )


def _one_line(error: BaseException) -> str:
    """An unplanned exception as one line, with where it was raised (a fleet's bug report has no traceback)."""
    text = " ".join(str(error).split())[:300]
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return (f"{type(error).__name__}: {text}" if text else type(error).__name__) + where


def scan_suspect(reference: str, bundles: Sequence[Bundle], options: ScanOptions) -> list[ScanRow]:
    """One suspect against every bundle; a suspect that cannot be opened or queried gives a failed row per
    bundle with the reason. Exceptions nobody planned become ``internal-error`` rows (never a verdict).
    The suspect is opened once per way the bundles read it (``audit.suspect_groups``)."""
    position = {id(bundle): index for index, bundle in enumerate(bundles)}
    placed: list[tuple[int, ScanRow]] = []
    for group in suspect_groups(bundles):
        rows = _scan_group(reference, group, options)
        placed.extend(zip((position[id(bundle)] for bundle in group.bundles), rows, strict=True))
    return [row for _, row in sorted(placed, key=lambda pair: pair[0])]


def _scan_group(reference: str, group: SuspectGroup, options: ScanOptions) -> list[ScanRow]:
    """The bundles of one ``SuspectGroup`` against one suspect, opened once."""
    bundles = group.bundles
    try:
        classifier: Classifier = (
            HttpClassifier(
                reference, headers=headers_from_environment(), deadline=options.deadline, packing=group.packing
            )
            if is_url(reference)
            else as_classifier(
                reference,
                providers=options.providers,
                output_name=group.output_name,
                num_classes=group.num_classes,
                model_timeout=options.model_timeout,
                packing=group.packing,
                axes=group.axes,
            )
        )
    except IPGuardError as error:
        return [_failed(reference, bundle, "error", str(error)) for bundle in bundles]
    except OSError as error:  # a path the system refuses (too long, no permission): the suspect's, not a bug
        return [_failed(reference, bundle, "error", f"{error.strerror or type(error).__name__}") for bundle in bundles]
    except Exception as error:  # a hostile or broken file must not stop a fleet scan
        return [_failed(reference, bundle, "internal-error", _one_line(error)) for bundle in bundles]
    sequential = sequential_settings_for(classifier, options.sequential, options.sequential_settings)
    rows = []
    audit_options = AuditOptions(providers=options.providers, min_answered=options.min_answered)
    try:  # the bundles of one point shape in one batch of runs, each failing alone; a bug: each bundle alone
        outcomes = audit_each(bundles, classifier, audit_options, sequential=sequential, screen=options.screen)
        return [
            _failed(reference, bundle, "error", str(outcome))
            if isinstance(outcome, IPGuardError)
            else _row(outcome, reference)
            for bundle, outcome in zip(bundles, outcomes, strict=True)
        ]
    except Exception:  # noqa: BLE001, S110 - the loop below reports each bundle's own failure
        pass
    for bundle in bundles:
        try:
            result = audit_with(bundle, classifier, audit_options, sequential=sequential)
            rows.append(_row(result, reference))
        except IPGuardError as error:
            rows.append(_failed(reference, bundle, "error", str(error)))
        except OSError as error:
            rows.append(_failed(reference, bundle, "error", f"{error.strerror or type(error).__name__}"))
        except Exception as error:
            rows.append(_failed(reference, bundle, "internal-error", _one_line(error)))
    return rows


_ROW_FIELDS = tuple(f.name for f in fields(ScanRow))
SYNC_SECONDS = 1.0
"""The journal is synced to disk at most this often (and when the scan ends): a crash loses at most the last
second of results, which ``--resume`` runs again."""
_ROW_START = '{"' + min(f.name for f in fields(ScanRow)) + '": '
"""How every journal line begins (``ScanRow.to_json`` sorts its keys): a cut last line must begin so too."""


class Journal:
    """The JSON Lines file of a scan: read back for ``resume``, appended one suspect at a time.

    One writer at a time: the file is locked (``flock``) from opening to ``close``, and a second scan on
    it stops with a one-line error. ``resume`` drops a last line cut by a crash only when it is the start
    of a scan row; a file that is not a scan journal is never cut.
    """

    def __init__(self, path: Path, *, resume: bool) -> None:
        self.path = path
        self.done: dict[tuple[str, str], ScanRow] = {}
        if path.exists() and not resume:
            raise UsageError(f"{shown(path)} exists: pass --resume to continue that scan, or another --output")
        if path.is_dir():
            raise UsageError(f"--output {shown(path)} is a folder; pass a file path for the scan journal")
        check_regular_file(path, "--output")
        self._created = not path.exists()
        self._synced = time.monotonic()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("ab")  # writable before any work is done
        except OSError as error:
            raise ScanError(
                f"the scan journal {shown(path)} cannot be used ({type(error).__name__}: "
                f"{error.strerror or error}); pass a writable file path to --output"
            ) from None
        try:
            self._lock()
            self._read()
        except BaseException:
            self.close(failed=True)
            raise

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ScanError(
                f"the scan journal {shown(self.path)} is being written by another scan; wait for it to end "
                "(or stop it), then rerun with --resume"
            ) from None

    def close(self, *, failed: bool = False) -> None:
        """Sync and release the journal (and its lock); a scan that ``failed`` before writing a line leaves
        no file."""
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except (OSError, ValueError):  # a journal that could not be written said so already
            pass
        self._handle.close()
        if failed and self._created and self.path.stat().st_size == 0:
            self.path.unlink(missing_ok=True)

    def _read(self) -> None:
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        tail = raw[len(complete) :].decode("utf-8", errors="replace")
        if tail and not (tail.startswith(_ROW_START) or _ROW_START.startswith(tail)):
            raise UsageError(
                f"{shown(self.path)} is not a scan journal (its last line is no scan result); "
                "pass a scan's own --output to --resume"
            )
        for number, line in enumerate(complete.decode("utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = ScanRow.from_json(line)
            except (ValueError, TypeError, RecursionError) as error:
                raise UsageError(
                    f"{shown(self.path)} line {number} is not a scan result ({shown(error)[:120]}); "
                    "pass a scan's own --output to --resume"
                ) from None
            self.done[row.key] = row
        if tail:  # a line cut by a crash is dropped, and its pair re-run
            self._handle.truncate(len(complete))

    def missing(self, reference: str, bundles: Sequence[Bundle]) -> list[Bundle]:
        return [bundle for bundle in bundles if (reference, bundle.sha256) not in self.done]

    def write(self, rows: Iterable[ScanRow]) -> int:
        fresh = [row for row in rows if row.key not in self.done]
        if not fresh:
            return 0
        try:
            self._handle.write("".join(row.to_json() + "\n" for row in fresh).encode("utf-8"))
            self._handle.flush()
            if time.monotonic() - self._synced >= SYNC_SECONDS:
                os.fsync(self._handle.fileno())
                self._synced = time.monotonic()
        except OSError as error:
            raise ScanError(
                f"writing the scan journal {shown(self.path)} failed ({type(error).__name__}: "
                f"{error.strerror or error}); the results before it are kept: free the space or fix the path, "
                "then rerun with --resume"
            ) from None
        for row in fresh:
            self.done[row.key] = row
        return len(fresh)


Runner = Callable[[Sequence[tuple[str, Sequence[Bundle]]], ScanOptions], Iterator[list[ScanRow]]]
"""Runs suspects (each with the bundles it still lacks) and yields each suspect's rows as it finishes."""


def run_in_process(work: Sequence[tuple[str, Sequence[Bundle]]], options: ScanOptions) -> Iterator[list[ScanRow]]:
    for reference, bundles in work:
        yield scan_suspect(reference, bundles, options)


def scan(
    suspects: Sequence[str | os.PathLike[str]],
    bundles: Sequence[Bundle],
    journal_path: str | os.PathLike[str],
    *,
    options: ScanOptions | None = None,
    resume: bool = False,
    runner: Runner = run_in_process,
    progress: Callable[[int, int], None] | None = None,
) -> ScanSummary:
    """Every suspect × every bundle, each pair once in the journal (``resume`` skips the pairs it holds)."""
    started = time.perf_counter()
    if not bundles:
        raise UsageError("a scan needs at least one fingerprint bundle")
    options = options or ScanOptions()
    unique: dict[str, Bundle] = {}
    for bundle in bundles:  # the same bytes under two names are one bundle, named as first given
        unique.setdefault(bundle.sha256, bundle)
    bundles = list(unique.values())
    journal = Journal(Path(journal_path), resume=resume)
    references = list(dict.fromkeys(suspect_reference(s) for s in suspects))  # each suspect once
    work = [(ref, missing) for ref in references if (missing := journal.missing(ref, bundles))]
    already = len(references) * len(bundles) - sum(len(missing) for _, missing in work)
    written = 0
    first = 0.0
    try:
        for finished, rows in enumerate(runner(work, options), start=1):
            written += journal.write(rows)
            first = first or time.perf_counter() - started
            if progress is not None:
                progress(finished, len(work))
    except BaseException:
        journal.close(failed=True)
        raise
    journal.close()
    wanted = {(ref, bundle.sha256) for ref in references for bundle in bundles}
    rows_now = [row for key, row in journal.done.items() if key in wanted]
    return ScanSummary(
        journal=journal.path,
        suspects=len(references),
        bundles=len(bundles),
        written=written,
        already_done=already,
        matches=sum(row.verdict == "match" for row in rows_now),
        errors=sum(row.status == "error" or row.verdict == "inconclusive" for row in rows_now),
        internal_errors=sum(row.status == "internal-error" for row in rows_now),
        seconds=time.perf_counter() - started,
        first_result_seconds=first,
        points_asked=sum(row.points_queried for row in rows_now if row.status == "ok"),
        points_in_bundles=sum(row.points_in_bundle for row in rows_now if row.status == "ok"),
    )
