"""``scan``: many suspects × many bundles into a JSON Lines journal, each pair exactly once, resumable."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ipguard_onnx import FingerprintSettings, audit, fingerprint, load_bundle
from ipguard_onnx.audit import AuditOptions, audit_group
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.keys import load_private_key
from ipguard_onnx.models import CallableClassifier, as_classifier

from .conftest import RunCli, Zoo
from .http_server import PredictionServer


def _rows(journal: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in journal.read_text().splitlines()]


def _hub(zoo: Zoo, folder: Path) -> Path:
    """A model hub: copies and an independent model in nested folders, and a file that is not ONNX."""
    (folder / "team-a" / "v2").mkdir(parents=True)
    (folder / "team-b").mkdir()
    shutil.copy(zoo.fine_tuned, folder / "team-a" / "classifier.onnx")
    shutil.copy(zoo.pruned, folder / "team-a" / "v2" / "classifier.onnx")
    shutil.copy(zoo.independent, folder / "team-b" / "classifier.onnx")
    (folder / "team-b" / "broken.onnx").write_bytes(b"not a model")
    (folder / "team-b" / "exports.onnx").mkdir()  # a folder named like a model is no suspect
    return folder


def _bundles(zoo: Zoo, folder: Path) -> Path:
    """The zoo's bundle, and a second one of the same target (another seed, 30 points)."""
    folder.mkdir()
    shutil.copy(zoo.bundle, folder / "digits.fingerprint.safetensors")
    fingerprint(
        zoo.target,
        folder / "digits-seed1.fingerprint.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=FingerprintSettings(n=30, seed=1),
    )
    return folder


def test_scan_reports_every_suspect_and_bundle_once_with_failures(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    hub = _hub(zoo, tmp_path / "hub")
    fingerprints = _bundles(zoo, tmp_path / "fingerprints")
    journal = tmp_path / "scan.jsonl"
    result = run_cli(
        "scan", hub, "--fingerprints", fingerprints, "-f", zoo.bundle, "--output", journal, "--every-point"
    )
    assert result.code == ExitCode.match, result.stderr
    rows = _rows(journal)
    suspects = sorted(os.path.abspath(p) for p in hub.rglob("*.onnx") if p.is_file())
    # Two bundles in the folder; the -f one is the same bytes as one of them under another name: one
    # bundle (named as given first, -f), so two rows per suspect.
    assert sorted(str(r["suspect"]) for r in rows) == sorted(suspects * 2)
    assert {r["fingerprint"] for r in rows} == {zoo.bundle.name, "digits-seed1.fingerprint.safetensors"}
    assert len({(r["suspect"], r["fingerprint_sha256"]) for r in rows}) == len(rows)
    broken = [r for r in rows if str(r["suspect"]).endswith("broken.onnx")]
    assert broken and all(r["status"] == "error" and "not a readable ONNX model" in str(r["error"]) for r in broken)
    sizes = {zoo.bundle.name: len(load_bundle(zoo.bundle).points), "digits-seed1.fingerprint.safetensors": 30}
    assert all(r["points_in_bundle"] == sizes[str(r["fingerprint"])] and r["points_queried"] == 0 for r in broken)
    for row in rows:
        if row["status"] == "ok":
            bundle = zoo.bundle if row["fingerprint"] == zoo.bundle.name else fingerprints / str(row["fingerprint"])
            expected = audit(bundle, Path(str(row["suspect"])))
            assert row["verdict"] == expected.verdict and row["matching_rate"] == expected.matching_rate
    assert "4 suspects" in result.stdout


def test_resume_skips_what_the_journal_holds_and_reruns_a_cut_line(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    hub = _hub(zoo, tmp_path / "hub")
    journal = tmp_path / "scan.jsonl"
    first = run_cli("scan", hub / "team-a", "-f", zoo.bundle, "--output", journal)
    assert first.code == ExitCode.match, first.stderr
    assert len(_rows(journal)) == 2
    refused = run_cli("scan", hub, "-f", zoo.bundle, "--output", journal)
    assert refused.code == ExitCode.usage and "--resume" in refused.stderr
    assert len(_rows(journal)) == 2  # nothing written without --resume
    # a crash cut the last line short: that pair is run again, and only that one is new besides team-b's
    text = journal.read_text()
    journal.write_text(text[: text.rfind("\n", 0, len(text) - 1) + 1] + text.splitlines()[-1][:40])
    resumed = run_cli("scan", hub, "-f", zoo.bundle, "--output", journal, "--resume")
    assert resumed.code == ExitCode.match, resumed.stderr
    rows = _rows(journal)
    assert len(rows) == 4 and len({r["suspect"] for r in rows}) == 4
    assert "3 results written, 1 already" in resumed.stdout
    again = run_cli("scan", hub, "-f", zoo.bundle, "--output", journal, "--resume")
    assert "0 results written, 4 already" in again.stdout and len(_rows(journal)) == 4


def test_manifest_lists_paths_and_endpoints(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / "models").mkdir()
    shutil.copy(zoo.independent, tmp_path / "models" / "theirs.onnx")
    journal = tmp_path / "out" / "scan.jsonl"
    with PredictionServer(zoo.target) as server:
        manifest = tmp_path / "suspects.txt"
        manifest.write_text(
            f"# shipped by partners\nmodels/theirs.onnx\n\nmodels/gone.onnx  # removed since\n{server.base}/predict\n"
        )
        result = run_cli("scan", "--manifest", manifest, "-f", zoo.bundle, "--output", journal, "--format", "json")
    assert result.code == ExitCode.match, result.stderr
    rows = {str(r["suspect"]): r for r in _rows(journal)}
    assert rows[f"{server.base}/predict"]["verdict"] == "match"
    assert int(str(rows[f"{server.base}/predict"]["points_queried"])) < 100  # endpoints are sequential
    assert rows[os.path.abspath(tmp_path / "models" / "theirs.onnx")]["verdict"] == "no match"
    gone = rows[os.path.abspath(tmp_path / "models" / "gone.onnx")]
    assert gone["status"] == "error" and "not found" in str(gone["error"])
    summary = json.loads(result.stdout)["scan"]
    assert summary["suspects"] == 3 and summary["written"] == 3 and summary["errors"] == 1


def test_scan_exit_codes_without_matches(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    clean = run_cli("scan", zoo.independent, "-f", zoo.bundle, "--output", tmp_path / "a.jsonl")
    assert clean.code == ExitCode.no_match, clean.stderr
    (tmp_path / "broken.onnx").write_bytes(b"x")
    failed = run_cli(
        "scan", zoo.independent, tmp_path / "broken.onnx", "-f", zoo.bundle, "--output", tmp_path / "b.jsonl"
    )
    assert failed.code == ExitCode.input


def test_scan_usage_errors_are_one_line(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for arguments in (
        ("scan", empty, "-f", zoo.bundle),
        ("scan", str(tmp_path / "*.onnx"), "-f", zoo.bundle),
        ("scan", zoo.target, "--output", tmp_path / "x.jsonl"),
        ("scan", "-f", zoo.bundle),
    ):
        result = run_cli(*arguments)
        assert result.code == ExitCode.usage, (arguments, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    not_a_journal = tmp_path / "notes.jsonl"
    not_a_journal.write_text("hello\n")
    result = run_cli("scan", zoo.target, "-f", zoo.bundle, "--output", not_a_journal, "--resume")
    assert result.code == ExitCode.usage and not_a_journal.read_text() == "hello\n"


def test_a_journal_that_cannot_be_written_is_one_line_before_any_work(
    zoo: Zoo, tmp_path: Path, run_cli: RunCli
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the journal's folder should be")
    result = run_cli("scan", zoo.target, "-f", zoo.bundle, "--output", blocker / "scan.jsonl")
    assert result.code == ExitCode.input, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--output" in result.stderr
    assert blocker.read_text().startswith("a file")


def test_a_symlink_loop_is_a_failed_suspect_not_a_crash(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    hub = tmp_path / "hub"
    hub.mkdir()
    shutil.copy(zoo.fine_tuned, hub / "copy.onnx")
    (hub / "loop.onnx").symlink_to(hub / "loop.onnx")
    journal = tmp_path / "scan.jsonl"
    result = run_cli("scan", hub, hub / "loop.onnx", "-f", zoo.bundle, "--output", journal)
    assert result.code == ExitCode.match, result.stderr
    rows = {str(r["suspect"]): r for r in _rows(journal)}
    assert set(rows) == {os.path.abspath(hub / "copy.onnx"), os.path.abspath(hub / "loop.onnx")}
    assert rows[os.path.abspath(hub / "loop.onnx")]["status"] == "error"


def test_a_screened_scan_accuses_as_asking_every_point_does(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    """By default a bundle stops once no answers to its unasked points could make a match: every pair's verdict
    is the one asking every point gives, a match is asked every point, and a suspect that is no copy fewer."""
    hub = tmp_path / "hub"
    hub.mkdir()
    for path in (zoo.target, zoo.fine_tuned, zoo.pruned, zoo.independent, zoo.other_architecture):
        shutil.copy(path, hub / path.name)
    fingerprints = _bundles(zoo, tmp_path / "fingerprints")
    screened, every = tmp_path / "screened.jsonl", tmp_path / "every.jsonl"
    first = run_cli("scan", hub, "--fingerprints", fingerprints, "--output", screened)
    second = run_cli("scan", hub, "--fingerprints", fingerprints, "--output", every, "--every-point")
    assert first.code == second.code == ExitCode.match, first.stderr + second.stderr
    assert "points asked" in first.stdout and "points asked" not in second.stdout  # the summary says how many
    full = {(r["suspect"], r["fingerprint"]): r for r in _rows(every)}
    rows = _rows(screened)
    assert len(rows) == len(full) == 10 and all(r["status"] == "ok" for r in rows)
    stopped = []
    for row in rows:
        whole = full[row["suspect"], row["fingerprint"]]
        assert row["verdict"] == whole["verdict"], row
        assert whole["points_queried"] == whole["points_in_bundle"] and whole["stopped_because"] == ""
        if row["stopped_because"]:
            assert row["stopped_because"] == "match ruled out" and row["verdict"] != "match"
            assert int(str(row["points_queried"])) < int(str(row["points_in_bundle"]))
            assert float(str(row["p_value"])) <= float(str(whole["p_value"]))  # the best case: a lower bound
            stopped.append(row)
        else:
            assert row["points_queried"] == whole["points_queried"] and row["p_value"] == whole["p_value"]
    assert any(r["verdict"] == "match" for r in rows)
    assert stopped and any(str(r["suspect"]).endswith(zoo.independent.name) for r in stopped)
    asked = sum(int(str(r["points_queried"])) for r in rows)
    assert f"{asked:,} of the bundles' {sum(int(str(r['points_in_bundle'])) for r in rows):,} points" in first.stdout


def _linear(path: Path, classes: int, scale: float = 1.0) -> Path:
    """A 5-feature linear classifier: ``classes`` logits, or one logit unit where ``classes`` is 1."""
    rng = np.random.default_rng(3)
    weights = [
        numpy_helper.from_array((scale * rng.normal(0, 1, (5, classes))).astype(np.float32), "w"),
        numpy_helper.from_array((scale * rng.normal(0, 0.1, classes)).astype(np.float32), "b"),
    ]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["logits"])],
        path.stem,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _tabular_bundle(zoo: Zoo, folder: Path, classes: int = 3) -> Path:
    """A bundle of a 5-feature linear classifier: no digits model takes its points."""
    bundle = folder / f"tabular-{classes}.fingerprint.safetensors"
    fingerprint(
        _linear(folder / f"tabular-{classes}.onnx", classes),
        bundle,
        signing_key=load_private_key(zoo.private_key),
        settings=FingerprintSettings(n=20, seed=0),
    )
    return bundle


def test_a_single_unit_suspect_is_asked_every_point_at_once(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    """A suspect answering one unit (a logit or a probability: its values decide, the first answers for all) is
    asked every point at once, not in rounds of 5 % that would decide from a few values: its rows are those of
    asking every point. A suspect of two logits is screened."""
    folder = tmp_path / "fingerprints"
    folder.mkdir()
    bundle = _tabular_bundle(zoo, folder, classes=1)
    scaled = _linear(tmp_path / "scaled.onnx", 1, scale=0.2)  # the same labels, logits a fifth: most within [0, 1]
    one_unit = load_bundle(bundle)
    suspect = as_classifier(scaled, num_classes=one_unit.num_classes)
    assert suspect.reads_output_by_values(one_unit.points.shape[1:])
    assert not as_classifier(_linear(tmp_path / "two.onnx", 2), num_classes=2).reads_output_by_values((5,))
    screened, every = tmp_path / "screened.jsonl", tmp_path / "every.jsonl"
    run_cli("scan", scaled, "-f", bundle, "--output", screened)
    run_cli("scan", scaled, "-f", bundle, "--output", every, "--every-point")
    (row,), (whole,) = _rows(screened), _rows(every)
    assert row["status"] == "ok" and row["stopped_because"] == "" and row["points_queried"] == 20
    assert {k: v for k, v in row.items() if k != "seconds"} == {k: v for k, v in whole.items() if k != "seconds"}


def test_a_bundle_the_suspect_cannot_take_fails_alone_and_the_rest_are_screened(
    zoo: Zoo, tmp_path: Path, run_cli: RunCli
) -> None:
    """A hub's bundles rarely all fit one suspect: the one whose points it cannot take fails with its reason,
    and the others are still asked together and screened (a scan of the real corpus asked every point of every
    bundle once any bundle did not fit)."""
    fingerprints = _bundles(zoo, tmp_path / "fingerprints")
    _tabular_bundle(zoo, fingerprints)
    screened, every = tmp_path / "screened.jsonl", tmp_path / "every.jsonl"
    first = run_cli("scan", zoo.independent, zoo.fine_tuned, "--fingerprints", fingerprints, "--output", screened)
    second = run_cli(
        "scan", zoo.independent, zoo.fine_tuned, "--fingerprints", fingerprints, "--output", every, "--every-point"
    )
    assert first.code == second.code == ExitCode.match, first.stderr + second.stderr
    rows, wholes = _rows(screened), {(r["suspect"], r["fingerprint"]): r for r in _rows(every)}
    assert len(rows) == len(wholes) == 6
    stopped = []
    for row in rows:
        whole = wholes[(row["suspect"], row["fingerprint"])]
        if row["fingerprint"] == "tabular-3.fingerprint.safetensors":
            assert row["status"] == whole["status"] == "error" and row["error"] == whole["error"]
            assert "takes inputs of shape" in str(row["error"])
            continue
        assert row["status"] == "ok" and row["verdict"] == whole["verdict"]
        if row["stopped_because"]:
            assert row["stopped_because"] == "match ruled out" and row["verdict"] != "match"
            assert int(str(row["points_queried"])) < int(str(whole["points_queried"]))
            stopped.append(row)
    assert stopped and any(str(row["suspect"]).endswith(zoo.independent.name) for row in stopped)


def test_the_screen_decides_as_every_point_for_suspects_of_every_agreement(zoo: Zoo, tmp_path: Path) -> None:
    """Suspects agreeing with the bundles on 30 % to 100 % of their points (near the evidence threshold included),
    some leaving points unanswered, some answering classes the bundles do not have (a suspect of another task:
    none, 1 %, 5 % or half of the points): the screened group audit accuses exactly as asking every point does,
    under the evidence rule and under the paper's threshold rule, a match asked every point; the verdicts are
    the same but where unasked points would have answered classes the bundle lacks (docs: "Scan a model hub")."""
    fingerprints = _bundles(zoo, tmp_path / "fingerprints")
    bundles = [load_bundle(path) for path in sorted(fingerprints.glob("*.safetensors"))]
    truth = {bundle.points[i].tobytes(): int(bundle.labels[i]) for bundle in bundles for i in range(len(bundle.points))}
    classes = bundles[0].num_classes
    rng = np.random.default_rng(0)
    stopped = verdicts = other_task = 0
    seen: set[str] = set()
    for trial in range(64):
        agreement, unanswered = rng.uniform(0.3, 1.0), 0.03 if trial % 4 == 3 else 0.0
        foreign = (0.0, 0.01, 0.05, 0.5)[trial // 4 % 4]

        def suspect(
            batch: np.ndarray,
            trial: int = trial,
            agreement: float = agreement,
            gone: float = unanswered,
            foreign: float = foreign,
        ) -> np.ndarray:
            """Each point's answer a function of the point alone: its label, another, a class the bundles do not
            have, or no answer (NaN)."""
            scores = np.zeros((len(batch), classes + 2))
            for row, point in enumerate(batch):
                key = point.tobytes()
                draw = hashlib.sha256(key + trial.to_bytes(2, "little")).digest()
                share, lost, other = (int.from_bytes(draw[i : i + 4], "little") / 2**32 for i in (0, 4, 8))
                label = truth[key] if share < agreement else (truth[key] + 1) % classes
                scores[row, classes + 1 if other < foreign else label] = np.nan if lost < gone else 1.0
            return scores

        classifier = CallableClassifier(suspect, name=f"suspect-{trial}")
        for options in (AuditOptions(), AuditOptions(threshold=0.85)):
            every = audit_group(bundles, classifier, options)
            screened = audit_group(bundles, classifier, options, screen=True)
            for whole, early in zip(every, screened, strict=True):
                case = (trial, agreement, foreign, options.threshold, whole.fingerprint)
                assert (early.verdict == "match") == (whole.verdict == "match"), case
                if early.verdict != whole.verdict:  # unasked points answered classes the bundle lacks: documented
                    assert foreign and early.sequential is not None and not whole.answered_enough, case
                    assert early.verdict == "no match" and whole.verdict == "inconclusive", case
                verdicts += 1
                seen.add(whole.verdict)
                if early.verdict == "match":
                    assert early.points_queried == whole.points_queried and early.sequential is None
                elif early.sequential is not None:
                    assert early.points_queried < whole.points_queried and early.p_value <= whole.p_value
                    stopped += 1
                    other_task += foreign == 0.5 and not unanswered
    assert seen == {"match", "no match", "inconclusive"} and 0 < stopped < verdicts
    assert other_task >= 8  # bundle × rule pairs of suspects answering half with no class of the bundle: closed
