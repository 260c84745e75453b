"""The process side of the command line: consoles, the one output rule, one-line errors, exit codes,
Ctrl-C and closed pipes. ``cli`` holds the options; this module how a command meets the terminal.

Every error a user can cause is one escaped line on stderr with the exit code of ``exit_codes``; an
exception nobody planned is exit 5 (``internal_error``), never 0 or 1, which a CI step reads as a verdict.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import ClickException  # typer's own (vendored) click
from typer.core import TyperGroup

from .errors import IPGuardError, UsageError
from .exit_codes import ExitCode, error_exit_code
from .files import write_atomic
from .report import outside_text
from .text import shown

__all__ = [
    "DEBUG",
    "OneLineUsageErrors",
    "SafeConsole",
    "emit",
    "fatal",
    "internal_error",
    "one_line_errors",
    "output_closed",
    "present",
    "report_path",
    "run",
    "stderr",
    "stdout_console",
]


class OneLineUsageErrors(TyperGroup):
    """Usage errors (an unknown option, a value outside an enum) as one line on stderr, exit 2, like
    every other error of ipguard-onnx, instead of typer's usage panel."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        run = super().main
        if not standalone_mode:
            return run(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = run(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except ClickException as error:
            if type(error).__name__ != "NoArgsIsHelpError":  # the help was shown already
                context = getattr(error, "ctx", None)
                hint = f" (see '{context.command_path} --help')" if context is not None else ""
                stderr.print(
                    f"[bold red]error:[/] {outside_text(error.format_message().replace('Value error, ', '') + hint)}",
                    soft_wrap=True,
                    highlight=False,
                )
            sys.exit(error.exit_code)
        except typer.Abort:
            stderr.print("[bold red]interrupted[/]")
            sys.exit(ExitCode.interrupted)
        sys.exit(code if isinstance(code, int) else 0)


class SafeConsole(Console):
    """A rich console whose closed pipe ends the command with ``ExitCode.output_closed``: rich's own
    handler exits 1, which a CI step would read as "a suspect matched"."""

    def on_broken_pipe(self) -> None:
        output_closed()


def stdout_console() -> Console:
    """The console for a command's report on stdout."""
    return SafeConsole(highlight=False)


stderr: Console = SafeConsole(stderr=True, highlight=False)


DEBUG = {"on": False}


def fatal(error: IPGuardError) -> NoReturn:
    # file names, URLs and metadata inside the message: escaped, never run as terminal codes or markup
    stderr.print(f"[bold red]error:[/] {outside_text(error)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(error_exit_code(error)) from None


@contextmanager
def one_line_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        # numpy overflow, PIL and dependency warnings would print source lines; ipguard-onnx's own
        # warnings (a CUDA request that fell back to the CPU) become one escaped line
        warnings.simplefilter("ignore")
        warnings.filterwarnings("default", category=UserWarning, module="ipguard_onnx")
        warnings.showwarning = one_line_warning
        try:
            yield
        except IPGuardError as error:
            fatal(error)
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:  # the reader went away: no verdict reached anyone
            output_closed()
        except MemoryError:  # sizes the input asked for (a huge --input-shape, a declared shape): not a bug
            fatal(
                IPGuardError(
                    "not enough memory for what the inputs ask (a shape, a data file or a model); "
                    "pass smaller inputs or run on a larger machine"
                )
            )
        except OSError as error:  # a path the system refuses (too long, no permission, a device): the input's fault
            where = f"{error.filename}: " if error.filename is not None else ""
            fatal(IPGuardError(f"{where}{error.strerror or type(error).__name__}"))
        except KeyboardInterrupt:
            stderr.print("[bold red]interrupted[/]", markup=True)
            raise typer.Exit(ExitCode.interrupted) from None
        except Exception as error:  # a crash is never a verdict: never exit 0 or 1 on a surprise
            internal_error(error)


def one_line_warning(message: Warning | str, *args: object, **kwargs: object) -> None:
    stderr.print(f"[yellow]warning:[/] {outside_text(message)}", highlight=False, soft_wrap=True)


def output_closed() -> NoReturn:
    """stdout's reader closed it: nothing more is written there (not even at exit), and the exit code says
    so — never 0 or 1, which a CI step would read as a verdict."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    raise typer.Exit(ExitCode.output_closed)


def internal_error(error: BaseException) -> NoReturn:
    """One line (and the traceback with --debug) for an exception nobody planned: exit code 5."""
    if DEBUG["on"]:
        import traceback

        traceback.print_exception(error)
    where = f" ({type(error).__module__}.{type(error).__name__})" if type(error).__module__ != "builtins" else ""
    text = shown(" ".join(str(error).split())[:300]) or type(error).__name__
    what = escape(f"{type(error).__name__}: {text}{where}")
    stderr.print(
        f"[bold red]internal error:[/] {what}; this is a bug in ipguard-onnx or a dependency, not a verdict: "
        "rerun with --debug for the traceback and report it",
        markup=True,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(ExitCode.internal) from None


def emit(text: str, report: Path | None) -> None:
    """Machine output goes to --report (written atomically) or stdout."""
    if report is None:
        sys.stdout.write(text + "\n")
        return
    write_atomic(report, (text + "\n").encode("utf-8"), stream=True)  # --report /dev/stdout | jq stays a pipe


def report_path(report: Path | None, output_format: StrEnum, deprecated_output: Path | None = None) -> Path | None:
    """``--report``, checked before any work: it needs a machine format (and, checked after
    ``check_outputs``, replaces only a report).
    ``deprecated_output`` is audit's and evaluate's former name for it (``--output``)."""
    if deprecated_output is not None:
        if report is not None:
            raise UsageError("--output is the former name of --report; pass only --report")
        warnings.warn("--output of this command is now --report (the report, not an artifact)", UserWarning, 2)
        report = deprecated_output
    if report is not None and output_format == "text":
        raise UsageError("--report writes the machine-readable report; add --format json")
    return report


def present(
    output_format: StrEnum,
    render: Callable[[Console], None],
    machine: Callable[[], str] | None = None,
    report: Path | None = None,
    notes: Sequence[str | None] = (),
) -> None:
    """The one output rule of every command: machine output (``--format json``/``sarif``) to stdout or
    ``--report``; the human summary to stdout with ``--format text``, to stderr whenever it is not; notes
    (which key signed) always to stderr."""
    for note in notes:
        if note:
            stderr.print(outside_text(note), highlight=False)
    if output_format == "text" or machine is None:
        render(stdout_console())
        return
    emit(machine(), report)
    render(stderr)


def run(command: Callable[[], Any]) -> None:
    """The console script around ``command``: whatever escapes it is an internal error (exit 5), a closed
    stdout exit 141, Ctrl-C exit 130 — never 0 or 1."""
    DEBUG["on"] = "--debug" in sys.argv[1:]
    try:
        try:
            command()
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not in an ignored error at exit
    except BrokenPipeError:
        try:
            output_closed()
        except typer.Exit as exit_:
            raise SystemExit(exit_.exit_code) from None
    except SystemExit:
        raise
    except KeyboardInterrupt:  # Ctrl-C before a command took over (while importing): one line, exit 130
        sys.stderr.write("interrupted\n")
        raise SystemExit(ExitCode.interrupted) from None
    except Exception as error:
        try:
            internal_error(error)
        except typer.Exit as exit_:
            raise SystemExit(exit_.exit_code) from None
