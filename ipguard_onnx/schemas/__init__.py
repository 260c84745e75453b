"""Versioned JSON Schemas (draft 2020-12) of every machine output, generated from the result types.

Each JSON document the CLI writes names its schema in ``"schema"`` (e.g. ``ipguard-onnx/audit/v1``); the
schema files ship in this package (``SCHEMAS``, ``load_schema``) and are generated from the frozen result
dataclasses the documents serialise, so they cannot drift: ``python -m ipguard_onnx.schemas --check``
compares the files with what the types say now, and the tests validate real outputs against them.
A change that removes or retypes a field is a new version (v2), never an edit of v1.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from importlib import resources
from typing import Any

__all__ = ["SCHEMAS", "document_schema", "load_schema", "schema_id"]

SCHEMA_VERSION = 1
"""The version every document names today (``ipguard-onnx/KIND/v1``)."""
SCHEMAS = ("audit", "scan", "scan-row", "evaluate", "calibrate", "inspect", "fingerprint", "issue")
"""Every kind of machine output: the ``--format json`` of each command, and the scan journal's lines."""
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_id(kind: str) -> str:
    """What a document of ``kind`` names in its ``"schema"`` field, and its schema's ``$id``."""
    return f"ipguard-onnx/{kind}/v{SCHEMA_VERSION}"


def load_schema(kind: str) -> dict[str, Any]:
    """The shipped schema of ``kind`` (one of ``SCHEMAS``)."""
    if kind not in SCHEMAS:
        raise KeyError(f"no schema named {kind!r}; known: {', '.join(SCHEMAS)}")
    text = resources.files(__name__).joinpath(f"{kind}.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _of(hint: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    """The schema of one type hint (the types the result dataclasses use)."""
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if hint is Any or hint is object:
        return {}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_of(argument, definitions) for argument in arguments]}
    if origin is typing.Literal:
        return {"enum": list(arguments)}
    if hint is type(None):
        return {"type": "null"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": ["number", "null"]}  # NaN and infinity are written as null where they can occur
    if hint is str:
        return {"type": "string"}
    if origin in (tuple, list) or hint in (tuple, list):
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return {"type": "array", "items": _of(arguments[0], definitions)}
        if arguments:
            return {"type": "array", "prefixItems": [_of(a, definitions) for a in arguments], "items": False}
        return {"type": "array"}
    if origin in (dict, Mapping) or hint in (dict, Mapping) or origin is typing.Mapping:
        value = arguments[1] if len(arguments) == 2 else Any
        return {"type": "object", "additionalProperties": _of(value, definitions)}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        name = hint.__name__
        if name not in definitions:
            definitions[name] = {}  # a placeholder first: recursive types end
            definitions[name] = _object(hint, definitions)
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(hint, type) and hint.__name__ in ("Path", "PosixPath", "WindowsPath"):
        return {"type": "string"}
    if isinstance(hint, type) and issubclass(hint, str):  # a str enum
        return {"type": "string"}
    raise TypeError(f"no JSON schema for the type {hint!r}")


def _object(cls: type, definitions: dict[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties = {item.name: _of(hints[item.name], definitions) for item in dataclasses.fields(cls)}
    properties.update(extra or {})
    return {
        "type": "object",
        "description": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def document_schema(kind: str) -> dict[str, Any]:
    """The schema of ``kind`` generated from the result types now (what ``load_schema`` must equal)."""
    from ..audit import AuditResult
    from ..calibrate import Calibration
    from ..evaluate import EvaluatedSuspect
    from ..fingerprint_settings import FingerprintResult
    from ..licensing import IssuedCopy
    from ..scan import ROW_FIELDS_ADDED, ScanRow, ScanSummary

    definitions: dict[str, Any] = {}
    envelope = {
        "schema": {"const": schema_id(kind)},
        "tool": {"const": "ipguard-onnx"},
        "version": {"type": "string"},
    }
    number = {"type": ["number", "null"]}
    if kind == "scan-row":
        body = _object(ScanRow, definitions)
        body["properties"] = {"schema": {"const": schema_id(kind)}, **body["properties"]}
        body["required"] = sorted(set(body["properties"]) - set(ROW_FIELDS_ADDED))
    else:
        payload: dict[str, Any]
        if kind == "audit":
            row = _object(AuditResult, definitions, {"matched": {"type": "boolean"}})
            definitions["AuditRow"] = row
            payload = {
                "created_at": {"type": "string"},
                "results": {"type": "array", "items": {"$ref": "#/$defs/AuditRow"}},
            }
        elif kind == "scan":
            payload = {"scan": _of(ScanSummary, definitions)}
        elif kind == "evaluate":
            payload = {
                "fingerprint": {"type": "string"},
                "threshold": number,
                "aruc": number,
                "gap": number,
                "robustness": number,
                "uniqueness": number,
                "hard_positive_robustness": number,
                "roc_auc": number,
                "tpr_at_1_percent_fpr": number,
                "tpr_at_5_percent_fpr": number,
                "r": {"type": "integer"},
                "rows": {"type": "array", "items": _of(EvaluatedSuspect, definitions)},
            }
        elif kind == "calibrate":
            payload = {"calibration": _of(Calibration, definitions)}
        elif kind == "inspect":
            payload = {
                "fingerprint": {"type": "string"},
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "signature": {"const": "valid"},
                "signer_key_id": {"type": "string"},
                "signer_pinned": {"type": "boolean"},
                "points": {"type": "integer", "minimum": 1},
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            }
        elif kind == "fingerprint":
            payload = {"fingerprint": _of(FingerprintResult, definitions)}
        elif kind == "issue":
            issued = _object(IssuedCopy, definitions, {"accuracy_change_points": number})
            definitions["IssuedRow"] = issued
            payload = {"issued": {"$ref": "#/$defs/IssuedRow"}}
        else:
            raise KeyError(f"no schema named {kind!r}; known: {', '.join(SCHEMAS)}")
        properties = {**envelope, **payload}
        body = {"type": "object", "properties": properties, "required": sorted(properties)}
        if kind == "audit":  # a signed report carries its signature block (``verify-report``)
            properties["signature"] = {"type": "object"}
            body["required"] = sorted(set(properties) - {"signature"})
        body["additionalProperties"] = False
    return {
        "$schema": _DIALECT,
        "$id": schema_id(kind),
        "title": f"ipguard-onnx {kind} (version {SCHEMA_VERSION})",
        **body,
        "$defs": dict(sorted(definitions.items())),
    }


def _main() -> int:
    """``python -m ipguard_onnx.schemas --write`` regenerates the files; ``--check`` fails on any drift."""
    import sys
    from pathlib import Path

    folder = Path(__file__).parent
    drift = []
    for kind in SCHEMAS:
        text = json.dumps(document_schema(kind), indent=2, sort_keys=False) + "\n"
        path = folder / f"{kind}.schema.json"
        if "--write" in sys.argv[1:]:
            path.write_text(text, encoding="utf-8")
        elif not path.is_file() or path.read_text(encoding="utf-8") != text:
            drift.append(kind)
    if drift:
        print(f"schemas out of date: {', '.join(drift)} (run python -m ipguard_onnx.schemas --write)")
        return 1
    return 0
