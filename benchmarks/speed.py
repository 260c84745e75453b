"""Speed, side by side in one run (BENCHMARKS.md, "Speed").

    python benchmarks/speed.py                 # digits: batched vs one point at a time vs CW-L2
    python benchmarks/speed.py --scale         # also ResNet-20 (CIFAR-shaped) and ResNet-50 (ImageNet-shaped)

Each measurement runs in its own subprocess so its peak resident memory can be read. Random weights
are fine for timing the scale probe. On a machine with CUDA the scale probe also runs there.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve()


def _basic_block(channels_in: int, channels: int, stride: int) -> nn.Module:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(channels),
            )
            self.skip = (
                nn.Sequential(nn.Conv2d(channels_in, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))
                if stride != 1 or channels_in != channels
                else nn.Identity()
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.body(x) + self.skip(x))

    return Block()


def resnet20() -> nn.Module:
    """He et al.'s CIFAR ResNet-20 (3 stages × 3 basic blocks, 16/32/64 channels), the paper's CIFAR-10 target."""
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    channels_in = 16
    for channels, stride in ((16, 1), (32, 2), (64, 2)):
        for block in range(3):
            layers.append(_basic_block(channels_in, channels, stride if block == 0 else 1))
            channels_in = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def measure(kind: str, folder: Path, n: int, device: str) -> dict[str, object]:
    """One measurement (run in a subprocess): export the model, then time the requested search."""
    from ipguard_onnx import OnnxClassifier, demo
    from ipguard_onnx.search import CWL2, IPGuardSearch
    from ipguard_onnx.surrogate import Surrogate

    torch.manual_seed(0)
    if kind.startswith("digits"):
        x, y = demo.digits()
        model, sample = demo.train(demo.digits_cnn(seed=0), x, y, seed=0), x[:2]
    elif kind == "resnet20":
        model, sample = resnet20().eval(), np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    else:
        import torchvision

        model = torchvision.models.resnet50(weights=None).eval()
        sample = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)
    path = demo.export_onnx(model, sample, folder / f"{kind}.onnx")
    surrogate = Surrogate(OnnxClassifier(path, allow_spinning=False))
    surrogate.module.to(device)

    def logits(batch: torch.Tensor) -> torch.Tensor:
        return surrogate.scores_tensor(batch.to(device)).cpu()

    rng = np.random.default_rng(0)
    start = rng.random((n, *sample.shape[1:]), dtype=np.float32)
    with torch.no_grad():
        scores = logits(torch.from_numpy(start)).numpy()
    source, target = scores.argmax(1), scores.argmin(1)
    low, high = np.zeros(sample.shape[1:], np.float32), np.ones(sample.shape[1:], np.float32)
    started = time.perf_counter()
    if kind == "digits-loop":  # the paper's way: one point at a time, the same objective
        search = IPGuardSearch(k=3.0)
        outcomes = [
            search.run(logits, start[i : i + 1], source[i : i + 1], target[i : i + 1], low, high) for i in range(n)
        ]
        iterations = float(np.mean([o.iterations.mean() for o in outcomes]))
        hit = float(np.mean([o.hit_rate for o in outcomes]))
    elif kind == "digits-cw":
        outcome = CWL2(k=3.0).run(logits, start, source, target, low, high)
        iterations, hit = float(outcome.iterations.mean()), outcome.hit_rate
    else:  # random-weight ResNets have near-flat logits: cap the iterations and report the cost of each
        cap = 1000 if kind == "digits" else 30
        outcome = IPGuardSearch(k=3.0, max_iterations=cap).run(logits, start, source, target, low, high)
        iterations, hit = float(outcome.iterations.mean()), outcome.hit_rate
    seconds = time.perf_counter() - started
    return {
        "kind": kind,
        "device": device,
        "n": n,
        "seconds": seconds,
        "seconds_per_100": seconds * 100 / n,
        "seconds_per_iteration_per_100": seconds * 100 / n / max(1.0, float(outcome_steps(kind, iterations))),
        "mean_iterations": iterations,
        "hit_rate": hit,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def outcome_steps(kind: str, mean_iterations: float) -> float:
    """Adam steps the batch ran: every step moves the whole batch until its last point freezes."""
    return 30.0 if kind.startswith("resnet") else mean_iterations


def run(kind: str, n: int, device: str = "cpu") -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        completed = subprocess.run(
            [sys.executable, str(HERE), "--child", kind, "--n", str(n), "--device", device, "--folder", folder],
            capture_output=True,
            text=True,
            check=True,
        )
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.folder, args.n, args.device)))
        return
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"CUDA {'yes' if torch.cuda.is_available() else 'no'}"
    )
    batched, loop, cw = run("digits", 100), run("digits-loop", 100), run("digits-cw", 100)
    print(
        "\n| digits CNN, n = 100, k = 3, -RL | seconds | Adam iterations/point | points reaching j | ratio to batched |"
    )
    print("|---|---|---|---|---|")
    for name, row in (("IPGuard, batched", batched), ("IPGuard, one point at a time", loop), ("CW-L2, batched", cw)):
        ratio = float(row["seconds"]) / float(batched["seconds"])  # type: ignore[arg-type]
        print(
            f"| {name} | {row['seconds']:.2f} | {row['mean_iterations']:.1f} | {row['hit_rate']:.2f} | {ratio:.1f}× |"
        )
    if args.scale:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        print(
            "\n| model | device | n measured | seconds per 100 points | Adam iterations/point | "
            "seconds per iteration per 100 points | peak RSS (MB) |"
        )
        print("|---|---|---|---|---|---|---|")
        for kind, n in (("digits", 100), ("resnet20", 100), ("resnet50", 10)):
            for device in devices:
                row = run(kind, n, device)
                print(
                    f"| {kind} | {device} | {n} | {row['seconds_per_100']:.1f} | {row['mean_iterations']:.1f} | "
                    f"{row['seconds_per_iteration_per_100']:.3f} | {row['peak_rss_mb']:.0f} |"
                )


if __name__ == "__main__":
    main()
