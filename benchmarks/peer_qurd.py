"""Side by side with a peer: QuRD's re-implementation of IPGuard (``BoundaryQueries``, one point at a time)
and this project's batched search, on the same model, the same margin k and the same number of points, in
one run on one machine (BENCHMARKS.md, "Side by side with a peer").

    git -C "$(dirname MIRROR)" ...   # any checkout of https://github.com/grodino/QuRD (MIT); not committed here
    python benchmarks/peer_qurd.py --qurd /path/to/QuRD [--n 100] [--k 3] [--seed 0]
    python benchmarks/peer_qurd.py --qurd /path/to/QuRD --onnx MODEL.onnx   # a large model (issue 28)

The peer's module is imported unmodified from its checkout. Its package also imports foolbox, scikit-image
and numba for other methods; ``BoundaryQueries`` uses none of them, so those three are stood in by empty
modules here. The model is the quickstart's digits CNN (torch, 8×8); the peer runs it in torch directly,
this project through its surrogate of the exported ONNX file, exactly as ``fingerprint`` does. With ``--onnx``
both run the surrogate of that file (its search scores) from the same random starts in [0, 1]; this project
then also runs at k = 0, the nearest it has to the peer's stop (the label is j).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _peer(qurd: Path) -> types.ModuleType:
    """QuRD's ``qurd.fingerprint.queries``, imported from its checkout without its package ``__init__``."""
    for name in ("foolbox", "numba", "skimage", "skimage.segmentation"):
        stub = types.ModuleType(name)
        stub.njit = lambda *a, **k: a[0] if a and callable(a[0]) else (lambda f: f)  # type: ignore[attr-defined]
        stub.quickshift = None  # type: ignore[attr-defined]
        sys.modules.setdefault(name, stub)
    for name, folder in (("qurd", qurd / "qurd"), ("qurd.fingerprint", qurd / "qurd" / "fingerprint")):
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]  # type: ignore[attr-defined]
        sys.modules[name] = package
    return importlib.import_module("qurd.fingerprint.queries")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qurd", type=Path, required=True, help="a checkout of github.com/grodino/QuRD")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--k", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--onnx", type=Path, help="a classifier file to run both on (default: the digits CNN)")
    args = parser.parse_args()

    from torchvision.transforms import v2

    from ipguard_onnx import OnnxClassifier, demo
    from ipguard_onnx.search import IPGuardSearch
    from ipguard_onnx.surrogate import Surrogate

    # the peer writes torch.optim.adam.Adam; torch 2.14 no longer exposes that submodule as an attribute
    torch.optim.adam = importlib.import_module("torch.optim.adam")  # type: ignore[attr-defined]

    queries = _peer(args.qurd)
    if args.onnx is not None:
        return _on_onnx(queries, args.onnx, args.n, args.k, args.seed)
    torch.manual_seed(args.seed)
    x, y = demo.digits()
    model = demo.train(demo.digits_cnn(seed=0), x, y, seed=0).eval()
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    identity = v2.Compose([v2.Normalize(mean=[0.0], std=[1.0])])  # the peer needs a Normalize; this one is none
    print(f"digits CNN, n = {args.n}, k = {args.k}, {torch.get_num_threads()} torch threads", flush=True)

    # The peer: one point at a time, up to 1,000 Adam steps each, stopping once the label is j.
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    peer_points = queries.BoundaryQueries(k=args.k).sample(dataset, args.n, model, identity)
    peer_seconds = time.perf_counter() - started
    with torch.no_grad():
        peer_logits = model(peer_points)
    top = peer_logits.topk(2, dim=-1).values
    peer_margin = float(((top[:, 0] - top[:, 1]) >= args.k).float().mean())  # the peer stops once the label is j

    # This project: the surrogate of the exported ONNX file, every point at once, Eq. 5 with margin k.
    with tempfile.TemporaryDirectory() as folder:
        path = demo.export_onnx(model, x[:2], Path(folder) / "digits.onnx")
        surrogate = Surrogate(OnnxClassifier(path, allow_spinning=False))
        rng = np.random.default_rng(args.seed)
        start = x[rng.choice(len(x), args.n, replace=False)]
        with torch.no_grad():
            scores = surrogate.scores_tensor(torch.from_numpy(start)).numpy()
        source = scores.argmax(1)
        target = (source + rng.integers(1, scores.shape[1], args.n)) % scores.shape[1]  # a random j ≠ i
        low, high = np.zeros(start.shape[1:], np.float32), np.ones(start.shape[1:], np.float32)
        started = time.perf_counter()
        outcome = IPGuardSearch(k=args.k).run(surrogate.scores_tensor, start, source, target, low, high)
        ours_seconds = time.perf_counter() - started

    print(
        f"peer (QuRD BoundaryQueries): {peer_seconds:.2f} s for {len(peer_points)} points "
        f"({peer_margin:.0%} of them past the boundary by the margin k)"
    )
    print(
        f"ipguard-onnx (IPGuardSearch, batched): {ours_seconds:.2f} s for {args.n} points "
        f"(hit rate {outcome.hit_rate:.2f}, mean {float(outcome.iterations.mean()):.0f} iterations)"
    )
    print(f"ratio: {peer_seconds / ours_seconds:.1f}× faster at equal points")
    return 0


def _on_onnx(queries: types.ModuleType, path: Path, n: int, k: float, seed: int) -> int:
    """Both searches on the surrogate of an ONNX classifier: the peer one point at a time, this project batched."""
    from torchvision.transforms import v2

    from ipguard_onnx import OnnxClassifier
    from ipguard_onnx.search import IPGuardSearch
    from ipguard_onnx.surrogate import Surrogate

    target = OnnxClassifier(path, allow_spinning=False)
    rng = np.random.default_rng(seed)
    start = rng.random((n, *target.input_spec.sample_shape), dtype=np.float32)
    surrogate = Surrogate(target, parity_batch=start[:8])
    model = surrogate.score_module.eval()
    with torch.no_grad():
        scores = model(torch.from_numpy(start)).numpy()
    source = scores.argmax(1)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(start), torch.from_numpy(source))
    identity = v2.Compose([v2.Normalize(mean=[0.0], std=[1.0])])
    print(f"{path.name}, n = {n}, k = {k}, {torch.get_num_threads()} torch threads", flush=True)
    torch.manual_seed(seed)
    started = time.perf_counter()
    peer_points = queries.BoundaryQueries(k=k).sample(dataset, n, model, identity)
    peer_seconds = time.perf_counter() - started
    with torch.no_grad():
        top = model(peer_points).topk(2, dim=-1).values
    peer_margin = float(((top[:, 0] - top[:, 1]) >= k).float().mean())
    print(f"peer (QuRD BoundaryQueries): {peer_seconds:.1f} s for {len(peer_points)} points ({peer_margin:.0%} by k)")
    target_labels = (source + rng.integers(1, scores.shape[1], n)) % scores.shape[1]  # a random j ≠ i
    low, high = np.zeros(start.shape[1:], np.float32), np.ones(start.shape[1:], np.float32)
    for margin in (k, 0.0):
        started = time.perf_counter()
        outcome = IPGuardSearch(k=margin).run(model, start, source, target_labels, low, high)
        seconds = time.perf_counter() - started
        print(
            f"ipguard-onnx (IPGuardSearch, batched, k = {margin:g}): {seconds:.1f} s for {n} points (hit rate "
            f"{outcome.hit_rate:.2f}, mean {float(outcome.iterations.mean()):.0f} iterations); "
            f"ratio {peer_seconds / seconds:.2f}×",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
