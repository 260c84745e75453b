"""The command reference, generated from the CLI itself (typer → click), so that it cannot drift.

``mkdocs build`` runs this through ``docs/hooks.py``: one page per command, ``reference/cli/COMMAND.md``.
"""

from __future__ import annotations

from typing import Any

import typer.main
from typer._click.core import Command, Context, Parameter  # typer's own (vendored) click
from typer.core import TyperArgument, TyperOption

from ipguard_onnx.cli import app


def commands() -> dict[str, Command]:
    """Every command of ``ipguard-onnx``, by name, in the order ``--help`` lists them."""
    group = typer.main.get_command(app)
    return dict(getattr(group, "commands"))  # noqa: B009 - a group's commands, typed on click's Group


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(parameter: Parameter) -> str:
    if getattr(parameter, "required", False):
        return "required"
    if isinstance(parameter, TyperOption) and (parameter.is_flag and not parameter.secondary_opts):
        return ""
    value: Any = parameter.default
    if value is None or value == [] or value == () or callable(value):
        return ""
    if isinstance(parameter, TyperOption) and not parameter.show_default and parameter.show_default is not None:
        return ""
    text = str(getattr(value, "value", value))
    return f"`{text}`" if text else '`""`'


def _names(parameter: Parameter) -> str:
    if isinstance(parameter, TyperArgument):
        return f"`{parameter.human_readable_name.upper()}`"
    assert isinstance(parameter, TyperOption)
    names = [*parameter.opts, *parameter.secondary_opts]
    return " / ".join(f"`{name}`" for name in names)


def _value(parameter: Parameter) -> str:
    if isinstance(parameter, TyperOption) and parameter.is_flag:
        return "flag"
    kind = parameter.type
    choices = getattr(kind, "choices", None)
    if choices:
        return " \\| ".join(f"`{getattr(choice, 'value', choice)}`" for choice in choices)
    name = getattr(parameter, "metavar", None) or kind.name.upper()
    repeatable = getattr(parameter, "multiple", False) or parameter.nargs == -1
    return _cell(str(name)) + (" (repeatable)" if repeatable else "")


def page(name: str, command: Command) -> str:
    """The Markdown reference of one command: usage, what it does, every visible parameter."""
    context = Context(command, info_name=f"ipguard-onnx {name}")
    usage = " ".join(command.collect_usage_pieces(context))
    lines = [
        f"# ipguard-onnx {name}",
        "",
        "<!-- generated from the CLI by docs/cli_reference.py: edit the command's help, not this page -->",
        "",
        "```text",
        f"ipguard-onnx {name} {usage}",
        "```",
        "",
        (command.help or "").strip(),
        "",
        "| parameter | value | default | meaning |",
        "|---|---|---|---|",
    ]
    for parameter in command.params:
        if getattr(parameter, "hidden", False):
            continue
        help_text = _cell(getattr(parameter, "help", None) or "")
        lines.append(f"| {_names(parameter)} | {_value(parameter)} | {_default(parameter)} | {help_text} |")
    lines += ["", "Exit codes: see [Exit codes](../exit-codes.md)."]
    return "\n".join(lines) + "\n"


def index() -> str:
    """The list of commands, each with the first line of its help."""
    lines = ["# Command reference", "", "Generated from the CLI itself (`ipguard-onnx COMMAND --help` says the same)."]
    lines.append("")
    for name, command in commands().items():
        summary = (command.help or "").strip().splitlines()[0] if command.help else ""
        lines.append(f"- [`{name}`]({name}.md): {summary}")
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """Every generated page, by its path under ``docs/``."""
    generated = {f"reference/cli/{name}.md": page(name, command) for name, command in commands().items()}
    generated["reference/cli/index.md"] = index()
    return generated
