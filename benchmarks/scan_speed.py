"""Scan throughput (BENCHMARKS.md, "Scanning a model hub"): suspects per second for one process and for Ray
Data with 1 and 2 actor workers on the same suspects and bundles, and the costs a model of a
10⁴-suspect × 10³-bundle scan is built from.

    python benchmarks/scan_speed.py [--world digits] [--seed 0] [--copies 5] [--bundles 20] [--repeats 2]

Suspects: every model of an earlier ``run_zoo.py`` zoo folder, each copied ``--copies`` times under other
names (a hub holds many near-identical uploads); bundles: ``--bundles`` fingerprints of the zoo's target
(seeds 0, 1, …; 100 points each), made once and kept in the zoo folder. Each configuration runs as its
own ``ipguard-onnx scan`` process (Ray's start-up included, then reported apart).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ipguard_onnx import FingerprintSettings, audit, fingerprint, load_bundle  # noqa: E402
from ipguard_onnx.keys import load_private_key, write_keypair  # noqa: E402
from ipguard_onnx.models import as_classifier  # noqa: E402


def _bundles(zoo: Path, count: int, owner_data: Path | None = None) -> Path:
    """``count`` bundles of the zoo's target (seeds 0, 1, …), kept in the zoo folder: without data (q0 = 0.99,
    uncalibrated: they cannot accuse), or made with ``owner_data`` (q0 measured on references the tool trains on
    it, about a minute a bundle on 2 cores)."""
    folder = zoo / ("scan-bundles" if owner_data is None else "scan-bundles-calibrated")
    folder.mkdir(exist_ok=True)
    key_path = ROOT / "benchmarks" / "out" / "bench-key.pem"
    if not key_path.exists():  # made by run_zoo.py where it ran first; a zoo built alone has none yet
        write_keypair(key_path, key_path.with_name("bench-key.pub.pem"))
    key = load_private_key(key_path)
    for seed in range(count):
        path = folder / f"fp-seed{seed:04d}.safetensors"
        if not path.exists():
            settings = FingerprintSettings(seed=seed, unique=False)  # the paper's search; calibrated by --data
            fingerprint(zoo / "target.onnx", path, signing_key=key, settings=settings, data_path=owner_data)
    for extra in sorted(folder.glob("*.safetensors"))[count:]:
        extra.unlink()
    return folder


def scan_process(hub: Path, bundles: Path, journal: Path, threads: str | None, *ray: str) -> float:
    """The whole ``scan`` process's wall time."""
    journal.unlink(missing_ok=True)
    started = time.perf_counter()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "ipguard_onnx",
            "scan",
            str(hub),
            "--fingerprints",
            str(bundles),
            "--output",
            str(journal),
            "--format",
            "json",
            *ray,
        ],
        capture_output=True,
        text=True,
        env=_environment(threads),
    )
    wall = time.perf_counter() - started
    if completed.returncode not in (0, 1, 3):
        raise SystemExit(f"scan failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return wall


CONFIGURATIONS: dict[str, tuple[str | None, ...]] = {  # OMP_NUM_THREADS sizes onnxruntime's threads;
    "one process": (None,),  # unset: every core. Ray sets it to each actor's CPUs (1) itself.
    "one process, every point": (None, "--every-point"),
    "one process, sequential": (None, "--sequential"),  # the sequential test's own stop; other verdicts
    "one process, 1 onnxruntime thread": ("1",),
    "Ray, 1 worker": (None, "--ray", "auto", "--workers", "1"),
    "Ray, 2 workers": (None, "--ray", "auto", "--workers", "2"),
}
"""Each an ``ipguard-onnx scan`` process: OMP_NUM_THREADS (None: unset), then extra options."""


def _environment(threads: str | None) -> dict[str, str]:
    environment = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    environment.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        environment["OMP_NUM_THREADS"] = threads
    return environment


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--bundles", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--no-resnet", action="store_true", help="skip the ResNet-18 cost measurement")
    parser.add_argument(
        "--calibrated", action="store_true", help="bundles made with the owner's data (they can accuse), not without"
    )
    parser.add_argument(
        "--configurations", nargs="*", default=list(CONFIGURATIONS), help=f"among: {'; '.join(CONFIGURATIONS)}"
    )
    args = parser.parse_args()
    zoo = args.out / f"{args.world}-seed{args.seed}"
    if not (zoo / "manifest.json").exists():
        raise SystemExit(f"no zoo at {zoo}: run benchmarks/run_zoo.py --worlds {args.world} first")
    owner_data = None
    if args.calibrated:  # the owner's split of the zoo's data, as run_zoo.py fingerprints with
        import numpy as np

        sys.path.insert(0, str(ROOT / "benchmarks"))
        import zoo as zoo_module

        owner_data = zoo / "owner-data.npy"
        np.save(owner_data, zoo_module.build(args.world, args.seed, args.out).train)
    bundles = _bundles(zoo, args.bundles, owner_data)
    work = Path(tempfile.mkdtemp(prefix="ipguard-scan-bench-"))
    hub = work / "hub"
    hub.mkdir()
    models = sorted(zoo.glob("*.onnx"))
    for copy in range(args.copies):
        for model in models:
            shutil.copy(model, hub / f"{model.stem}-{copy}.onnx")
    suspects = len(models) * args.copies
    print(
        f"{suspects} suspects ({len(models)} zoo models × {args.copies}) × {args.bundles} bundles of 100 points; "
        f"{os.cpu_count()} cores, python {sys.version.split()[0]}"
    )

    # The cost model's parts, in process: opening a suspect, and one bundle's audit of an open suspect.
    loaded = [load_bundle(path) for path in sorted(bundles.glob("*.safetensors"))]
    opened, audited = [], []
    for model in models:
        started = time.perf_counter()
        classifier = as_classifier(model, num_classes=loaded[0].num_classes)
        opened.append(time.perf_counter() - started)
        started = time.perf_counter()
        for bundle in loaded:
            audit(bundle, classifier)
        audited.append((time.perf_counter() - started) / len(loaded))
    session, per_bundle = statistics.median(opened), statistics.median(audited)
    print(
        f"per suspect: open an onnxruntime session {session * 1e3:.1f} ms (median over {len(models)} models); "
        f"per bundle: one 100-point audit {per_bundle * 1e3:.2f} ms "
        f"= {per_bundle / 100 * 1e6:.1f} µs per point"
    )

    configurations = {name: CONFIGURATIONS[name] for name in args.configurations}
    if "one process" not in configurations:
        raise SystemExit("--configurations must include 'one process' (the rates compare with it)")
    # Each configuration also scans a hub of one suspect: its wall time is the fixed cost (process, Ray and
    # its actors, bundles loaded), and (N − 1) / (wall_N − wall_1) the marginal rate once running.
    single = work / "single"
    single.mkdir()
    shutil.copy(models[0], single / "one.onnx")
    walls: dict[str, list[float]] = {name: [] for name in configurations}
    fixed: dict[str, list[float]] = {name: [] for name in configurations}
    for _ in range(args.repeats):
        for name, extra in configurations.items():
            threads, *ray = extra
            walls[name].append(scan_process(hub, bundles, work / f"{name}.jsonl", threads, *(str(a) for a in ray)))
            fixed[name].append(scan_process(single, bundles, work / f"{name}-1.jsonl", threads, *(str(a) for a in ray)))

    def marginal(name: str) -> float:
        return (suspects - 1) / max(statistics.median(walls[name]) - statistics.median(fixed[name]), 1e-9)

    base_wall, base_rate = statistics.median(walls["one process"]), marginal("one process")
    print(f"medians of {args.repeats} runs, each configuration its own process (configurations interleaved)")
    print(
        "| configuration | whole scan | suspects/s (whole) | vs one process | fixed cost (1-suspect scan) "
        "| suspects/s once running | vs one process |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, times in walls.items():
        wall, rate = statistics.median(times), marginal(name)
        print(
            f"| {name} | {wall:.1f} s | {suspects / wall:.1f} | {base_wall / wall:.2f}× "
            f"| {statistics.median(fixed[name]):.1f} s | {rate:.1f} | {rate / base_rate:.2f}× |"
        )
    for name in configurations:
        rows = [json.loads(line) for line in (work / f"{name}.jsonl").read_text().splitlines()]
        assert len(rows) == suspects * args.bundles, f"{name}: a pair is missing or duplicated"
        asked = sum(row["points_queried"] for row in rows) / max(1, sum(row["points_in_bundle"] for row in rows))
        verdicts = {v: sum(row["verdict"] == v for row in rows) for v in ("match", "no match", "inconclusive")}
        stopped = sum(bool(row["stopped_because"]) for row in rows)
        print(f"{name}: {asked:.1%} of the points asked; {stopped} pairs stopped early; verdicts {verdicts}")

    # The cost model for 10^4 suspects × 10^3 bundles × 100 points, from the in-process parts above, and
    # from a ResNet-18 (224×224, random weights: only its cost matters) for hubs of full-size image models.
    _cost_model(f"{args.world} zoo models", session, per_bundle)
    if not args.no_resnet:
        resnet_session, resnet_bundle = _resnet18_costs(args.out)
        print(
            f"ResNet-18 224×224 (1 intra-op thread): open {resnet_session * 1e3:.0f} ms; one 100-point audit "
            f"{resnet_bundle:.2f} s = {resnet_bundle * 10:.1f} ms per point"
        )
        _cost_model("ResNet-18 suspects", resnet_session, resnet_bundle)


def _cost_model(what: str, session: float, per_bundle: float) -> None:
    hub_suspects, hub_bundles = 10_000, 1_000
    core_seconds = hub_suspects * (session + hub_bundles * per_bundle)
    print(
        f"10^4 × 10^3, {what}: {hub_suspects} × ({session * 1e3:.1f} ms + {hub_bundles} × "
        f"{per_bundle * 1e3:.2f} ms) = {core_seconds / 3600:,.1f} core-hours; cores for one day: "
        f"{math.ceil(core_seconds / 86400)}; for one hour: {math.ceil(core_seconds / 3600)}"
    )


def _resnet18_costs(out: Path) -> tuple[float, float]:
    """Session-open time and one 100-point batch's inference time of a ResNet-18 on one thread."""
    import numpy as np
    import onnxruntime as ort

    path = out / "resnet18-random.onnx"
    if not path.exists():
        import torch
        import torchvision

        model = torchvision.models.resnet18(weights=None).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (torch.zeros(1, 3, 224, 224),),
                str(path),
                input_names=["x"],
                dynamic_axes={"x": {0: "n"}},
                dynamo=False,
            )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    opened = []
    for _ in range(3):
        started = time.perf_counter()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        opened.append(time.perf_counter() - started)
    batch = np.random.default_rng(0).random((100, 3, 224, 224), dtype=np.float32)
    session.run(None, {"x": batch[:2]})
    ran = []
    for _ in range(2):
        started = time.perf_counter()
        session.run(None, {"x": batch})
        ran.append(time.perf_counter() - started)
    return statistics.median(opened), min(ran)


if __name__ == "__main__":
    main()
