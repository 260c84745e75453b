"""Quickstart: protect a digits classifier, then audit a pirated and an innocent copy.

    python examples/quickstart.py            # writes everything to examples/out/

1. trains the demo CNN on scikit-learn's bundled digits and exports it to ONNX (the model you ship);
2. makes a pirated copy (fine-tuned, then 20 % of its weights pruned) and an innocent model
   (same task, trained independently);
3. trains three more independent models (two CNNs from other seeds, one MLP) that the owner knows are
   not copies, to calibrate the fingerprint's null agreement (how often an independent model agrees);
4. runs the real CLI: ``keygen``, ``fingerprint``, ``calibrate`` and ``audit`` on both suspects, printing
   the reports with their p-values.

Exit status 0 when the pirated copy matches and the innocent one does not.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from ipguard_onnx import demo

HERE = Path(__file__).resolve().parent


def cli(*arguments: object) -> int:
    command = [sys.executable, "-m", "ipguard_onnx", *map(str, arguments)]
    print(f"\n$ ipguard-onnx {' '.join(map(str, arguments))}", flush=True)
    return subprocess.run(command).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "out", help="folder for models, key and bundle")
    parser.add_argument("--publish", action="store_true", help="also copy the bundle and public key to fingerprints/")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    print("training the demo model, two suspects and three independent models on scikit-learn's digits ...", flush=True)
    x, y = demo.digits()
    target = demo.train(demo.digits_cnn(seed=0), x, y, seed=0)
    pirated = demo.pruned(demo.fine_tuned(target, x, y, seed=1), 0.2)
    innocent = demo.train(demo.digits_cnn(seed=2024), x, y, seed=2024)
    for name, model in [("target", target), ("pirated", pirated), ("innocent", innocent)]:
        print(f"  {name:9s} accuracy {demo.accuracy(model, x, y):.1%}")
    demo.export_onnx(target, x, out / "demo-target.onnx")
    demo.export_onnx(pirated, x, out / "pirated.onnx")
    demo.export_onnx(innocent, x, out / "innocent.onnx")
    independent = out / "independent"
    independent.mkdir(exist_ok=True)
    for index, model in enumerate(
        [demo.digits_cnn(seed=3001), demo.digits_cnn(seed=3002, width=8), demo.digits_mlp(seed=3003)]
    ):
        demo.export_onnx(demo.train(model, x, y, seed=3001 + index), x, independent / f"independent-{index}.onnx")

    key = out / "demo-key.pem"
    if not key.exists() and cli("keygen", "--out", key) != 0:
        return 2
    bundle = out / "demo-target.fingerprint.safetensors"
    if cli("fingerprint", out / "demo-target.onnx", "--key", key, "-o", bundle, "--seed", 0) != 0:
        return 2
    if cli("calibrate", bundle, "--negative", independent, "--key", key) != 0:
        return 2
    pirated_code = cli(
        "audit", out / "pirated.onnx", "--fingerprint", bundle, "--trusted-key", out / "demo-key.pub.pem"
    )
    innocent_code = cli(
        "audit", out / "innocent.onnx", "--fingerprint", bundle, "--trusted-key", out / "demo-key.pub.pem"
    )
    print(f"\npirated copy: exit {pirated_code} (1 = match); innocent model: exit {innocent_code} (0 = no match)")
    if args.publish:
        published = HERE.parent / "fingerprints"
        published.mkdir(exist_ok=True)
        shutil.copy(bundle, published / bundle.name)
        shutil.copy(out / "demo-key.pub.pem", published / "demo-key.pub.pem")
        print(f"published {bundle.name} and demo-key.pub.pem to {published}")
    return 0 if (pirated_code, innocent_code) == (1, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
