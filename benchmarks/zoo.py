"""A reproducible suspect zoo built from bundled data in minutes on 2 cores (fixed seeds).

Two worlds, each split three ways: the owner's split A (target, its copies, distillation), an
independent split B (negatives: models the owner never trained, on data the owner never saw), and a
test split C (accuracy, for the pruning stop rule of Section 5.1.2).

* ``digits``: 8×8 digits CNN target. Positives FTLL, FTAL, RTLL, RTAL (trained until within 3 points
  of the target's accuracy, as a pirate would ship them), weight pruning p = 0.1, 0.2, …
  and filter pruning c = 1/16, 2/16, … until accuracy drops by more than 3 points, onnxruntime int8
  (dynamic and static) and float16 copies. Hard positive: a distilled MLP student. Negatives: 10 CNNs
  of the target's architecture (other seeds), 5 other architectures, 5 random forests (skl2onnx).
* ``wine``: a 13-feature tabular MLP (features min-max scaled to [0, 1]) with the analogous zoo
  (no filter pruning; other architectures are MLPs of other shapes and a logistic regression).
* ``cancer``: the same recipe on scikit-learn's breast-cancer data (30 features, 2 classes), added after
  ``--unique`` was tuned, to check that it generalises beyond the worlds it was tuned on.
* ``fashion``: 12,000 Fashion-MNIST images (Debian's ``dataset-fashion-mnist``, never a test dependency), a
  28×28 CNN target, MLPs and narrower/wider CNNs as other architectures (issue 14's harder world).
Every world also holds the students an API thief trains (``_extraction_copies``, hard positives).
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ipguard_onnx import demo
from ipguard_onnx.search.panel import extraction_queries

ZOO_VERSION = 3
"""Bumped whenever the zoo changes; cached zoos of another version are rebuilt. 2: FT/RT copies keep accuracy.
3: extraction copies (issue 14) as hard positives."""


@dataclass(frozen=True)
class Zoo:
    world: str
    seed: int
    folder: Path
    target: Path
    train: np.ndarray  # the owner's split A (for -T initialisation)
    train_labels: np.ndarray  # its ground truth (references trained on it, the target's mistakes: issue 14)
    suspects: tuple[tuple[Path, str, str], ...]  # (path, group, family)


def _split(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    order = np.random.default_rng(seed).permutation(len(x))
    a, b = int(0.45 * len(x)), int(0.9 * len(x))
    ia, ib, ic = order[:a], order[a:b], order[b:]
    return x[ia], y[ia], x[ib], y[ib], x[ic], y[ic]


def _tabular(world: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer, load_wine

    x, y = (load_wine if world == "wine" else load_breast_cancer)(return_X_y=True)
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    return x.astype(np.float32), y.astype(np.int64)


FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_IMAGES = 12_000
"""Fashion-MNIST images used (the first of the 60,000 training images): 5,400 for the owner, 5,400 for
independent parties, 1,200 for accuracy — so one world builds in well under an hour on 2 cores."""


def _fashion() -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (idx files, read with numpy), N×1×28×28 in [0, 1]."""
    import gzip

    if not (FASHION / "train-images-idx3-ubyte.gz").exists():
        raise SystemExit(f"Fashion-MNIST is not in {FASHION}: apt-get install dataset-fashion-mnist")
    with gzip.open(FASHION / "train-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(FASHION / "train-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    return (images[:FASHION_IMAGES] / 255.0).astype(np.float32), labels[:FASHION_IMAGES].astype(np.int64)


def _fashion_cnn(seed: int, width: int = 16) -> nn.Module:
    """Two 3×3 convolutions each followed by 2×2 max-pooling, then two dense layers (28×28 → 7×7)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 49, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def _mlp(inputs: int, hidden: tuple[int, ...], classes: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    width = inputs
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def _last_linear(model: nn.Module) -> nn.Linear:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def _retrain(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    reinit: bool,
    all_layers: bool,
    epochs: int,
    good_enough: Callable[[nn.Module], bool] = lambda _: True,
    max_rounds: int = 10,
) -> nn.Module:
    """FTLL / FTAL / RTLL / RTAL (Section 5.1.2): fine-tune or re-initialise the last layer, train it or all.

    Training goes on, ``epochs`` at a time, until ``good_enough`` (a pirate ships a copy that works:
    within 3 points of the target's accuracy) or ``max_rounds`` rounds.
    """
    copy_ = copy.deepcopy(model)
    torch.manual_seed(seed)
    last = _last_linear(copy_)
    if reinit:
        last.reset_parameters()
    for parameter in copy_.parameters():
        parameter.requires_grad_(all_layers)
    for parameter in last.parameters():
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam([p for p in copy_.parameters() if p.requires_grad], lr=5e-4 if all_layers else 1e-3)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(max_rounds):
        copy_.train()
        for _ in range(epochs):
            order = torch.randperm(len(inputs))
            for start in range(0, len(inputs), 32):
                batch = order[start : start + 32]
                optimizer.zero_grad()
                nn.functional.cross_entropy(copy_(inputs[batch]), targets[batch]).backward()
                optimizer.step()
        if good_enough(copy_.eval()):
            break
    for parameter in copy_.parameters():
        parameter.requires_grad_(True)
    return copy_.eval()


def _filter_pruned(model: nn.Module, fraction: float) -> nn.Module:
    """Zero the ``fraction`` of each convolution's filters with the smallest L1 norm."""
    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        for module in copy_.modules():
            if isinstance(module, nn.Conv2d):
                norms = module.weight.abs().flatten(1).sum(1)
                drop = norms.argsort()[: int(round(fraction * len(norms)))]
                module.weight[drop] = 0
                if module.bias is not None:
                    module.bias[drop] = 0
    return copy_.eval()


def _distilled(teacher: nn.Module, student: nn.Module, x: np.ndarray, *, seed: int, epochs: int = 40) -> nn.Module:
    """Knowledge distillation (temperature 4) of the teacher's soft labels into another architecture."""
    torch.manual_seed(seed)
    inputs = torch.from_numpy(x)
    with torch.no_grad():
        soft = nn.functional.softmax(teacher(inputs) / 4, dim=1)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    student.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs))
        for start in range(0, len(inputs), 32):
            batch = order[start : start + 32]
            optimizer.zero_grad()
            log_p = nn.functional.log_softmax(student(inputs[batch]) / 4, dim=1)
            nn.functional.kl_div(log_p, soft[batch], reduction="batchmean").backward()
            optimizer.step()
    return student.eval()


def _labels(teacher: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        labels: np.ndarray = teacher(torch.from_numpy(x)).argmax(1).numpy()
    return labels


def _train_until(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    epochs: int,
    good_enough: Callable[[nn.Module], bool],
    max_rounds: int = 6,
) -> nn.Module | None:
    """Train ``epochs`` at a time until ``good_enough`` (an extractor ships a student that works); None if
    it never is within ``max_rounds`` (the copy is then not shipped)."""
    for round_ in range(max_rounds):
        model = demo.train(model, x, y, seed=seed + round_, epochs=epochs)
        if good_enough(model):
            return model
    return None


def _adversarial_queries(student: nn.Module, x: np.ndarray, count: int, seed: int, epsilon: float) -> np.ndarray:
    """QuRD's adversarial label extraction: points pushed across the *student's* boundary (one signed-gradient
    step of size ``epsilon`` towards a random other class), where the victim's labels teach it most."""
    rng = np.random.default_rng(seed)
    start = torch.from_numpy(x[rng.integers(0, len(x), count)]).requires_grad_(True)
    logits = student(start)
    other = (logits.argmax(1) + torch.from_numpy(rng.integers(1, logits.shape[1], count))) % logits.shape[1]
    nn.functional.cross_entropy(logits, other).backward()
    assert start.grad is not None
    moved = start.detach() - epsilon * start.grad.sign()
    return torch.clamp(moved, float(x.min()), float(x.max())).numpy().astype(np.float32)


def _extraction_copies(
    target: nn.Module,
    make_target: Callable[[int], nn.Module],
    make_other: Callable[[int], nn.Module],
    xb: np.ndarray,
    yb: np.ndarray,
    seed: int,
    epochs: int,
    good_enough: Callable[[nn.Module], bool],
) -> dict[str, nn.Module]:
    """Students of the target an API thief would train on their own data (split B) and synthetic queries,
    each shipped only when ``good_enough``: label-only extraction at about 1k and 10k queries, into the
    target's architecture and another; distillation from probabilities (T = 4); adversarial label
    extraction (1k queries, then 2 × 1k near the student's boundary); label extraction then fine-tuning
    on the thief's own labels."""
    copies: dict[str, nn.Module | None] = {}
    q1k, q10k = extraction_queries(xb, 1000, seed + 31), extraction_queries(xb, 10000, seed + 32)
    y1k, y10k = _labels(target, q1k), _labels(target, q10k)
    copies["label extraction 1k"] = _train_until(
        make_target(seed + 41), q1k, y1k, seed=seed + 41, epochs=epochs, good_enough=good_enough
    )
    copies["label extraction 1k, other arch"] = _train_until(
        make_other(seed + 42), q1k, y1k, seed=seed + 42, epochs=epochs, good_enough=good_enough
    )
    copies["label extraction 10k"] = _train_until(
        make_target(seed + 43), q10k, y10k, seed=seed + 43, epochs=max(epochs // 5, 3), good_enough=good_enough
    )
    copies["probability extraction"] = _distilled(target, make_other(seed + 44), q1k, seed=seed + 44)
    if copies["probability extraction"] is not None and not good_enough(copies["probability extraction"]):
        copies["probability extraction"] = None
    adversarial = _train_until(
        make_target(seed + 45), q1k, y1k, seed=seed + 45, epochs=epochs, good_enough=lambda _: True
    )
    queries, labels = q1k, y1k
    for round_ in range(2):
        assert adversarial is not None
        extra = _adversarial_queries(
            adversarial, xb, 1000, seed + 46 + round_, epsilon=0.1 * float(xb.max() - xb.min())
        )
        queries, labels = np.concatenate([queries, extra]), np.concatenate([labels, _labels(target, extra)])
        adversarial = demo.train(adversarial, queries, labels, seed=seed + 48 + round_, epochs=epochs)
    copies["adversarial label extraction"] = (
        adversarial if adversarial is not None and good_enough(adversarial) else None
    )
    extracted = copies["label extraction 1k"]
    if extracted is not None:
        tuned = demo.train(copy.deepcopy(extracted), xb, yb, seed=seed + 50, epochs=max(epochs // 3, 3))
        copies["extraction + fine-tuning"] = tuned if good_enough(tuned) else None
    return {family: model for family, model in copies.items() if model is not None}


def _quantized(source: Path, folder: Path, calibration: np.ndarray) -> dict[str, Path]:
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.float16 import convert_float_to_float16

    prepared = folder / "target.pre.onnx"
    quant_pre_process(str(source), str(prepared))  # without it quantize_dynamic fails on shape inference
    name = onnx.load(str(source)).graph.input[0].name

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.rows = iter(calibration[:200])

        def get_next(self) -> dict[str, np.ndarray] | None:
            row = next(self.rows, None)
            return None if row is None else {name: row[None]}

    out = {"int8-dynamic": folder / "int8-dynamic.onnx", "int8-static": folder / "int8-static.onnx"}
    quantize_dynamic(str(prepared), str(out["int8-dynamic"]), weight_type=QuantType.QInt8)
    quantize_static(str(prepared), str(out["int8-static"]), Reader())
    half = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    out["float16"] = folder / "float16.onnx"
    onnx.save(half, out["float16"])
    prepared.unlink()
    return out


def _random_forests(x: np.ndarray, y: np.ndarray, folder: Path, seed: int, count: int) -> list[Path]:
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    paths = []
    for index in range(count):
        forest = RandomForestClassifier(n_estimators=50, random_state=seed * 100 + index).fit(x.reshape(len(x), -1), y)
        path = folder / f"random-forest-{index}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx.save(to_onnx(forest, x.reshape(len(x), -1)[:1].astype(np.float32)), path)
        paths.append(path)
    return paths


def build(world: str, seed: int, root: Path) -> Zoo:
    """Build (or reuse) the zoo of ``world`` for ``seed`` under ``root``; returns its suspects."""
    folder = root / f"{world}-seed{seed}"
    manifest = folder / "manifest.json"
    if world not in ("digits", "wine", "cancer", "fashion"):
        raise ValueError(f"unknown world {world!r}: digits, wine, cancer or fashion")
    x, y = demo.digits() if world == "digits" else _fashion() if world == "fashion" else _tabular(world)
    xa, ya, xb, yb, xc, yc = _split(x, y, seed)
    cached = json.loads(manifest.read_text()) if manifest.exists() else None
    if isinstance(cached, dict) and cached.get("version") == ZOO_VERSION:
        entries = cached["suspects"]
        return Zoo(
            world, seed, folder, folder / "target.onnx", xa, ya, tuple((folder / p, g, f) for p, g, f in entries)
        )
    if folder.exists():  # an older zoo: rebuild it from scratch
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    classes = int(y.max()) + 1
    if world == "digits":
        make_target = lambda s: demo.digits_cnn(seed=s)  # noqa: E731
        others = [
            ("mlp-128", lambda s: demo.digits_mlp(seed=s)),
            ("mlp-256-128", lambda s: _mlp(64, (256, 128), classes, s)),
            ("mlp-32", lambda s: _mlp(64, (32,), classes, s)),
            ("cnn-narrow", lambda s: demo.digits_cnn(seed=s, width=8)),
            ("cnn-wide", lambda s: demo.digits_cnn(seed=s, width=32)),
        ]
        epochs, student = 15, lambda s: _mlp(64, (256,), classes, s)
    elif world == "fashion":  # 28×28 clothing images: a larger, harder world (issue 14)
        make_target = lambda s: _fashion_cnn(s)  # noqa: E731
        others = [
            ("mlp-256", lambda s: _mlp(784, (256,), classes, s)),
            ("mlp-512-128", lambda s: _mlp(784, (512, 128), classes, s)),
            ("mlp-64", lambda s: _mlp(784, (64,), classes, s)),
            ("cnn-narrow", lambda s: _fashion_cnn(s, width=8)),
            ("cnn-wide", lambda s: _fashion_cnn(s, width=32)),
        ]
        epochs, student = 8, lambda s: _mlp(784, (256,), classes, s)
    else:  # tabular: wine (13 features, 3 classes) or breast cancer (30 features, 2 classes)
        width = x.shape[1]
        make_target = lambda s: _mlp(width, (64, 32), classes, s)  # noqa: E731
        others = [
            ("mlp-16", lambda s: _mlp(width, (16,), classes, s)),
            ("mlp-128", lambda s: _mlp(width, (128,), classes, s)),
            ("mlp-32-32-32", lambda s: _mlp(width, (32, 32, 32), classes, s)),
            ("mlp-256-64", lambda s: _mlp(width, (256, 64), classes, s)),
            ("logistic", lambda s: _mlp(width, (), classes, s)),
        ]
        epochs, student = 150, lambda s: _mlp(width, (16,), classes, s)
    sample = x[:2]
    entries: list[tuple[str, str, str]] = []

    def export(model: nn.Module, name: str, group: str, family: str) -> None:
        with redirect_stdout(io.StringIO()):
            demo.export_onnx(model, sample, folder / f"{name}.onnx")
        entries.append((f"{name}.onnx", group, family))

    target = demo.train(make_target(seed), xa, ya, seed=seed, epochs=epochs)
    base_accuracy = demo.accuracy(target, xc, yc)
    with redirect_stdout(io.StringIO()):
        demo.export_onnx(target, sample, folder / "target.onnx")
    tune = max(3, epochs // 3)
    for family, reinit, all_layers in [
        ("FTLL", False, False),
        ("FTAL", False, True),
        ("RTLL", True, False),
        ("RTAL", True, True),
    ]:
        copy_ = _retrain(
            target,
            xa,
            ya,
            seed=seed + 1,
            reinit=reinit,
            all_layers=all_layers,
            epochs=tune,
            good_enough=lambda m: base_accuracy - demo.accuracy(m, xc, yc) <= 0.03,
        )
        export(copy_, family.lower(), "positive", family)
    for step in range(1, 10):
        pruned = demo.pruned(target, step / 10)
        if base_accuracy - demo.accuracy(pruned, xc, yc) > 0.03:
            break
        export(pruned, f"weight-pruned-{step}0", "positive", "weight pruning")
    if world in ("digits", "fashion"):  # convolutional targets
        for step in range(1, 16):
            pruned = _filter_pruned(target, step / 16)
            if base_accuracy - demo.accuracy(pruned, xc, yc) > 0.03:
                break
            export(pruned, f"filter-pruned-{step}of16", "positive", "filter pruning")
    for family, path in _quantized(folder / "target.onnx", folder, xa).items():
        entries.append((path.name, "positive", family))
    export(
        _distilled(target, student(seed + 7), xa, seed=seed + 7), "distilled-student", "hard-positive", "distillation"
    )
    close = lambda m: base_accuracy - demo.accuracy(m, xc, yc) <= 0.03  # noqa: E731 - shipped when it works
    for family, model in _extraction_copies(target, make_target, student, xb, yb, seed, epochs, close).items():
        export(model, family.replace(" ", "-").replace(",", "").replace("+", "and"), "hard-positive", family)
    for index in range(10):
        s = 1000 * (seed + 1) + index
        export(
            demo.train(make_target(s), xb, yb, seed=s, epochs=epochs),
            f"same-arch-{index}",
            "negative",
            "same architecture",
        )
    for index, (name, build_other) in enumerate(others):
        s = 2000 * (seed + 1) + index
        export(
            demo.train(build_other(s), xb, yb, seed=s, epochs=epochs), f"other-{name}", "negative", "other architecture"
        )
    entries.extend((p.name, "negative", "random forest") for p in _random_forests(xb, yb, folder, seed, 5))
    manifest.write_text(json.dumps({"version": ZOO_VERSION, "suspects": entries}, indent=1))
    return Zoo(world, seed, folder, folder / "target.onnx", xa, ya, tuple((folder / p, g, f) for p, g, f in entries))
