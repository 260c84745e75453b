"""Output formats: every --format of every command, the enum each command offers read from its signature
(pip-audit's test_to_format_is_exhaustive): a new format without a check here fails."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import typing
from enum import StrEnum
from pathlib import Path

import numpy as np
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from jsonschema import Draft202012Validator

from ipguard_onnx.cli import app
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.schemas import SCHEMAS, document_schema, load_schema, schema_id

from ..conftest import RunCli, Zoo


def _format_enums() -> dict[str, type[StrEnum]]:
    """Each command's ``--format`` enum, read from the command's own signature."""
    enums: dict[str, type[StrEnum]] = {}
    for command in app.registered_commands:
        assert command.callback is not None
        hints = typing.get_type_hints(command.callback, include_extras=True)
        if "output_format" in hints:
            enums[command.name or command.callback.__name__] = typing.get_args(hints["output_format"])[0]
    return enums


FORMATS = [(name, member) for name, enum in _format_enums().items() for member in enum]


def _format_run(name: str, zoo: Zoo, tmp_path: Path) -> tuple[list[object], ExitCode]:
    """How to run each command that has --format, cheaply, and the exit code it should give."""
    data = tmp_path / "data.npz"
    np.savez(data, x=zoo.x[:300])
    bundle = tmp_path / "fp.safetensors"
    shutil.copy(zoo.bundle, bundle)
    runs: dict[str, tuple[list[object], ExitCode]] = {
        "fingerprint": (
            ["fingerprint", zoo.target, "--key", zoo.private_key, "-o", tmp_path / "new.fp", "--n", 5],
            ExitCode.no_match,
        ),
        "inspect": (["inspect", zoo.bundle], ExitCode.no_match),
        "audit": (["audit", zoo.pruned, "-f", zoo.bundle], ExitCode.match),
        "evaluate": (
            ["evaluate", "-f", zoo.bundle, "--positive", zoo.pruned, "--negative", zoo.independent],
            ExitCode.no_match,
        ),
        "calibrate": (
            [
                "calibrate",
                bundle,
                "--negative",
                zoo.independent,
                "--key",
                zoo.private_key,
                "--false-accusation-rate",
                "0.01",
            ],
            ExitCode.no_match,
        ),
        "issue": (
            [
                "issue",
                zoo.target,
                "--licensee",
                "acme",
                "--data",
                data,
                "--registry",
                tmp_path / "registry",
                "--key",
                zoo.private_key,
                "--max-epochs",
                1,
                "--triggers",
                20,
                "-o",
                tmp_path / "acme.onnx",
            ],
            ExitCode.no_match,
        ),
        "scan": (
            ["scan", zoo.pruned, zoo.independent, "-f", zoo.bundle, "-o", tmp_path / "scan.jsonl"],
            ExitCode.match,
        ),
    }
    return runs[name]


@pytest.mark.parametrize(("command", "output_format"), FORMATS, ids=[f"{c}-{f.value}" for c, f in FORMATS])
def test_every_format_of_every_command(
    zoo: Zoo, tmp_path: Path, run_cli: RunCli, command: str, output_format: StrEnum
) -> None:
    """The exit code is the command's, whatever the format (one expected code per command, every format);
    JSON validates against the schema it names; HTML is one self-contained page."""
    arguments, code = _format_run(command, zoo, tmp_path)
    result = run_cli(*arguments, "--format", output_format.value)
    assert result.code == code, result.stderr
    if output_format.value == "json":
        document = json.loads(result.stdout)
        kind = command.removesuffix("_command")
        assert document["tool"] == "ipguard-onnx" and document["schema"] == schema_id(kind)
        Draft202012Validator(load_schema(kind)).validate(document)
        if command == "scan":  # the journal's lines are the scan's results: each validates too
            lines = (tmp_path / "scan.jsonl").read_text().splitlines()
            assert len(lines) == 2
            for line in lines:
                Draft202012Validator(load_schema("scan-row")).validate(json.loads(line))
    elif output_format.value == "sarif":
        (run,) = json.loads(result.stdout)["runs"]
        assert run["tool"]["driver"]["name"] == "ipguard-onnx" and run["results"][0]["ruleId"] == "IPG001"
    elif output_format.value == "cyclonedx":  # the official CycloneDX 1.6 JSON schema (cyclonedx-python-lib's)
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(result.stdout) is None
        (component,) = json.loads(result.stdout)["components"]
        assert component["hashes"][0]["content"] == hashlib.sha256(zoo.pruned.read_bytes()).hexdigest()
        (ancestor,) = component["pedigree"]["ancestors"]  # a match names the protected model as its ancestor
        assert ancestor["hashes"][0]["content"] == hashlib.sha256(zoo.target.read_bytes()).hexdigest()
    elif output_format.value == "html":
        page = result.stdout
        assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
        assert not re.search(r"<(script|link|iframe)\b|(src|href)=.(https?:|//)", page, re.IGNORECASE)
        assert "How this report was made" in page and zoo.bundle.name in page
        assert result.stderr.strip()  # the human summary moved to stderr
    else:
        assert output_format.value == "text", f"no check written for --format {output_format.value}"
        assert result.stdout.strip() or result.stderr.strip()
        assert not result.stdout.lstrip().startswith("{")


def test_every_command_with_a_report_has_a_format() -> None:
    assert set(_format_enums()) == {"fingerprint", "inspect", "audit", "evaluate", "calibrate", "issue", "scan"}


@pytest.mark.parametrize("kind", SCHEMAS)
def test_the_shipped_schemas_are_what_the_result_types_say(kind: str) -> None:
    """The schema files cannot drift from the types: regenerate them (python -m ipguard_onnx.schemas --write)."""
    shipped = load_schema(kind)
    Draft202012Validator.check_schema(shipped)
    assert shipped == document_schema(kind) and shipped["$id"] == schema_id(kind)


def test_a_document_that_breaks_its_schema_is_caught() -> None:
    """The schemas are strict: a missing, retyped or unknown field fails validation."""
    validator = Draft202012Validator(load_schema("scan-row"))
    row = {
        "schema": schema_id("scan-row"),
        "suspect": "a.onnx",
        "fingerprint": "fp",
        "fingerprint_sha256": "0" * 64,
        "status": "ok",
        "verdict": "match",
        "matching_rate": 0.9,
        "p_value": 1e-9,
        "points_queried": 100,
        "points_matched": 90,
        "points_skipped": 0,
        "threshold": 0.85,
        "licensee": "",
        "suspect_sha256": None,
        "error": "",
        "seconds": 1.0,
    }
    validator.validate(row)  # a row written before v1 rows gained points_in_bundle and stopped_because
    validator.validate({**row, "points_in_bundle": 100, "stopped_because": ""})
    for broken in (
        {**row, "points_queried": "100"},
        {**row, "points_in_bundle": "100"},
        {**row, "extra": 1},
        {k: v for k, v in row.items() if k != "status"},
    ):
        assert not validator.is_valid(broken)


def test_the_cyclonedx_validator_would_catch_a_broken_bom(zoo: Zoo, run_cli: RunCli) -> None:
    """The schema check above is real: the same BOM with a wrong component type fails it."""
    made = run_cli("audit", zoo.independent, "-f", zoo.bundle, "--format", "cyclonedx")
    bom = json.loads(made.stdout)
    assert "pedigree" not in bom["components"][0]  # no lineage claimed without a match
    bom["components"][0]["type"] = "not-a-component-type"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom)) is not None
