"""Ed25519 signing keys: generate, load, name them by a short public-key id, and verify signatures."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import SignatureError, SigningKeyError, UsageError
from .files import PEM, check_replaceable
from .text import shown

PRIVATE_KEY_NAME = "signing-key.pem"
PUBLIC_KEY_NAME = "signing-key.pub.pem"


def config_dir() -> Path:
    """Where the default key lives: $IPGUARD_ONNX_HOME, else $XDG_CONFIG_HOME/ipguard-onnx, else ~/.config."""
    explicit = os.environ.get("IPGUARD_ONNX_HOME")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ipguard-onnx"


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of sha256 of its raw bytes."""
    return hashlib.sha256(public_key_bytes(key)).hexdigest()[:16]


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_path: Path
    key_id: str


def write_keypair(
    private_path: Path, public_path: Path, *, password: bytes | None = None, force: bool = False
) -> KeyPair:
    """Write a new Ed25519 key: the private PEM with mode 0600, the public PEM beside it.

    Both or neither: each half goes to a temporary file first, and when the second cannot be put in
    place the first is put back as it was (with ``force``, the old key survives a failed write)."""
    for path, option in ((private_path, "--out"), (public_path, "the public key")):
        if not path.name:
            raise UsageError(f"{option} {shown(path)} names no file; pass a file path such as owner.pem")
        if path.exists() and not path.is_file() and not path.is_dir():
            raise SigningKeyError(f"{shown(path)} is not a regular file (a pipe, device or socket)")
        if path.is_dir():
            raise SigningKeyError(f"{shown(path)} is a folder; pass a file path for the key")
        if path.exists() and not force:
            raise SigningKeyError(f"{shown(path)} already exists; pass --force to overwrite it or choose another path")
        check_replaceable(path, option, PEM)  # --force replaces a key, never notes or a model
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path, public_path = Path(os.path.realpath(private_path)), Path(os.path.realpath(public_path))
    staged: list[Path] = []  # (a symlinked key is written through: the link stays)
    backup: Path | None = None
    try:
        for path, pem, mode in ((private_path, private_pem, 0o600), (public_path, public_pem, 0o644)):
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            staged.append(Path(name))
            os.fchmod(descriptor, mode)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
        if private_path.exists():  # kept until the public half is in place too
            backup = private_path.with_name(f".{private_path.name}.{os.getpid()}.old")
            os.link(private_path, backup)
        os.replace(staged[0], private_path)
        try:
            os.replace(staged[1], public_path)
        except OSError:
            if backup is not None:
                os.replace(backup, private_path)
                backup = None
            else:
                private_path.unlink(missing_ok=True)
            raise
    except OSError as error:
        raise SigningKeyError(
            f"cannot write the key pair {shown(private_path)} + {shown(public_path)}: "
            f"{error.strerror or type(error).__name__}; no key was changed"
        ) from None
    finally:
        for path in [*staged, *([backup] if backup is not None else [])]:
            path.unlink(missing_ok=True)
    return KeyPair(private_path, public_path, key_id(key.public_key()))


def load_private_key(path: str | os.PathLike[str], *, password: bytes | None = None) -> Ed25519PrivateKey:
    """Read a PEM Ed25519 private key; refused when group or others may read it (POSIX)."""
    path = Path(path)
    if not path.is_file():
        raise SigningKeyError(f"signing key not found: {path}; create one with 'ipguard-onnx keygen'")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=password)
    except TypeError:
        message = (
            "is encrypted; set IPGUARD_ONNX_KEY_PASSWORD"
            if password is None
            else "is not encrypted; unset IPGUARD_ONNX_KEY_PASSWORD"
        )
        raise SigningKeyError(f"signing key {path} {message}") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError(
            f"{path} is not a readable PEM private key (or the password is wrong); "
            "create one with 'ipguard-onnx keygen'"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"{path} holds a {type(key).__name__}; ipguard-onnx signs with Ed25519 keys from 'ipguard-onnx keygen'"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        raise SigningKeyError(
            f"signing key {path} is readable by others (mode {mode:04o}); run 'chmod 600 {path}' and "
            "consider the key exposed if others could read it"
        )
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Read a PEM Ed25519 public key (the .pub.pem ``keygen`` writes)."""
    path = Path(path)
    if not path.is_file():
        raise SigningKeyError(f"public key not found: {path}; pass the .pub.pem written by 'ipguard-onnx keygen'")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError(
            f"{path} is not a PEM public key; pass the .pub.pem written by 'ipguard-onnx keygen'"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
    return key


def default_signing_key(*, password: bytes | None = None, create: bool = True) -> tuple[Ed25519PrivateKey, Path, bool]:
    """The user's default key, created on first use unless ``create`` is False; returns (key, path, created)."""
    folder = config_dir()
    private_path = folder / PRIVATE_KEY_NAME
    created = False
    if not private_path.exists() and not create:
        raise SigningKeyError(f"no default signing key at {private_path}; pass --key with the key that signed it")
    if not private_path.exists():
        write_keypair(private_path, folder / PUBLIC_KEY_NAME, password=password)
        created = True
    return load_private_key(private_path, password=password), private_path, created


def strict_b64decode(text: str) -> bytes:
    """Decode base64 that must be in canonical form: unused trailing bits set would decode the same,
    so a signature or key with them flipped must not verify (bundles and signed reports)."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw


def verify_signature(
    message: bytes,
    *,
    public_key: str,
    signature: str,
    claimed_key_id: object,
    trusted_key: Ed25519PublicKey | None,
    subject: str,
) -> str:
    """Check an Ed25519 ``signature`` (base64) of ``message`` by ``public_key`` (base64, raw), the key id
    the document claims, and the pinned ``trusted_key``; return the signer's key id.

    The one place bundles (``bundle.load_bundle``) and signed reports (``evidence.verify_report``) are
    verified; every failure is a ``SignatureError`` naming ``subject``.
    """
    try:
        public_raw = strict_b64decode(public_key)
        public = Ed25519PublicKey.from_public_bytes(public_raw)
        public.verify(strict_b64decode(signature), message)
    except (InvalidSignature, ValueError, binascii.Error):
        raise SignatureError(
            f"{subject} failed signature verification: it was altered after signing; do not trust it, "
            "get a fresh copy from its owner"
        ) from None
    signer = key_id(public)
    if claimed_key_id != signer:
        raise SignatureError(f"{subject} names signer {claimed_key_id} but is signed by {signer}; do not trust it")
    if trusted_key is not None and public_key_bytes(trusted_key) != public_raw:
        raise SignatureError(
            f"{subject} is signed by key {signer}, not by the trusted key {key_id(trusted_key)}; "
            "it was not made by the owner you expect"
        )
    return signer
