"""The ipguard-onnx command line: thin typer commands over the core; errors become exit codes."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .errors import EXIT_MATCH, EXIT_NO_MATCH, IPGuardError, UsageError

app = typer.Typer(
    name="ipguard-onnx",
    help="Fingerprint an ONNX classifier by its classification boundary (IPGuard) and audit suspects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True, highlight=False)
_PASSWORD_VARIABLE = "IPGUARD_ONNX_KEY_PASSWORD"


def _fatal(error: IPGuardError) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {error}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(error.exit_code) from None


@contextmanager
def _errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            yield
        except IPGuardError as error:
            _fatal(error)


def _password() -> bytes | None:
    value = os.environ.get(_PASSWORD_VARIABLE)
    return value.encode() if value else None


def _parse_domain(text: str) -> tuple[float, float] | Literal["data"]:
    if text.strip() == "data":
        return "data"
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--domain expects LOW,HIGH (e.g. 0,1) or 'data', got {text!r}") from None
    return (low, high)


def _emit(text: str, output: Path | None) -> None:
    """Machine output goes to --output or stdout."""
    if output is None:
        sys.stdout.write(text + "\n")
        return
    try:
        output.write_text(text + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write --output {output}: {exc.strerror}") from None


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

    with _errors():
        public = out.with_name(out.name.removesuffix(".pem") + ".pub.pem")
        pair = write_keypair(out, public, password=_password(), force=force)
        stderr.print(
            f"private key {pair.private_path} (mode 0600)\npublic key  {pair.public_path}\nkey id      {pair.key_id}"
        )


@app.command()
def fingerprint(
    model: Annotated[Path, typer.Argument(help="The ONNX classifier to protect.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Bundle path [default: MODEL.fingerprint.safetensors].")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Number of fingerprint points.")] = 100,
    k: Annotated[
        float,
        typer.Option("--k", help="Margin past the boundary, in logits (Eq. 5). Larger: more robust, less unique."),
    ] = 3.0,
    init: Annotated[
        str | None,
        typer.Option(help="Start points: 'data' (needs --data) or 'random' [default: data if --data, else random]."),
    ] = None,
    label: Annotated[str, typer.Option(help="Target label j: 'least-likely' or 'random'.")] = "least-likely",
    data: Annotated[Path | None, typer.Option(help="Owner data: .npy/.npz, or a folder of images.")] = None,
    domain: Annotated[
        str, typer.Option(help="Input bounds LOW,HIGH, or 'data' for per-feature bounds from --data.")
    ] = "0,1",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same points.")] = 0,
    threshold: Annotated[float, typer.Option(help="Recommended matching-rate threshold stored in the bundle.")] = 0.85,
    max_iterations: Annotated[int, typer.Option(help="Adam iterations per point at most.")] = 1000,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate on the input.")] = 0.01,
    key: Annotated[
        Path | None, typer.Option(help="Ed25519 private key (PEM) [default: the user's key, created on first use].")
    ] = None,
    providers: Annotated[str, typer.Option(help="onnxruntime providers: auto, cpu or cuda.")] = "auto",
    output_format: Annotated[str, typer.Option("--format", help="text or json (json to stdout).")] = "text",
) -> None:
    """Find boundary points of MODEL and write a signed fingerprint bundle (no retraining)."""
    from .fingerprint import FingerprintSettings
    from .fingerprint import fingerprint as run_fingerprint
    from .keys import default_signing_key, load_private_key
    from .models import read_model_specs
    from .report import OutputFormat, fingerprint_json, render_fingerprint

    with _errors():
        chosen_format = _choice(output_format, [f.value for f in OutputFormat], "--format")
        init_kind = init or ("data" if data is not None else "random")
        settings = FingerprintSettings(
            n=n,
            k=k,
            init=_choice(init_kind, ["data", "random"], "--init"),  # type: ignore[arg-type]
            label=_choice(label, ["least-likely", "random"], "--label"),  # type: ignore[arg-type]
            domain=_parse_domain(domain),
            seed=seed,
            max_iterations=max_iterations,
            learning_rate=learning_rate,
            threshold=threshold,
            providers=_choice(providers, ["auto", "cpu", "cuda"], "--providers"),
        )
        read_model_specs(model)  # fail fast on the model before any key is made
        key_note = None
        if key is not None:
            signing_key = load_private_key(key, password=_password())
        else:
            signing_key, key_path, created = default_signing_key(password=_password())
            key_note = (
                f"{'created' if created else 'using'} the default signing key {key_path} (pass --key to choose one)"
            )
        bundle_path = output or model.with_name(model.name.removesuffix(".onnx") + ".fingerprint.safetensors")
        with _search_progress(settings.n, settings.max_iterations) as progress:
            result = run_fingerprint(
                model, bundle_path, signing_key=signing_key, settings=settings, data_path=data, progress=progress
            )
        if chosen_format == "json":
            _emit(fingerprint_json(result), None)
        if key_note:
            stderr.print(key_note)
        render_fingerprint(result, stderr)


@contextmanager
def _search_progress(n: int, max_iterations: int) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar over points frozen at the boundary (stderr, terminal only)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("points · iteration {task.fields[iteration]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr, disable=not stderr.is_terminal, transient=True) as bar:
        task = bar.add_task("loading torch, converting the model", total=n, iteration=0)

        def update(iteration: int, done: int) -> None:
            if iteration == 0:
                bar.reset(task, total=n, iteration=0, description="boundary search")
            bar.update(task, completed=min(done, n), iteration=iteration)

        yield update


def _choice(value: str, allowed: list[str], option: str) -> str:
    if value not in allowed:
        raise UsageError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
    return value


@app.command()
def audit(
    suspect: Annotated[Path, typer.Argument(help="The suspect ONNX model.")],
    fingerprint_path: Annotated[
        Path, typer.Option("--fingerprint", "-f", help="The fingerprint bundle (.safetensors).")
    ],
    threshold: Annotated[float | None, typer.Option(help="Matching-rate threshold [default: the bundle's].")] = None,
    trusted_key: Annotated[Path | None, typer.Option(help="Public key (PEM) the bundle must be signed by.")] = None,
    providers: Annotated[str, typer.Option(help="onnxruntime providers: auto, cpu or cuda.")] = "auto",
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the machine report here instead of stdout.")
    ] = None,
) -> None:
    """Ask SUSPECT for labels of the fingerprint points; exit 1 on a match, 0 otherwise."""
    from .audit import audit as run_audit
    from .bundle import load_bundle
    from .keys import load_public_key
    from .report import OutputFormat, audit_json, render_audit

    with _errors():
        chosen_format = _choice(output_format, [f.value for f in OutputFormat], "--format")
        pinned = load_public_key(trusted_key) if trusted_key is not None else None
        bundle = load_bundle(fingerprint_path, trusted_key=pinned)
        result = run_audit(
            bundle, suspect, threshold=threshold, providers=_choice(providers, ["auto", "cpu", "cuda"], "--providers")
        )
        if chosen_format == "json":
            _emit(audit_json([result]), output)
        render_audit([result], stderr if chosen_format == "json" else Console(highlight=False))
    raise typer.Exit(EXIT_MATCH if result.matched else EXIT_NO_MATCH)


@app.command()
def inspect(
    fingerprint_path: Annotated[Path, typer.Argument(help="The fingerprint bundle (.safetensors).")],
    trusted_key: Annotated[Path | None, typer.Option(help="Public key (PEM) the bundle must be signed by.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Verify a bundle's signature and show its metadata."""
    from .bundle import load_bundle
    from .keys import load_public_key
    from .report import OutputFormat, bundle_json, render_bundle

    with _errors():
        chosen_format = _choice(output_format, [f.value for f in OutputFormat], "--format")
        pinned = load_public_key(trusted_key) if trusted_key is not None else None
        bundle = load_bundle(fingerprint_path, trusted_key=pinned)
        if chosen_format == "json":
            _emit(bundle_json(bundle), None)
        else:
            render_bundle(bundle, Console(highlight=False))


def main() -> None:
    app()
