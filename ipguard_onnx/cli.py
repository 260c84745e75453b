"""The ipguard-onnx command line: thin typer commands over the core; errors become exit codes.

Every fixed set of choices is a str enum typer validates (a bad value is a usage error, exit 2);
the exit codes are decided here (``ExitCode``, docs/reference/exit-codes.md), not in the core.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import requirements
from .audit import Expectation, check_false_accusation_rate, check_min_answered, check_threshold
from .deadlines import DEFAULT_TIME_BUDGET
from .discovery import bundle_paths, load_bundles, local_files, read_manifest, suspect_names
from .discovery import suspects as discovered_suspects
from .errors import UsageError
from .exit_codes import audit_exit_code, scan_exit_code
from .files import PNG, REPORT, check_outputs, check_replaceable, same_file
from .models import Providers, WireProtocol
from .models.bounded import model_timeout as bounded_timeout
from .models.http import DEFAULT_DEADLINE
from .option_values import (
    hold_value,
    key_password,
    method_name,
    named_values,
    names_file,
    parse_class_names,
    parse_domain,
    parse_preprocessing,
    parse_shape,
    required_shape,
    signing_key_for,
    trusted_public_key,
    unnamed,
)
from .report import AuditFormat, DocumentFormat, ReportFormat, outside_text
from .report.progress import count_progress, search_progress
from .search import METHODS, StartKind, TargetLabelRule
from .sequential import DEFAULT_BATCH, DEFAULT_VERDICT_ERROR, SequentialSettings
from .terminal import (
    DEBUG,
    OneLineUsageErrors,
    one_line_errors,
    present,
    report_path,
    run,
    stderr,
    stdout_console,
)
from .text import shown

if TYPE_CHECKING:
    pass


app = typer.Typer(
    name="ipguard-onnx",
    cls=OneLineUsageErrors,
    help="Fingerprint an ONNX classifier by its classification boundary (IPGuard) and audit suspects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


FingerprintFilesOption = Annotated[
    list[Path] | None, typer.Option("--fingerprint", "-f", help="A fingerprint bundle (repeatable).")
]
FingerprintsFolderOption = Annotated[
    Path | None, typer.Option("--fingerprints", help="A folder of bundles: check every suspect against each.")
]
LicenseesOption = Annotated[
    Path | None,
    typer.Option(help="A licensee registry (from 'issue'): name the licensee whose secret triggers match."),
]
"""The bundle options ``audit`` and ``scan`` share (``discovery.bundle_paths``, ``discovery.load_bundles``)."""
SequentialOption = Annotated[
    bool | None,
    typer.Option(
        "--sequential/--no-sequential",
        help="Ask a few points at a time and stop once the verdict is settled [default: on for remote APIs, off for files].",
    ),
]
SequentialBatchOption = Annotated[int, typer.Option(help="Points per round of a sequential audit.")]
VerdictErrorOption = Annotated[
    float, typer.Option(help="Sequential: chance that stopping early changes the verdict of asking every point.")
]
"""The sequential-audit options ``audit`` and ``scan`` share (``sequential``)."""
ModelTimeoutOption = Annotated[
    float | None,
    typer.Option(
        help="Seconds one run of an ONNX suspect may take; past it the suspect is stopped and fails "
        "[default: $IPGUARD_ONNX_MODEL_TIMEOUT, else 120].",
        show_default=False,
    ),
]
DeadlineOption = Annotated[
    float,
    typer.Option(help="Seconds the audit of one remote API may take in all: requests, retries, waits."),
]
"""The deadlines ``audit`` and ``scan`` share (SECURITY.md "Deadlines")."""
ReportOption = Annotated[
    Path | None,
    typer.Option(
        "--report", help="Write the --format json report (audit: or sarif) here, atomically, instead of stdout."
    ),
]
"""Where every command's machine-readable report goes; ``--output`` always names the artifact a command makes."""
FORMAT_HELP = "text: a report for people on stdout; json: the result on stdout or --report, the summary on stderr."
DeprecatedOutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", hidden=True, help="Former name of --report (deprecated).")
]


def _print_version(value: bool) -> None:
    if value:
        from ._version import __version__

        sys.stdout.write(f"ipguard-onnx {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True)
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an internal error.")] = False,
) -> None:
    """Fingerprint an ONNX classifier by its classification boundary (IPGuard) and audit suspects."""
    DEBUG["on"] = debug


@app.command()
def keygen(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Private key path; the public key is written beside it as .pub.pem.")
    ] = Path("ipguard-key.pem"),
    force: Annotated[bool, typer.Option(help="Overwrite existing key files.")] = False,
) -> None:
    """Write an Ed25519 signing key (PEM, mode 0600) and its public key.

    Set IPGUARD_ONNX_KEY_PASSWORD to encrypt the private key with that password.
    """
    from .keys import write_keypair

    with one_line_errors():
        if not out.name or out.name in (".", ".."):
            raise UsageError(f"--out {shown(out)!r} names no file; pass a file path such as owner.pem")
        public = out.with_name(out.name.removesuffix(".pem") + ".pub.pem")
        pair = write_keypair(out, public, password=key_password(), force=force)
        stderr.print(
            f"private key {outside_text(pair.private_path)} (mode 0600)\npublic key  "
            f"{outside_text(pair.public_path)}\nkey id      {pair.key_id}",
            highlight=False,
        )


@app.command()
def fingerprint(
    model: Annotated[Path, typer.Argument(help="The ONNX classifier to protect.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Bundle path [default: MODEL.fingerprint.safetensors].")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Number of fingerprint points.")] = 100,
    k: Annotated[
        float | None,
        typer.Option(
            "--k",
            help="Margin past the boundary, in logits (Eq. 5). Larger: more robust, less unique. "
            "[default: 3 with --plain, 1 with --unique]",
            show_default=False,
        ),
    ] = None,
    init: Annotated[
        StartKind | None,
        typer.Option(help="Start points: 'data' (needs --data) or 'random' [default: data if --data, else random]."),
    ] = None,
    label: Annotated[TargetLabelRule, typer.Option(help="Target label j.")] = TargetLabelRule.least_likely,
    data: Annotated[Path | None, typer.Option(help="Owner data: .npy/.npz, or a folder of images.")] = None,
    domain: Annotated[
        str | None,
        typer.Option(
            help="Input bounds LOW,HIGH, or 'data' for per-feature bounds from --data [default: 0,1; integer "
            "inputs: the ids their graph reads, where it says]."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same points.")] = 0,
    threshold: Annotated[
        float, typer.Option(help="Matching-rate threshold stored for the paper's rule (audit --threshold).")
    ] = 0.85,
    max_iterations: Annotated[int, typer.Option(help="Adam iterations per point at most.")] = 1000,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate on the input.")] = 0.01,
    key: Annotated[
        Path | None, typer.Option(help="Ed25519 private key (PEM) [default: the user's key, created on first use].")
    ] = None,
    providers: Annotated[Providers, typer.Option(help="onnxruntime execution providers.")] = Providers.auto,
    method: Annotated[
        str,
        typer.Option(
            parser=method_name,
            metavar="METHOD",
            help=f"The search: {', '.join(METHODS)} (ipguard: the paper's; random, fgsm, igsm, cw-l2: its baselines, "
            "Section 5.1.3; the others need no gradient).",
        ),
    ] = METHODS[0],
    epsilon: Annotated[float, typer.Option(help="L∞ budget of the fgsm and igsm baselines.")] = 0.1,
    unique: Annotated[
        bool | None,
        typer.Option(
            "--unique/--plain",
            help="--unique: search points copies share and independent models do not, with owner-made copies and "
            "references trained on --data (beyond the paper). --plain: the paper's search. "
            "[default: --unique with --data for inputs of ≤ 4096 values, else --plain]",
            show_default=False,
        ),
    ] = None,
    references: Annotated[int, typer.Option(help="With --unique: references to train on --data.")] = 16,
    students: Annotated[
        int,
        typer.Option(
            help="With --unique: owner-made extracted students (trained on --data plus synthetic queries "
            "labelled by the target) among the positives, to catch copies stolen through an API."
        ),
    ] = 0,
    mistakes: Annotated[
        float | None,
        typer.Option(
            help="Share of --n taken from the target's own mistakes on labelled --data (.npz with x and y; "
            "AKH-style, catches students extracted through an API); the search makes the rest. 1: mistakes alone; "
            "0: none. [default: with labelled --data, n/2 mistakes as a part of their own]"
        ),
    ] = None,
    parts: Annotated[
        str | None,
        typer.Option(
            help="Evidence parts to build, comma-separated: boundary, mistakes, students. "
            "[default: composed from what you give: boundary always; mistakes with labelled --data; students with "
            "--data on inputs of ≤ 256 values]"
        ),
    ] = None,
    calibration_references: Annotated[
        int,
        typer.Option(
            help="With --data: owner-made references, held out from the --unique panel, that measure every part's null "
            "agreement (0: none, the parts keep their conservative defaults)."
        ),
    ] = 8,
    false_accusation_rate: Annotated[
        float,
        typer.Option(help="α of the verdict, signed: a match when the combined p-value is at most this."),
    ] = 1e-6,
    reference: Annotated[
        list[Path] | None, typer.Option(help="With --unique: an independent model to screen against (repeatable).")
    ] = None,
    class_names: Annotated[
        str | None,
        typer.Option(
            help="Class names in index order: 'a,b,c' or a file with one per line (maps suspects' string labels)."
        ),
    ] = None,
    input_scale: Annotated[
        float | None, typer.Option(help="Record for audits: suspects take points × this (e.g. 255).")
    ] = None,
    mean: Annotated[str | None, typer.Option(help="Record for audits: per-channel mean suspects subtract.")] = None,
    std: Annotated[str | None, typer.Option(help="Record for audits: per-channel std suspects divide by.")] = None,
    input_shape: Annotated[
        list[str] | None,
        typer.Option(
            help="Per-sample input shape for symbolic dimensions, e.g. 3,48,192; NAME=SIZES for one input of "
            "several (repeatable). Signed; audits use it."
        ),
    ] = None,
    time_budget: Annotated[
        float,
        typer.Option(help="Seconds the searches may take together; past it they end with the points they have."),
    ] = DEFAULT_TIME_BUDGET,
    batch_axis: Annotated[
        int | None,
        typer.Option(help="The output's batch axis [default: measured by running the model with two batch sizes]."),
    ] = None,
    class_axis: Annotated[
        int | None,
        typer.Option(help="The output's class axis [default: the last]; other axes are positions (see --position)."),
    ] = None,
    position: Annotated[
        str,
        typer.Option(
            help="For outputs with several positions per sample: the index that labels it, or 'mean' "
            "[default: the middle one]."
        ),
    ] = "",
    hold: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=VALUE: hold that input at VALUE for every point (a mask, a length, a sample rate, "
            "state); repeatable. Other inputs: see docs/guides/fingerprinting.md."
        ),
    ] = None,
    output_name: Annotated[
        str | None,
        typer.Option(
            help="The class-score output to fingerprint [default: chosen, and said which]; a,b,c reads several "
            "heads of the same classes jointly."
        ),
    ] = None,
    output_format: Annotated[
        DocumentFormat, typer.Option("--format", help="json: the result to stdout or --report.")
    ] = DocumentFormat.text,
    report: ReportOption = None,
) -> None:
    """Find boundary points of MODEL and write a signed fingerprint bundle (no retraining)."""
    from .bundle import check_bundle_output
    from .data import named_shapes
    from .fingerprint import FingerprintSettings
    from .fingerprint import fingerprint as run_fingerprint
    from .models import choose_input, describe_graph
    from .preprocessing import Preprocessing
    from .report import fingerprint_json, render_fingerprint

    with one_line_errors():
        settings = FingerprintSettings(
            n=n,
            k=k,
            init=init or (StartKind.data if data is not None else StartKind.random),
            label=label,
            domain=parse_domain(domain) if domain is not None else None,
            seed=seed,
            max_iterations=max_iterations,
            learning_rate=learning_rate,
            threshold=threshold,
            providers=providers,
            class_names=parse_class_names(class_names),
            method=method,
            epsilon=epsilon,
            unique=unique,
            references=references,
            students=students,
            mistakes=mistakes,
            parts=tuple(kind.strip() for kind in parts.split(",")) if parts is not None else None,
            calibration_references=calibration_references,
            false_accusation_rate=false_accusation_rate,
            preprocessing=parse_preprocessing(input_scale, mean, std) or Preprocessing(),
            input_shape=parse_shape(unnamed(input_shape)),
            input_shapes=tuple(
                (name, required_shape(text)) for name, text in named_values(input_shape, "--input-shape")
            ),
            holds=tuple((name, hold_value(name, text)) for name, text in named_values(hold, "--hold", required=True)),
            output_name=output_name,
            batch_axis=batch_axis,
            class_axis=class_axis,
            time_budget=time_budget,
            position=position,
        )
        settings.require_installed()
        bundle_path = output or model.with_name(model.name.removesuffix(".onnx") + ".fingerprint.safetensors")
        report = report_path(report, output_format)
        check_outputs(
            {"--output": bundle_path, "--report": report},
            [
                ("MODEL", model),
                ("--data", data),
                ("--key", key),
                ("--class-names", names_file(class_names)),
                *(("--reference", path) for path in reference or []),
            ],
        )
        check_replaceable(report, "--report", REPORT)  # a report replaces only a report
        check_bundle_output(bundle_path)  # a bundle replaces only a bundle, and a path under a file fails now
        inputs, _ = describe_graph(model)  # fail fast on the file and its input, before any key is made
        choose_input(
            inputs,
            model.name,
            input_shape=settings.input_shape,
            input_shapes=dict(settings.input_shapes),
            holds=dict(settings.holds),
            data_shapes=named_shapes(data) if data is not None else None,
        )
        signing_key, key_note = signing_key_for(key)
        with search_progress(stderr, settings.n, settings.max_iterations) as (progress, status):
            result = run_fingerprint(
                model,
                bundle_path,
                signing_key=signing_key,
                settings=settings,
                data_path=data,
                progress=progress,
                reference_paths=reference or [],
                status=status,
            )
        present(
            output_format,
            lambda console: render_fingerprint(result, console),
            lambda: fingerprint_json(result),
            report,
            notes=[key_note],
        )


@app.command()
def audit(
    suspects: Annotated[
        list[str] | None,
        typer.Argument(
            help="Suspect ONNX models (networks or skl2onnx exports): paths, folders (every .onnx inside), quoted "
            "globs, or http(s) URLs (use --endpoint for a remote API's options)."
        ),
    ] = None,
    fingerprint_paths: FingerprintFilesOption = None,
    fingerprints_dir: FingerprintsFolderOption = None,
    licensees: LicenseesOption = None,
    endpoints: Annotated[
        list[str] | None, typer.Option("--endpoint", help="A remote prediction API URL to audit (repeatable).")
    ] = None,
    protocol: Annotated[
        WireProtocol, typer.Option(help="Remote API protocol: oip (KServe v2), simple JSON, or auto from the URL.")
    ] = WireProtocol.auto,
    batch_size: Annotated[int, typer.Option(help="Points per remote request.")] = 32,
    timeout: Annotated[
        float, typer.Option(help="Seconds per remote request, in all (connect, send, every byte of the answer).")
    ] = 10.0,
    deadline: DeadlineOption = DEFAULT_DEADLINE,
    model_timeout: ModelTimeoutOption = None,
    retries: Annotated[int, typer.Option(help="Retries of a failed remote request, with exponential backoff.")] = 2,
    max_queries: Annotated[int | None, typer.Option(help="Most points sent to a remote API (query budget).")] = None,
    input_name: Annotated[str | None, typer.Option(help="Remote OIP input name [default: from the server].")] = None,
    output_name: Annotated[
        str | None,
        typer.Option(
            help="Output to read, for ONNX suspects and remote OIP APIs [default: labels, else the class scores that fit the bundle]."
        ),
    ] = None,
    suspect_layout: Annotated[
        str | None, typer.Option(help="Image axis order of the suspects' input, e.g. NHWC or NWHC [default: guessed].")
    ] = None,
    bgr: Annotated[bool, typer.Option("--bgr", help="Suspects take channels in BGR order: reverse them.")] = False,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Decide by the paper's rule instead: a match when the matching rate reaches this. [default: the "
            "evidence rule, a match when the combined p-value is at most the bundle's false-accusation rate]"
        ),
    ] = None,
    false_accusation_rate: Annotated[
        float | None, typer.Option(help="α of the evidence rule [default: the one signed into each bundle].")
    ] = None,
    min_answered: Annotated[
        float, typer.Option(help="Fraction of points that must be answered, else inconclusive.")
    ] = 0.8,
    input_scale: Annotated[
        float | None, typer.Option(help="Multiply points by this for the suspect (e.g. 255).")
    ] = None,
    mean: Annotated[
        str | None, typer.Option(help="Per-channel mean the suspect subtracts, e.g. 0.485,0.456,0.406.")
    ] = None,
    std: Annotated[str | None, typer.Option(help="Per-channel std the suspect divides by.")] = None,
    trusted_key: Annotated[Path | None, typer.Option(help="Public key (PEM) the bundles must be signed by.")] = None,
    providers: Annotated[Providers, typer.Option(help="onnxruntime execution providers.")] = Providers.auto,
    expect: Annotated[Expectation | None, typer.Option(help="CI mode: exit 1 when a result differs.")] = None,
    output_format: Annotated[
        AuditFormat,
        typer.Option(
            "--format", help="text for people; json (signable), sarif, html or cyclonedx on stdout or --report."
        ),
    ] = AuditFormat.text,
    report: ReportOption = None,
    output: DeprecatedOutputOption = None,
    sign_report: Annotated[
        Path | None, typer.Option(help="Sign the json report with this private key (check with verify-report).")
    ] = None,
    attest: Annotated[
        Path | None,
        typer.Option(
            help="Also write a signed in-toto attestation (DSSE) of the audit here: the suspects' digests as "
            "subjects, verdicts and evidence as predicate (check with verify-report)."
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(help="With --attest: the Ed25519 private key that signs it [default: the user's key]."),
    ] = None,
    sequential: SequentialOption = None,
    sequential_batch: SequentialBatchOption = DEFAULT_BATCH,
    verdict_error: VerdictErrorOption = DEFAULT_VERDICT_ERROR,
) -> None:
    """Ask suspects for labels of the fingerprint points; exit 1 on a match, 0 if none, 3 if inconclusive (docs/reference/exit-codes.md)."""
    from .audit import AuditOptions, audit_many
    from .models import HttpClassifier, headers_from_environment
    from .report import audit_cyclonedx, audit_document, audit_html, audit_json, audit_sarif, render_audit

    with one_line_errors():
        check_min_answered(min_answered)
        bounded_timeout(model_timeout)
        if threshold is not None:
            check_threshold(threshold)
        if false_accusation_rate is not None:
            check_false_accusation_rate(false_accusation_rate)
        report_key = None
        if sign_report is not None:
            from .keys import load_private_key

            if output_format is not AuditFormat.json:
                raise UsageError("--sign-report signs the JSON report; add --format json")
            report_key = load_private_key(sign_report, password=key_password())
        if not suspects and not endpoints:
            raise UsageError("pass a suspect model (SUSPECT.onnx ...) or --endpoint URL")
        preprocessing = parse_preprocessing(input_scale, mean, std)
        found = discovered_suspects(suspects or [], "SUSPECT")
        paths = bundle_paths(fingerprint_paths or [], fingerprints_dir, licensees)
        report = report_path(report, output_format, output)
        if key is not None and attest is None:
            raise UsageError("--key signs the attestation; add --attest FILE")
        check_outputs(
            {"--report": report, "--attest": attest},
            [
                *local_files(found),
                *(("a fingerprint", path) for path in paths),
                ("--trusted-key", trusted_key),
                ("--sign-report", sign_report),
                ("--key", key),
            ],
        )
        check_replaceable(report, "--report", REPORT)  # a report replaces only a report
        check_replaceable(attest, "--attest", REPORT)
        if attest is not None and endpoints:
            raise UsageError("--attest names models by their digest; a remote API (--endpoint) has none")
        attest_key, key_note = signing_key_for(key) if attest is not None else (None, None)
        bundles = load_bundles(paths, trusted_public_key(trusted_key))
        headers = headers_from_environment() if endpoints else {}
        packings = {bundle.input_spec.packing for bundle in bundles}
        if endpoints and len(packings) > 1:
            raise UsageError(
                "--endpoint: the fingerprints feed different inputs (some several, packed differently); audit an "
                "API against fingerprints of one kind of input at a time"
            )
        targets: list[object] = list(found)
        targets.extend(
            HttpClassifier(
                url,
                protocol=protocol,
                input_name=input_name,
                output_name=output_name,
                batch_size=batch_size,
                timeout=timeout,
                retries=retries,
                max_queries=max_queries,
                headers=headers,
                deadline=deadline,
                packing=next(iter(packings), None),
            )
            for url in endpoints or []
        )
        settings = SequentialSettings(batch=sequential_batch, verdict_error=verdict_error)
        options = AuditOptions(
            threshold=threshold,
            providers=providers,
            preprocessing=preprocessing,
            min_answered=min_answered,
            output_name=output_name,
            suspect_layout=suspect_layout,
            bgr=bgr,
            model_timeout=model_timeout,
            false_accusation_rate=false_accusation_rate,
        )
        results = audit_many(bundles, targets, options, sequential=sequential, sequential_settings=settings)

        def machine() -> str:
            if output_format is AuditFormat.sarif:
                return audit_sarif(results, expect)
            if output_format is AuditFormat.html:
                return audit_html(results, bundles)
            if output_format is AuditFormat.cyclonedx:
                return audit_cyclonedx(results, bundles)
            document = audit_document(results)
            if report_key is not None:
                from .evidence import sign_report as sign

                document = sign(document, report_key)
            return audit_json(results, document)

        if attest is not None and attest_key is not None:
            from .attestation import write_attestation

            write_attestation(attest, results, [f for f in found if isinstance(f, Path)], attest_key)
        present(output_format, lambda console: render_audit(results, console), machine, report, notes=[key_note])
    raise typer.Exit(audit_exit_code(results, expect))


@app.command()
def scan(
    suspects: Annotated[
        list[str] | None,
        typer.Argument(help="Suspects: ONNX paths, folders (searched recursively), quoted globs, URLs."),
    ] = None,
    manifest: Annotated[
        list[Path] | None, typer.Option(help="A text file with one suspect per line (repeatable).")
    ] = None,
    fingerprint_paths: FingerprintFilesOption = None,
    fingerprints_dir: FingerprintsFolderOption = None,
    licensees: LicenseesOption = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The JSON Lines journal: one line per suspect × bundle.")
    ] = Path("scan.jsonl"),
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the scan in --output: skip pairs it holds.")
    ] = False,
    trusted_key: Annotated[Path | None, typer.Option(help="Public key (PEM) the bundles must be signed by.")] = None,
    providers: Annotated[Providers, typer.Option(help="onnxruntime execution providers.")] = Providers.auto,
    min_answered: Annotated[
        float, typer.Option(help="Fraction of points that must be answered, else inconclusive.")
    ] = 0.8,
    sequential: SequentialOption = None,
    sequential_batch: SequentialBatchOption = DEFAULT_BATCH,
    verdict_error: VerdictErrorOption = DEFAULT_VERDICT_ERROR,
    every_point: Annotated[
        bool,
        typer.Option(
            "--every-point",
            help="Ask every point of every bundle. By default a bundle stops once no answers to the rest could make "
            "it a match: the same matches, fewer points asked of suspects that are no copy.",
        ),
    ] = False,
    deadline: DeadlineOption = DEFAULT_DEADLINE,
    model_timeout: ModelTimeoutOption = None,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Run on Ray: 'auto' starts a local instance, an address (ray://host:10001 or host:6379) joins a cluster."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="With --ray: actors in the pool (each holds the bundles once).")] = 2,
    output_format: Annotated[
        ReportFormat, typer.Option("--format", help="text for people; json or html on stdout or --report.")
    ] = ReportFormat.text,
    report: ReportOption = None,
) -> None:
    """Audit many suspects against many bundles; one JSON line per pair, written as each suspect ends."""
    from .report import render_scan, scan_html, scan_json
    from .scan import Runner, ScanOptions, run_in_process
    from .scan import scan as run_scan

    with one_line_errors():
        patterns = list(suspects or [])
        for path in manifest or []:
            patterns.extend(read_manifest(path))
        references = suspect_names(patterns, "suspect", recursive=True)
        if not references:
            raise UsageError("pass suspects (paths, folders, globs, URLs) or --manifest FILE")
        options = ScanOptions(
            providers=providers,
            min_answered=min_answered,
            sequential=sequential,
            sequential_settings=SequentialSettings(batch=sequential_batch, verdict_error=verdict_error),
            screen=not every_point,
            deadline=deadline,
            model_timeout=model_timeout,
        )
        paths = bundle_paths(fingerprint_paths or [], fingerprints_dir, licensees)
        report = report_path(report, output_format)
        check_outputs(
            {"--output": output, "--report": report},
            [
                *local_files(references),
                *(("a fingerprint", path) for path in paths),
                *(("--manifest", path) for path in manifest or []),
                ("--trusted-key", trusted_key),
            ],
        )
        check_replaceable(report, "--report", REPORT)  # a report replaces only a report
        bundles = load_bundles(paths, trusted_public_key(trusted_key))
        runner: Runner = run_in_process
        if ray is not None and (not ray.strip() or not ray.isprintable()):
            raise UsageError(
                f"--ray takes 'auto' or a cluster address (host:6379, ray://host:10001), got {shown(ray)!r}"
            )
        if ray is not None:
            from .fleet import ray_runner

            runner = ray_runner(ray, workers=workers, bundle_paths=[b.path for b in bundles], trusted_key=trusted_key)
        with count_progress(stderr, "suspects") as progress:
            summary = run_scan(
                references, bundles, output, options=options, resume=resume, runner=runner, progress=progress
            )
        present(
            output_format,
            lambda console: render_scan(summary, console),
            lambda: scan_html(summary) if output_format is ReportFormat.html else scan_json(summary),
            report,
        )
    raise typer.Exit(scan_exit_code(summary))


@app.command()
def evaluate(
    fingerprint_path: Annotated[Path, typer.Option("--fingerprint", "-f", help="The fingerprint bundle.")],
    positive: Annotated[
        list[str] | None,
        typer.Option(help="Post-processed copies of the target: paths, quoted globs, folders, URLs (repeatable)."),
    ] = None,
    negative: Annotated[list[str] | None, typer.Option(help="Independent models (repeatable).")] = None,
    hard_positive: Annotated[
        list[str] | None,
        typer.Option(help="Copies expected to evade (e.g. distilled students); reported, not in ARUC."),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Threshold for robustness and uniqueness [default: the bundle's].")
    ] = None,
    steps: Annotated[int, typer.Option("--r", help="Threshold steps r in Eq. 7.")] = 100,
    plot: Annotated[Path | None, typer.Option(help="Draw the robustness and uniqueness curves to this PNG.")] = None,
    trusted_key: Annotated[Path | None, typer.Option(help="Public key (PEM) the bundle must be signed by.")] = None,
    providers: Annotated[Providers, typer.Option(help="onnxruntime execution providers.")] = Providers.auto,
    output_format: Annotated[
        ReportFormat, typer.Option("--format", help="text for people; json or html on stdout or --report.")
    ] = ReportFormat.text,
    report: ReportOption = None,
    output: DeprecatedOutputOption = None,
    output_name: Annotated[
        str | None, typer.Option(help="Output to read from ONNX suspects [default: chosen to fit the bundle].")
    ] = None,
) -> None:
    """Measure a fingerprint on known copies and independent models: robustness, uniqueness, ARUC, gap."""
    from .bundle import load_bundle
    from .evaluate import Group
    from .evaluate import evaluate as run_evaluate
    from .report import evaluation_html, evaluation_json, plot_evaluation, render_evaluation

    with one_line_errors():
        if steps < 1:
            raise UsageError(f"--r must be at least 1, got {steps}")
        if not positive or not negative:
            raise UsageError("evaluate needs at least one --positive and one --negative suspect")
        if threshold is not None:
            check_threshold(threshold)
        labelled: list[tuple[object, Group]] = []
        groups: tuple[tuple[Group, list[str], str], ...] = (
            ("positive", positive, "--positive"),
            ("hard-positive", hard_positive or [], "--hard-positive"),
            ("negative", negative, "--negative"),
        )
        for group, patterns, option in groups:
            labelled.extend((suspect, group) for suspect in discovered_suspects(patterns, option))
        report = report_path(report, output_format, output)
        check_outputs(
            {"--report": report, "--plot": plot},
            [
                ("--fingerprint", fingerprint_path),
                ("--trusted-key", trusted_key),
                *local_files([suspect for suspect, _ in labelled]),
            ],
        )
        check_replaceable(report, "--report", REPORT)  # a report replaces only a report
        check_replaceable(plot, "--plot", PNG)
        bundle = load_bundle(fingerprint_path, trusted_key=trusted_public_key(trusted_key))
        evaluation = run_evaluate(
            bundle, labelled, threshold=threshold, r=steps, providers=providers, output_name=output_name
        )
        if plot is not None:
            plot_evaluation(evaluation, plot)
        present(
            output_format,
            lambda console: render_evaluation(evaluation, console),
            lambda: evaluation_html(evaluation) if output_format is ReportFormat.html else evaluation_json(evaluation),
            report,
        )


@app.command("issue")
def issue_command(
    model: Annotated[Path, typer.Argument(help="The ONNX classifier to license.")],
    licensee: Annotated[str, typer.Option(help="Who receives this copy (names the registry entry).")],
    data: Annotated[Path, typer.Option(help="Owner data (.npz with x and optionally y labels, or .npy).")],
    registry: Annotated[Path, typer.Option(help="Folder of signed licensee trigger sets (keep it private).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The licensee's model [default: MODEL-LICENSEE.onnx].")
    ] = None,
    key: Annotated[
        Path | None, typer.Option(help="Ed25519 private key [default: the user's key]; triggers derive from it.")
    ] = None,
    triggers: Annotated[int, typer.Option(help="Held-out triggers stored in the registry.")] = 100,
    max_epochs: Annotated[int, typer.Option(help="Fine-tuning epochs at most.")] = 30,
    domain: Annotated[str, typer.Option(help="Input bounds LOW,HIGH of the trigger pattern.")] = "0,1",
    force: Annotated[bool, typer.Option(help="Re-issue a licensee that is already in the registry.")] = False,
    providers: Annotated[Providers, typer.Option(help="onnxruntime execution providers.")] = Providers.auto,
    output_format: Annotated[DocumentFormat, typer.Option("--format", help=FORMAT_HELP)] = DocumentFormat.text,
    report: ReportOption = None,
) -> None:
    """Issue a traceable copy: fine-tune so secret licensee triggers answer licensee labels (active protection)."""
    from .licensing import check_issue_counts, check_licensee_name, is_onnx_model, issue
    from .report import issued_json, render_issued

    with one_line_errors():
        check_licensee_name(licensee)
        check_issue_counts(triggers, max_epochs)  # before a key is made
        bounds = parse_domain(domain)
        if bounds == "data":
            raise UsageError("--domain for issue takes LOW,HIGH")
        requirements.onnxruntime()
        requirements.surrogate_converter()  # before a key is made
        signing_key, key_note = signing_key_for(key)
        target = output or model.with_name(f"{model.name.removesuffix('.onnx')}-{licensee}.onnx")
        if registry.exists() and not registry.is_dir():
            raise UsageError(f"--registry {shown(registry)} is a file; pass a folder for the licensee trigger sets")
        report = report_path(report, output_format)
        check_outputs(
            {
                "--output": target,
                "the registry entry": registry / f"{licensee}.licensee.safetensors",
                "--report": report,
            },
            [("MODEL", model), ("--data", data), ("--key", key)],
        )
        check_replaceable(report, "--report", REPORT)  # a report replaces only a report
        check_replaceable(target, "--output", "an ONNX model", is_onnx_model)
        result = issue(
            model,
            licensee=licensee,
            data_path=data,
            registry=registry,
            output_path=target,
            signing_key=signing_key,
            triggers=triggers,
            max_epochs=max_epochs,
            domain=bounds,
            providers=providers,
            force=force,
        )
        present(
            output_format,
            lambda console: render_issued(result, console),
            lambda: issued_json(result),
            report,
            notes=[key_note],
        )


@app.command()
def calibrate(
    fingerprint_path: Annotated[Path, typer.Argument(help="The fingerprint bundle to calibrate (re-signed in place).")],
    negative: Annotated[
        list[str] | None,
        typer.Option(help="Models independent of the target: paths, quoted globs, folders, URLs (repeatable)."),
    ] = None,
    key: Annotated[
        Path | None, typer.Option(help="The private key that signed the bundle [default: the user's key].")
    ] = None,
    false_accusation_rate: Annotated[
        float, typer.Option(help="Chance an independent model is called a copy, at the new threshold.")
    ] = 1e-6,
    margin: Annotated[float, typer.Option(help="Safety margin added to the highest independent matching rate.")] = 0.05,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the calibrated bundle here [default: in place].")
    ] = None,
    providers: Annotated[Providers, typer.Option(help="onnxruntime execution providers.")] = Providers.auto,
    output_name: Annotated[
        str | None, typer.Option(help="Output to read from ONNX negatives [default: chosen to fit the bundle].")
    ] = None,
    output_format: Annotated[DocumentFormat, typer.Option("--format", help=FORMAT_HELP)] = DocumentFormat.text,
    report: ReportOption = None,
) -> None:
    """Measure the null agreement q0 on independent models, set the threshold for a false-accusation rate, re-sign."""
    from .bundle import check_bundle_output
    from .calibrate import calibrate as run_calibrate
    from .report import calibration_json, render_calibration

    with one_line_errors():
        suspects = discovered_suspects(negative or [], "--negative")
        report = report_path(report, output_format)
        check_outputs({"--output": output, "--report": report}, [*local_files(suspects), ("--key", key)])
        check_replaceable(report, "--report", REPORT)  # a report replaces only a report
        if output is not None and not same_file(output, fingerprint_path):  # in place is calibrate's purpose
            check_bundle_output(output)
        signing_key, _ = signing_key_for(key, create=False)
        result = run_calibrate(
            fingerprint_path,
            suspects,
            signing_key,
            output_path=output,
            false_accusation_rate=false_accusation_rate,
            margin=margin,
            providers=providers,
            output_name=output_name,
        )
        present(
            output_format,
            lambda console: render_calibration(result, console),
            lambda: calibration_json(result),
            report,
        )


@app.command("verify-report")
def verify_report(
    report: Annotated[
        Path, typer.Argument(help="A JSON report written with --sign-report, or an attestation from --attest.")
    ],
    trusted_key: Annotated[Path | None, typer.Option(help="Public key (PEM) the report must be signed by.")] = None,
) -> None:
    """Check a signed audit report or attestation: exit 0 if intact (and signed by --trusted-key), 4 if not."""
    from .attestation import read_envelope, verify_attestation
    from .evidence import verify_report as run_verify

    with one_line_errors():
        envelope = read_envelope(report) if report.is_file() else None
        if envelope is not None:
            attested = verify_attestation(report, envelope, trusted_key=trusted_public_key(trusted_key))
            pin = "pinned by --trusted-key" if attested.pinned else "not pinned: pass --trusted-key to require it"
            stdout_console().print(
                f"[bold green]valid[/]: attestation {outside_text(attested.path)} ({attested.results} result(s) "
                f"about {len(attested.subjects)} model(s): sha256 {outside_text(', '.join(attested.subjects))}) "
                f"signed by {outside_text(attested.signer_key_id)} ({pin})"
            )
            return
        checked = run_verify(report, trusted_key=trusted_public_key(trusted_key))
        pin = "pinned by --trusted-key" if checked.pinned else "not pinned: pass --trusted-key to require it"
        stdout_console().print(
            f"[bold green]valid[/]: {outside_text(checked.path)} ({checked.results} result(s)) signed by "
            f"{outside_text(checked.signer_key_id)} ({pin})"
        )


@app.command()
def inspect(
    fingerprint_path: Annotated[Path, typer.Argument(help="The fingerprint bundle (.safetensors).")],
    trusted_key: Annotated[Path | None, typer.Option(help="Public key (PEM) the bundle must be signed by.")] = None,
    output_format: Annotated[DocumentFormat, typer.Option("--format", help=FORMAT_HELP)] = DocumentFormat.text,
    report: ReportOption = None,
) -> None:
    """Verify a bundle's signature and show its metadata."""
    from .bundle import load_bundle
    from .report import bundle_json, render_bundle

    with one_line_errors():
        report = report_path(report, output_format)
        check_outputs({"--report": report}, [("FINGERPRINT_PATH", fingerprint_path), ("--trusted-key", trusted_key)])
        check_replaceable(report, "--report", REPORT)  # a report replaces only a report
        bundle = load_bundle(fingerprint_path, trusted_key=trusted_public_key(trusted_key))
        present(output_format, lambda console: render_bundle(bundle, console), lambda: bundle_json(bundle), report)


def only_the_invoked_command(arguments: Sequence[str]) -> typer.Typer:
    """``app`` with only the command being run (the first argument that is not an option), when it is one.

    typer inspects the signature of every registered command before running any: ~35 ms of a whole
    audit process (BENCHMARKS.md "Audit start-up"). ``--help``, a typo or no command keep them all.
    """
    name = next((argument for argument in arguments if not argument.startswith("-")), None)
    chosen = [
        command
        for command in app.registered_commands
        if name == (command.name or getattr(command.callback, "__name__", "").replace("_", "-"))
    ]
    if not chosen:
        return app
    invoked = copy.copy(app)
    invoked.registered_commands = chosen
    return invoked


def main() -> None:
    """The console script (``ipguard-onnx``)."""
    run(only_the_invoked_command(sys.argv[1:]))
