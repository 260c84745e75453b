"""Owner data for -T initialisation and per-feature bounds: .npy, .npz, or a folder of images."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import UsageError
from .files import check_regular_file
from .types import FloatArray, InputSpec, LabelArray

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
_NPZ_KEYS = ("x", "X", "data", "inputs", "x_train", "X_train")


def named_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Per-sample shapes of the arrays a .npz holds, by name (for a model of several inputs: the arrays
    named like its inputs fix their symbolic sizes); empty for anything else. Reads the headers only."""
    if path.suffix != ".npz" or not path.is_file():
        return {}
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as handle:
                    major, _ = np.lib.format.read_magic(handle)
                    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                    shape, _, _ = read(handle)  # the header only
                if len(shape) >= 2:
                    shapes[member.removesuffix(".npy")] = tuple(int(d) for d in shape[1:])
    except (OSError, ValueError, RuntimeError, NotImplementedError, zipfile.BadZipFile):
        raise UsageError(f"--data {path.name} is not a readable .npz archive") from None
    return shapes


def _load_packed(path: Path, spec: InputSpec) -> np.ndarray | None:
    """A model of several inputs fed from a .npz holding one array per data input (by input name), packed
    side by side as the points are; None when the archive does not name every data input."""
    packing = spec.packing
    if packing is None or path.suffix != ".npz" or not path.is_file():
        return None
    check_regular_file(path, "--data")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = [value.name for value in packing.data]
            if not set(names) <= set(archive.files):
                return None
            for name in names:
                _check_size(path, archive.zip.getinfo(f"{name}.npy").file_size)
            arrays = [np.asarray(archive[name]) for name in names]
    except MemoryError:
        raise UsageError(f"--data {path.name} does not fit in memory") from None
    except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError, zipfile.BadZipFile):
        raise UsageError(f"--data {path.name} is not a readable .npz archive") from None
    rows = {len(array) for array in arrays}
    if len(rows) != 1:
        raise UsageError(f"--data {path.name}: the arrays of {', '.join(names)} hold different numbers of samples")
    for value, array in zip(packing.data, arrays, strict=True):
        if tuple(array.shape[1:]) != value.shape:
            raise UsageError(
                f"--data {path.name}: '{value.name}' has samples of shape {tuple(array.shape[1:])}; the input "
                f"takes {value.shape}"
            )
        if array.dtype.kind not in "fiub":
            raise UsageError(f"--data {path.name}: '{value.name}' holds {array.dtype} values; expected numbers")
    count = rows.pop()
    return np.concatenate([array.reshape(count, -1).astype(np.float32) for array in arrays], axis=1)


def load_points(path: Path, spec: InputSpec) -> FloatArray:
    """Load samples shaped for ``spec`` (n × sample shape, float32); flat rows are reshaped. For a model of
    several inputs, a .npz with one array per data input (named like it) is packed as the points are."""
    if not path.exists():
        raise UsageError(f"--data {path} does not exist; pass a .npy/.npz file or a folder of images")
    packed = _load_packed(path, spec)
    if packed is not None:
        array = packed
    elif path.is_dir():
        array = _load_images(path, spec)
    elif path.suffix == ".npy":
        array = _load_numpy(path)
    elif path.suffix == ".npz":
        array = _load_npz(path)
    else:
        raise UsageError(f"--data {path.name}: expected a .npy or .npz file or a folder of images")
    if array.dtype.kind not in "fiu":
        raise UsageError(f"--data {path.name} holds {array.dtype} values; expected numbers")
    size = int(np.prod(spec.sample_shape))
    if tuple(array.shape[1:]) != spec.sample_shape:
        if array.ndim >= 2 and int(np.prod(array.shape[1:])) == size:
            array = array.reshape(len(array), *spec.sample_shape)
        else:
            raise UsageError(
                f"--data {path.name} has samples of shape {tuple(array.shape[1:])}; the model's input "
                f"{spec.name!r} takes {spec.sample_shape}"
            )
    if len(array) == 0:
        raise UsageError(f"--data {path.name} holds no samples")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise UsageError(f"--data {path.name} holds NaN or infinite values")
    return array


def data_sample_shape(path: Path) -> tuple[int, ...]:
    """The per-sample shape of the owner's data, to fix a graph's symbolic input dimensions."""
    if not path.exists():
        raise UsageError(f"--data {path} does not exist; pass a .npy/.npz file or a folder of images")
    if path.is_dir():
        raise UsageError(
            f"the model's input size is symbolic and --data {path} is a folder of images of any size; "
            "pass --input-shape (e.g. 3,224,224)"
        )
    if path.suffix not in (".npy", ".npz"):
        raise UsageError(f"--data {path.name}: expected a .npy or .npz file or a folder of images")
    array = _load_numpy(path) if path.suffix == ".npy" else _load_npz(path)
    if array.ndim < 2:
        raise UsageError(f"--data {path.name} holds an array of shape {array.shape}; expected samples × dimensions")
    return tuple(int(d) for d in array.shape[1:])


MAX_DATA_BYTES = 8 << 30
"""The largest array ``--data`` may hold once decompressed (8 GiB)."""


def _check_size(path: Path, size: int) -> None:
    if size > MAX_DATA_BYTES:
        raise UsageError(
            f"--data {path.name} holds {size:,} bytes of arrays, more than the {MAX_DATA_BYTES:,} accepted"
        )


def _load_numpy(path: Path) -> np.ndarray:
    check_regular_file(path, "--data")
    try:  # mapped first: a header that declares more than the file holds is refused before any allocation
        mapped: np.ndarray = np.load(path, allow_pickle=False, mmap_mode="r")
        _check_size(path, mapped.nbytes)
        return np.array(mapped)
    except MemoryError:
        raise UsageError(f"--data {path.name} does not fit in memory") from None
    except ValueError as exc:
        if "pickle" in str(exc):
            raise UsageError(f"--data {path.name} cannot be read without unpickling; save a plain array") from None
        raise UsageError(f"--data {path.name} is not a readable .npy file ({str(exc)[:80]})") from None
    except OSError:
        raise UsageError(f"--data {path.name} is not a readable .npy file") from None


def _load_npz(path: Path) -> np.ndarray:
    check_regular_file(path, "--data")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            key = next((k for k in _NPZ_KEYS if k in names), names[0] if len(names) == 1 else None)
            if key is None:
                raise UsageError(
                    f"--data {path.name} holds arrays {names}; name the inputs one of {', '.join(_NPZ_KEYS)}"
                )
            _check_size(path, archive.zip.getinfo(f"{key}.npy").file_size)  # a zip bomb stops here
            return np.asarray(archive[key])
    except MemoryError:
        raise UsageError(f"--data {path.name} does not fit in memory") from None
    except (OSError, ValueError, KeyError):
        raise UsageError(f"--data {path.name} is not a readable .npz archive") from None


def _load_images(folder: Path, spec: InputSpec) -> np.ndarray:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UsageError(f"--data {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if spec.layout == "ND":
        raise UsageError(f"--data {folder} is a folder of images but the model takes vectors; pass .npy/.npz")
    try:
        from PIL import Image
    except ImportError:
        raise UsageError("reading a folder of images needs Pillow: pip install pillow") from None
    if spec.layout == "NCHW":
        channels, height, width = spec.sample_shape
    else:
        height, width, channels = spec.sample_shape
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)
    if mode is None:
        raise UsageError(f"images need 1, 3 or 4 channels; the model's input has {channels}")
    samples = []
    for file in files:
        try:
            with Image.open(file) as image:
                pixels = np.asarray(image.convert(mode).resize((width, height)), dtype=np.float32) / 255.0
        except (OSError, ValueError, Image.DecompressionBombError):  # a bomb is an input error, not a crash
            raise UsageError(f"--data: {file} is not a readable image (or too large to decode)") from None
        pixels = pixels.reshape(height, width, channels)
        samples.append(pixels.transpose(2, 0, 1) if spec.layout == "NCHW" else pixels)
    return np.stack(samples)


_LABEL_KEYS = ("y", "labels", "label", "targets", "target")


def load_labels(path: Path, count: int) -> LabelArray | None:
    """Integer class labels stored beside the inputs in a .npz (key y, labels, …), if any."""
    if path.suffix != ".npz" or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            key = next((k for k in _LABEL_KEYS if k in archive.files), None)
            if key is None:
                return None
            _check_size(path, archive.zip.getinfo(f"{key}.npy").file_size)
            labels = np.asarray(archive[key])
    except MemoryError:
        raise UsageError(f"--data {path.name} does not fit in memory") from None
    except (OSError, ValueError, KeyError):
        raise UsageError(f"--data {path.name} is not a readable .npz archive") from None
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise UsageError(f"--data {path.name}: '{key}' must hold one integer label per sample ({count})")
    return labels.astype(np.int64)
