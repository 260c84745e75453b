"""The public API (``ipguard_onnx.__init__``): every name is listed once, importable, and typed."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import ipguard_onnx
from ipguard_onnx import errors

SOURCE = Path(ipguard_onnx.__file__).read_text(encoding="utf-8")


def _type_checking_names() -> set[str]:
    """Names imported under ``if TYPE_CHECKING:`` (what type checkers and IDEs see)."""
    tree = ast.parse(SOURCE)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                if isinstance(child, ast.ImportFrom):
                    names.update(alias.asname or alias.name for alias in child.names)
    return names


def test_all_the_lazy_homes_and_the_typed_imports_list_the_same_names() -> None:
    homes = dict(ipguard_onnx._HOMES)
    assert sorted(ipguard_onnx.__all__) == sorted([*homes, "__version__"])
    assert len(set(ipguard_onnx.__all__)) == len(ipguard_onnx.__all__)
    assert _type_checking_names() == set(homes)


def test_every_public_name_resolves_from_its_home() -> None:
    for name, home in ipguard_onnx._HOMES.items():
        value = getattr(ipguard_onnx, name)
        assert value is getattr(importlib.import_module(f"ipguard_onnx.{home}"), name), name
        assert inspect.getdoc(value), f"{name} has no docstring"
    assert dir(ipguard_onnx) == ipguard_onnx.__all__


def test_every_error_a_user_can_catch_is_public() -> None:
    raised = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.IPGuardError)
    }
    assert raised <= set(ipguard_onnx.__all__), raised - set(ipguard_onnx.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        ipguard_onnx.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("an unknown name resolved")
