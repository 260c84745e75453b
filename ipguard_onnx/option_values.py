"""Option text turned into typed values: bounds, shapes, named values, preprocessing, class names, keys.

Each parser raises ``UsageError`` (exit 2) with one line naming the option and an example of what it takes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from .errors import UsageError
from .search import METHODS
from .text import shown
from .types import MAX_DOMAIN

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from .preprocessing import Preprocessing


PASSWORD_VARIABLE = "IPGUARD_ONNX_KEY_PASSWORD"


MAX_CLASS_NAME_CHARACTERS = 1 << 20
"""Class names are signed into the bundle's header, which loaders cap at 16 MiB."""


def key_password() -> bytes | None:
    value = os.environ.get(PASSWORD_VARIABLE)
    return os.fsencode(value) if value else None  # the bytes as set, even those that are no UTF-8


def signing_key_for(key: Path | None, *, create: bool = True) -> tuple[Ed25519PrivateKey, str | None]:
    """``--key``, else the user's default key (created on first use if ``create``), and a note saying which."""
    from .keys import default_signing_key, load_private_key

    if key is not None:
        return load_private_key(key, password=key_password()), None
    signing_key, key_path, created = default_signing_key(password=key_password(), create=create)
    return (
        signing_key,
        f"{'created' if created else 'using'} the default signing key {key_path} (pass --key to choose one)",
    )


def trusted_public_key(path: Path | None) -> Ed25519PublicKey | None:
    """``--trusted-key``: the public key bundles or reports must be signed by, if given."""
    from .keys import load_public_key

    return load_public_key(path) if path is not None else None


def method_name(text: str) -> str:
    """``--method``: a name from the search registry (a usage error, exit 2, otherwise)."""
    if text not in METHODS:
        raise typer.BadParameter(f"{text!r} is not one of {', '.join(METHODS)}")
    return text


def parse_domain(text: str) -> tuple[float, float] | Literal["data"]:
    if text.strip() == "data":
        return "data"
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--domain expects LOW,HIGH (e.g. 0,1) or 'data', got {shown(text)!r}") from None
    if not -MAX_DOMAIN <= low < high <= MAX_DOMAIN:  # NaN and infinite bounds fail too
        raise UsageError(f"--domain needs LOW < HIGH within ±{MAX_DOMAIN:g}, got {shown(text)!r}")
    return (low, high)


def unnamed(texts: list[str] | None) -> str | None:
    """The one ``--input-shape`` given without a name (a model of one input), if any."""
    plain = [text for text in texts or [] if "=" not in text]
    if len(plain) > 1:
        raise UsageError("--input-shape without a NAME= may be given once; name each input of a model of several")
    return plain[0] if plain else None


def named_values(texts: list[str] | None, option: str, *, required: bool = False) -> list[tuple[str, str]]:
    """``NAME=VALUE`` items of a repeatable option, each name once."""
    items: list[tuple[str, str]] = []
    for text in texts or []:
        if "=" not in text:
            if required:
                raise UsageError(f"{option} expects NAME=VALUE, got {text!r}")
            continue
        name, _, value = text.partition("=")
        if not name.strip() or name.strip() in {seen for seen, _ in items}:
            raise UsageError(f"{option} {text!r}: each input is named once, with a non-empty name")
        items.append((name.strip(), value.strip()))
    return items


def required_shape(text: str) -> tuple[int, ...]:
    shape = parse_shape(text)
    assert shape is not None
    return shape


def hold_value(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--hold {name}={text!r}: the value must be a number (e.g. --hold sr=16000)") from None
    if not math.isfinite(value):
        raise UsageError(f"--hold {name}: the value must be finite, got {text!r}")
    return value


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").replace("×", ",").split(","))
    except ValueError:
        raise UsageError(
            f"--input-shape expects sizes like 3,48,192 (the sample, without the batch), got {text!r}"
        ) from None
    if not shape or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape sizes must be positive, got {text!r}")
    return shape


def floats(text: str | None, option: str) -> tuple[float, ...]:
    if text is None:
        return ()
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"{option} expects comma-separated numbers, got {text!r}") from None


def parse_preprocessing(scale: float | None, mean: str | None, std: str | None) -> Preprocessing | None:
    from .preprocessing import Preprocessing

    if scale is None and mean is None and std is None:
        return None
    return Preprocessing(1.0 if scale is None else scale, floats(mean, "--mean"), floats(std, "--std"))


def names_file(text: str | None) -> Path | None:
    """``--class-names`` when it names a file (an input, never to be written over)."""
    return Path(text) if text is not None and Path(text).is_file() else None


def parse_class_names(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    path = Path(text)
    if path.is_file():
        try:
            names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(
                f"--class-names {shown(text)} could not be read as UTF-8 text ({type(error).__name__})"
            ) from None
    else:
        names = [part.strip() for part in text.split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise UsageError("--class-names must list distinct, non-empty names")
    if sum(map(len, names)) > MAX_CLASS_NAME_CHARACTERS:  # they are signed into the bundle's header
        raise UsageError(f"--class-names hold more than {MAX_CLASS_NAME_CHARACTERS:,} characters in all")
    return tuple(names)
