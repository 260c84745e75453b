"""The human report: rich text on a console for every command's result (and the evaluation plot)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..audit import AuditResult
from ..bundle import Bundle
from ..calibrate import Calibration
from ..errors import UsageError
from ..evaluate import GROUPS, Evaluation
from ..files import write_atomic
from ..text import shown

if TYPE_CHECKING:
    from ..fingerprint_settings import FingerprintResult
    from ..licensing import IssuedCopy
    from ..scan import ScanSummary


def outside_text(text: object) -> str:
    """Outside text (names, paths, metadata, server messages) as console text: control characters
    escaped (``text.shown``) and rich markup escaped, so it can neither drive the terminal nor style itself."""
    return escape(shown(text))


def render_audit(results: Sequence[AuditResult], console: Console) -> None:
    """One result: a detailed report; several: a table ranked by matching rate."""
    _render_licensees(results, console)
    if len(results) == 1:
        _render_one(results[0], console)
        return
    table = Table(
        "#", "suspect", "fingerprint", "matching rate", "p-value", "answered", "verdict", title="ipguard-onnx audit"
    )
    for rank, result in enumerate(results, start=1):
        style = _STYLES[result.verdict]
        table.add_row(
            str(rank),
            outside_text(result.suspect),
            outside_text(result.fingerprint),
            f"[{style}]{result.matching_rate:.1%}[/]",
            f"{result.p_value:.1e}",
            f"{result.points_queried - result.points_skipped}/{result.points_queried}",
            f"[{style}]{result.verdict.upper()}[/]",
        )
    console.print(table)


def _render_licensees(results: Sequence[AuditResult], console: Console) -> None:
    for result in results:
        if result.licensee and result.matched:
            console.print(
                f"[bold red]LICENSEE {outside_text(result.licensee)}[/]: {outside_text(result.suspect)} answers "
                f"{outside_text(result.licensee)}'s secret "
                f"triggers ({result.matching_rate:.0%}, p = {result.p_value:.1e}) — the copy issued to them"
            )


_STYLES = {"match": "bold red", "no match": "bold green", "inconclusive": "bold yellow"}
_VERDICTS = {
    "match": "MATCH — the suspect labels the fingerprint like the protected model",
    "no match": "NO MATCH — the suspect does not behave like the protected model",
    "inconclusive": "INCONCLUSIVE — no verdict either way (see 'because')",
}


def _render_one(result: AuditResult, console: Console) -> None:
    style = _STYLES[result.verdict]
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    table.add_row("verdict", f"[{style}]{_VERDICTS[result.verdict]}[/]")
    if result.why:
        table.add_row("because", outside_text(result.why))
    answered = result.points_queried - result.points_skipped
    rule = f"  threshold {result.threshold:.0%}" if result.rule == "threshold" else ""
    table.add_row(
        "matching rate",
        f"[{style}]{result.matching_rate:.1%}[/] ({result.points_matched}/{answered} answered points){rule}",
    )
    how = (
        "anytime-valid: the evidence martingale's peak"
        if result.sequential is not None
        else "the parts' p-values combined, Bonferroni"
        if len(result.parts) > 1
        else f"null agreement q0 = {result.null_agreement:.2f}"
    )
    table.add_row("evidence", f"p = {result.p_value:.1e}: {result.evidence} ({how})")
    if result.sequential is not None:
        run = result.sequential
        table.add_row(
            "sequential",
            f"{run.queries} of {run.points} points asked ({run.batch} per round): {run.stopped_because}"
            f" (verdict error ≤ {run.verdict_error:g}; martingales at the stop: match {run.match_wealth:.3g},"
            f" no match {run.no_match_wealth:.3g})",
        )
    for part in result.parts:
        table.add_row(
            f"  {outside_text(part.kind)} points",
            f"{part.matching_rate:.1%} ({part.matched}/{part.answered}), p = {part.p_value:.1e} "
            f"(q0 = {part.null_agreement:.2f}: {outside_text(part.null_agreement_source or 'default')})",
        )
    table.add_row("suspect", f"{outside_text(result.suspect)}  sha256 {result.suspect_sha256 or 'n/a'}")
    for key, value in result.suspect_details.items():
        if key != "path":
            table.add_row(f"  {outside_text(key)}", outside_text(value))
    pin = "pinned by --trusted-key" if result.signer_pinned else "not pinned: pass --trusted-key to require it"
    table.add_row("fingerprint", f"{outside_text(result.fingerprint)}  signed by {result.signer_key_id} ({pin})")
    skipped = ", ".join(f"{count} × {outside_text(reason)}" for reason, count in result.skipped_reasons.items())
    table.add_row("points skipped", f"{result.points_skipped}" + (f" ({skipped})" if skipped else ""))
    if result.input_adaptation:
        table.add_row("input adaptation", outside_text("; ".join(result.input_adaptation)))
    table.add_row("providers", outside_text(", ".join(result.providers)) or "n/a")
    table.add_row("query time", f"{result.seconds:.2f} s")
    console.print(table)
    console.print()


def render_fingerprint(result: FingerprintResult, console: Console) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    settings = result.settings
    table.add_row("bundle", f"[bold]{outside_text(result.bundle_path)}[/] signed by {result.signer_key_id}")
    table.add_row("target", f"{outside_text(result.target)}  sha256 {result.target_sha256}")
    table.add_row(
        "points",
        f"{result.points} of {result.requested} requested ({result.variant}, k={result.k:g}, seed {settings.seed})",
    )
    for part in result.parts:
        table.add_row(
            f"  {part.kind}",
            f"{part.points} points, q0 = {part.null_agreement:.3f} — {outside_text(part.how)}; built because "
            f"{outside_text(part.why)}; q0: {outside_text(part.null_agreement_source)}",
        )
    for skipped in result.parts_skipped:
        table.add_row("  not built", outside_text(skipped))
    evidence = f"match when the combined p-value ≤ {settings.false_accusation_rate:g} (signed)" + (
        "" if not result.uncalibrated else "; UNCALIBRATED: " + outside_text(result.uncalibrated)
    )
    table.add_row("verdict rule", evidence)
    if result.unique:
        record = json.loads(result.unique)
        roles = [member["role"] for member in record["panel"]]
        table.add_row(
            "unique",
            f"panel of {roles.count('positive')} owner-made copies and {roles.count('reference')} references "
            f"({record['panel_seconds']:.1f} s); on the chosen points copies agree {record['positive_agreement']:.0%}"
            f", references disagree {record['reference_disagreement']:.0%}",
        )
    if result.rounds and result.parity is None:  # no rounds: no search ran (--mistakes 1)
        per_100 = 100 * result.search_seconds / max(result.points, 1)
        table.add_row(
            "search",
            f"gradient-free on onnxruntime ({outside_text(result.gradient_free_reason)}): "
            f"{result.candidates_searched} candidates "
            f"in {result.rounds} round(s), {result.queries:,} queries, {result.search_seconds:.2f} s "
            f"({per_100:.2f} s per 100 points)",
        )
        table.add_row(
            "dropped",
            f"{result.dropped_unconverged} never satisfied Eq. 5 on the way to their anchor"
            + (
                f", {result.dropped_disagreement} where the label output disagrees with the scores"
                if result.dropped_disagreement
                else ""
            ),
        )
    elif result.rounds:
        table.add_row(
            "search",
            f"{result.candidates_searched} candidates in {result.rounds} round(s), "
            f"{result.mean_iterations:.1f} Adam iterations per point, {result.search_seconds:.2f} s",
        )
        table.add_row(
            "dropped",
            f"{result.dropped_unconverged} not converged, {result.dropped_disagreement} labelled differently "
            "by onnxruntime than by the surrogate",
        )
    if result.search_chosen_because:
        table.add_row("chosen because", outside_text(result.search_chosen_because))
    if result.search_stopped:
        table.add_row("stopped", f"the search ended early: {outside_text(result.search_stopped)}")
    if result.shortfall:
        table.add_row("short", f"[bold]{outside_text(result.shortfall)}[/bold]")
    table.add_row("input", f"{list(result.input_shape)} per sample ({outside_text(result.input_shape_source)})")
    table.add_row("output", f"{outside_text(result.output_name)} ({outside_text(result.output_chosen_because)})")
    if result.conversion is not None:
        passed = len(result.conversion.failed_attempts)
        table.add_row(
            "surrogate",
            outside_text(result.conversion.summary)
            + (f"; {passed} earlier attempt(s) passed over (see the bundle)" if passed else ""),
        )
    if result.parity is not None:
        table.add_row(
            "parity",
            f"surrogate vs onnxruntime on {result.parity.points} points: max relative difference "
            f"{result.parity.max_abs_difference:.1e}, labels agree {result.parity.label_agreement:.0%}",
        )
    table.add_row("threshold", f"{settings.threshold:.0%} (for the paper's rule, audit --threshold; signed)")
    table.add_row("providers", outside_text(", ".join(result.providers)))
    table.add_row("time", f"{result.total_seconds:.2f} s in all")
    console.print(table)


def render_bundle(bundle: Bundle, console: Console) -> None:
    pin = "pinned to --trusted-key" if bundle.signer_pinned else "not pinned"
    console.print(f"[bold]{outside_text(bundle.name)}[/]  sha256 {bundle.sha256}")
    console.print(f"signature [bold green]valid[/], signer {bundle.signer_key_id} ({pin})")
    console.print(
        f"{len(bundle.points)} points of shape {tuple(bundle.points.shape[1:])}, {bundle.num_classes} classes"
    )
    table = Table("field", "value", box=None, pad_edge=False)
    hidden = {"signature", "signer_public_key"}
    for key, value in sorted(bundle.metadata.items()):
        if key not in hidden:
            table.add_row(
                outside_text(key), outside_text(value)
            )  # signed, yet written by whoever holds the key: never markup
    console.print(table)


def render_evaluation(evaluation: Evaluation, console: Console) -> None:
    """Matching rates grouped like the paper's Table 5, then robustness, uniqueness, ARUC and gap."""
    table = Table(
        "group", "suspect", "matching rate", "verdict", title=f"evaluation of {outside_text(evaluation.fingerprint)}"
    )
    for group in GROUPS:
        for row in sorted((r for r in evaluation.rows if r.group == group), key=lambda r: -r.matching_rate):
            table.add_row(group, outside_text(row.suspect), f"{row.matching_rate:.2f}", row.verdict)
    console.print(table)
    console.print(
        f"threshold {evaluation.threshold:.2f}: robustness {evaluation.robustness:.2f}, uniqueness "
        f"{evaluation.uniqueness:.2f}"
        + (
            ""
            if np.isnan(evaluation.hard_positive_robustness)
            else f", hard positives verified {evaluation.hard_positive_robustness:.2f}"
        )
    )
    style = "green" if evaluation.gap > 0 else "red"
    console.print(
        f"ARUC (Eq. 7, r = {evaluation.r}) [bold]{evaluation.aruc:.3f}[/]; gap (smallest positive − largest "
        f"negative) [{style}]{evaluation.gap:+.2f}[/]"
    )
    if not np.isnan(evaluation.roc_auc):
        console.print(
            f"every copy (hard positives included) against the negatives: ROC AUC {evaluation.roc_auc:.3f}; "
            f"TPR {evaluation.tpr_at_1_percent_fpr:.2f} at 1 % FPR, {evaluation.tpr_at_5_percent_fpr:.2f} at 5 % FPR"
        )
    accused = "red" if evaluation.false_accusations else "green"
    console.print(
        f"the default verdict (the evidence rule): {evaluation.verdict_tpr:.0%} of the copies judged a match; "
        f"[{accused}]{evaluation.false_accusations} independent model(s) judged a match[/]"
    )


def plot_evaluation(evaluation: Evaluation, path: Path) -> None:
    """Robustness and uniqueness against the threshold, the ARUC area shaded (the paper's Figure 2)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'ipguard-onnx[plot]'") from None
    taus = np.asarray(evaluation.curve_thresholds)
    robust, unique = np.asarray(evaluation.robustness_curve), np.asarray(evaluation.uniqueness_curve)
    figure, axes = plt.subplots(figsize=(5, 3.5))
    axes.plot(taus, robust, label="robustness", color="tab:red")
    axes.plot(taus, unique, label="uniqueness", color="tab:blue")
    axes.fill_between(
        taus, np.minimum(robust, unique), alpha=0.2, color="tab:purple", label=f"ARUC {evaluation.aruc:.3f}"
    )
    axes.axvline(evaluation.threshold, color="gray", linestyle=":", label=f"threshold {evaluation.threshold:.2f}")
    axes.set_xlabel("matching-rate threshold τ")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(shown(evaluation.fingerprint).replace("$", r"\$"), fontsize=9)  # no mathtext from a name
    axes.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    image = io.BytesIO()
    try:
        figure.savefig(image, dpi=120, format="png")
    finally:
        plt.close(figure)
    write_atomic(path, image.getvalue(), option="--plot")


def render_calibration(result: Calibration, console: Console) -> None:
    table = Table("independent model", "sha256", "matching rate", box=None, pad_edge=False)
    for negative in sorted(result.negatives, key=lambda n: -n.matching_rate):
        table.add_row(outside_text(negative.name), (negative.sha256 or "n/a")[:16], f"{negative.matching_rate:.1%}")
    console.print(table)
    console.print(
        f"null agreement q0 = {result.null_agreement:.3f} (highest {max(n.matching_rate for n in result.negatives):.1%}"
        f" + margin {result.margin:g})\nthreshold {result.threshold:.0%} for a false-accusation rate of "
        f"{result.false_accusation_rate:g} (p at the threshold {result.p_value_at_threshold:.1e})\n"
        f"re-signed [bold]{outside_text(result.bundle_path)}[/] with key {result.signer_key_id}"
    )


def render_issued(result: IssuedCopy, console: Console) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    table.add_row("licensee", f"[bold]{outside_text(result.licensee)}[/]")
    table.add_row("copy", f"{outside_text(result.model_path)}  sha256 {result.model_sha256}")
    table.add_row(
        "registry", f"{outside_text(result.registry_bundle)} (signed by {result.signer_key_id}; keep it private)"
    )
    table.add_row(
        "triggers",
        f"{result.triggers} held-out triggers answered with the licensee's labels: copy {result.trigger_accuracy:.0%}"
        f", original model {result.original_trigger_agreement:.0%}; match threshold {result.threshold:.0%}",
    )
    change = result.accuracy_change
    accuracy = (
        f"; accuracy {result.clean_accuracy_before:.1%} → {result.clean_accuracy_after:.1%} ({change:+.2f} points)"
        if change is not None
        else " (no labels in --data, so no accuracy)"
    )
    table.add_row("clean data", f"copy agrees with the original on {result.clean_agreement:.1%}{accuracy}")
    table.add_row(
        "training", f"{result.epochs} epochs, parity {result.parity_max_abs_difference:.1e}, {result.seconds:.1f} s"
    )
    console.print(table)


def render_scan(summary: ScanSummary, console: Console) -> None:
    console.print(
        f"scanned {summary.suspects} suspects × {summary.bundles} bundles in {summary.seconds:.1f} s "
        f"(first results after {summary.first_result_seconds:.1f} s): "
        f"{summary.written} results written, {summary.already_done} already in {outside_text(summary.journal)}; "
        f"{summary.matches} matches, {summary.errors} failed or inconclusive, "
        f"{summary.internal_errors} internal errors"
        + (
            f"; {summary.points_asked:,} of the bundles' {summary.points_in_bundles:,} points asked "
            "(a bundle stops once a match is ruled out; --every-point asks them all)"
            if summary.points_asked < summary.points_in_bundles
            else ""
        ),
        soft_wrap=True,
        highlight=False,
    )
