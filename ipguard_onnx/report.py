"""Formatters: render the core's frozen results as rich text or JSON; no logic lives here."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from enum import StrEnum

from rich.console import Console
from rich.table import Table

from . import __version__
from .audit import AuditResult
from .bundle import Bundle
from .fingerprint import FingerprintResult


class OutputFormat(StrEnum):
    """How results are written: a human report, or JSON for machines (stdout or --output)."""

    text = "text"
    json = "json"


def audit_json(results: Sequence[AuditResult]) -> str:
    rows = []
    for result in results:
        row = dataclasses.asdict(result)
        row["verdict"] = result.verdict
        row["providers"] = list(result.providers)
        rows.append(row)
    return json.dumps({"tool": "ipguard-onnx", "version": __version__, "results": rows}, indent=2)


def render_audit(results: Sequence[AuditResult], console: Console) -> None:
    for result in results:
        style = "bold red" if result.matched else "bold green"
        verdict = (
            "MATCH — the suspect labels the fingerprint like the protected model"
            if result.matched
            else ("NO MATCH — the suspect does not behave like the protected model")
        )
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="dim")
        table.add_column()
        table.add_row("verdict", f"[{style}]{verdict}[/]")
        table.add_row(
            "matching rate",
            f"[{style}]{result.matching_rate:.1%}[/] ({result.points_matched}/{result.points_queried} points)"
            f"  threshold {result.threshold:.0%}",
        )
        table.add_row("suspect", f"{result.suspect}  sha256 {result.suspect_sha256 or 'n/a'}")
        pin = "pinned by --trusted-key" if result.signer_pinned else "not pinned: pass --trusted-key to require it"
        table.add_row("fingerprint", f"{result.fingerprint}  signed by {result.signer_key_id} ({pin})")
        table.add_row("points skipped", str(result.points_skipped))
        table.add_row("providers", ", ".join(result.providers) or "n/a")
        table.add_row("time", f"{result.seconds:.2f} s")
        console.print(table)
        console.print()


def render_fingerprint(result: FingerprintResult, console: Console) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    settings = result.settings
    table.add_row("bundle", f"[bold]{result.bundle_path}[/] signed by {result.signer_key_id}")
    table.add_row("target", f"{result.target}  sha256 {result.target_sha256}")
    table.add_row(
        "points",
        f"{result.points} of {result.requested} requested (IPGuard-{settings.suffix}, k={settings.k:g}, "
        f"seed {settings.seed})",
    )
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
    table.add_row(
        "parity",
        f"surrogate vs onnxruntime on {result.parity.points} points: max relative difference "
        f"{result.parity.max_abs_difference:.1e}, labels agree {result.parity.label_agreement:.0%}",
    )
    table.add_row("threshold", f"{settings.threshold:.0%} (recommended, signed into the bundle)")
    table.add_row("providers", ", ".join(result.providers))
    table.add_row("time", f"{result.total_seconds:.2f} s in all")
    console.print(table)


def fingerprint_json(result: FingerprintResult) -> str:
    row = dataclasses.asdict(result)
    row["bundle_path"] = str(result.bundle_path)
    row["providers"] = list(result.providers)
    return json.dumps({"tool": "ipguard-onnx", "version": __version__, "fingerprint": row}, indent=2, default=str)


def bundle_json(bundle: Bundle) -> str:
    return json.dumps(
        {
            "fingerprint": bundle.name,
            "sha256": bundle.sha256,
            "signature": "valid",
            "signer_key_id": bundle.signer_key_id,
            "signer_pinned": bundle.signer_pinned,
            "points": len(bundle.points),
            "metadata": dict(sorted(bundle.metadata.items())),
        },
        indent=2,
    )


def render_bundle(bundle: Bundle, console: Console) -> None:
    pin = "pinned to --trusted-key" if bundle.signer_pinned else "not pinned"
    console.print(f"[bold]{bundle.name}[/]  sha256 {bundle.sha256}")
    console.print(f"signature [bold green]valid[/], signer {bundle.signer_key_id} ({pin})")
    console.print(
        f"{len(bundle.points)} points of shape {tuple(bundle.points.shape[1:])}, {bundle.num_classes} classes"
    )
    table = Table("field", "value", box=None, pad_edge=False)
    hidden = {"signature", "signer_public_key"}
    for key, value in sorted(bundle.metadata.items()):
        if key not in hidden:
            table.add_row(key, value)
    console.print(table)
