"""Active protection measured (issue 7): licensee copies of the zoo's digits targets, attacked.

    python benchmarks/licensing.py [--seeds 0 1 2] [--licensees 3]

Per zoo seed (benchmarks/zoo.py: target trained on the owner's split A, accuracy on test split C), issue
licensee copies with split A (labels included), then measure per copy: clean accuracy change on B ∪ C
(988 inputs the target never saw; C alone has 180, where one input is 0.56 points); the
share of its own held-out triggers it answers (authentication), of the other licensees' and of 5 forged
trigger sets (random pattern and derangement, no owner key); after a fine-tuning attack (all layers,
5 epochs, lr 5e-4, on split B with true labels — data the owner never saw) and after magnitude pruning
(deepest 10 % step within 3 points of accuracy): its trigger rate and whether the owner's passive
fingerprint (default plain IPGuard -RL, k = 3) still matches.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zoo as zoo_module  # noqa: E402

from ipguard_onnx import audit, fingerprint, load_bundle  # noqa: E402
from ipguard_onnx.bundle import save_bundle  # noqa: E402
from ipguard_onnx.demo import digits  # noqa: E402
from ipguard_onnx.fingerprint import FingerprintSettings  # noqa: E402
from ipguard_onnx.keys import load_private_key, write_keypair  # noqa: E402
from ipguard_onnx.licensing import _export, issue, licensee_pattern, stamp  # noqa: E402
from ipguard_onnx.models import OnnxClassifier  # noqa: E402
from ipguard_onnx.surrogate import Surrogate  # noqa: E402
from ipguard_onnx.training import magnitude_pruned, train  # noqa: E402

NAMES = ("acme", "globex", "initech", "umbrella", "hooli")


def _accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    return float((OnnxClassifier(path, allow_spinning=False).predict(x) == y).mean())


def _attacked(path: Path, out: Path, kind: str, xb: np.ndarray, yb: np.ndarray, xc: np.ndarray, yc: np.ndarray) -> Path:
    module = copy.deepcopy(Surrogate(OnnxClassifier(path, allow_spinning=False)).module)
    if kind == "fine-tuned":
        attacked = train(module, xb, yb, seed=7, epochs=5, learning_rate=5e-4)
    else:
        base = _accuracy(path, xc, yc)
        attacked = module
        for step in range(1, 10):
            candidate = magnitude_pruned(module, step / 10)
            _export(candidate, xb[:2], out, "input")
            if base - _accuracy(out, xc, yc) > 0.03:
                break
            attacked = candidate
    _export(attacked, xb[:2], out, "input")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--licensees", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ipguard-licensing-"))
    pair = write_keypair(work / "owner.pem", work / "owner.pub.pem")
    key = load_private_key(pair.private_path)
    rows = []
    x, y = digits()
    for seed in args.seeds:
        zoo = zoo_module.build("digits", seed, args.out)
        xa, ya, xb, yb, xc, yc = zoo_module._split(x, y, seed)
        xbc, ybc = np.concatenate([xb, xc]), np.concatenate([yb, yc])  # 988 inputs the owner never trained on
        data = work / f"owner-{seed}.npz"
        np.savez(data, x=xa, y=ya)
        passive = work / f"passive-{seed}.safetensors"
        fingerprint(zoo.target, passive, signing_key=key, settings=FingerprintSettings(seed=seed, unique=False))
        copies = [
            issue(
                zoo.target,
                licensee=name,
                data_path=data,
                registry=work / f"registry-{seed}",
                output_path=work / f"{seed}-{name}.onnx",
                signing_key=key,
            )
            for name in NAMES[: args.licensees]
        ]
        for issued in copies:
            bundle = load_bundle(issued.registry_bundle)
            others = [audit(o.registry_bundle, issued.model_path).matching_rate for o in copies if o is not issued]
            forged = []
            for attempt in range(5):
                guess = np.random.default_rng(1000 * seed + attempt).bytes(32)
                mask, values, derangement = licensee_pattern(
                    guess, tuple(xa.shape[1:]), bundle.domain_low, bundle.domain_high, 10
                )
                rows_ = np.random.default_rng(attempt).integers(0, len(xc), 100)
                tensors = {
                    "points": stamp(xc[rows_], mask, values),
                    "labels": derangement[yc[rows_]],
                    "domain_low": bundle.domain_low,
                    "domain_high": bundle.domain_high,
                }
                fake = work / "forged.safetensors"
                save_bundle(fake, tensors, bundle.record, key)
                forged.append(audit(fake, issued.model_path).matching_rate)
            row = {
                "seed": seed,
                "licensee": issued.licensee,
                "accuracy_change": 100 * (_accuracy(issued.model_path, xbc, ybc) - _accuracy(zoo.target, xbc, ybc)),
                "own": audit(bundle, issued.model_path).matching_rate,
                "threshold": bundle.threshold,
                "others_max": max(others),
                "forged_max": max(forged),
                "original": audit(bundle, zoo.target).matching_rate,
                "passive_copy": audit(passive, issued.model_path).matching_rate,
                "epochs": issued.epochs,
                "seconds": issued.seconds,
            }
            for attack in ("fine-tuned", "pruned"):
                path = _attacked(
                    issued.model_path, work / f"{seed}-{issued.licensee}-{attack}.onnx", attack, xb, yb, xc, yc
                )
                row[f"{attack}_own"] = audit(bundle, path).matching_rate
                row[f"{attack}_passive"] = audit(passive, path).matching_rate
                row[f"{attack}_accuracy"] = 100 * _accuracy(path, xc, yc)
            rows.append(row)
            print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    print("\n| measure | mean | min | max |\n|---|---|---|---|")
    for key_name in (
        "accuracy_change",
        "own",
        "others_max",
        "forged_max",
        "original",
        "passive_copy",
        "fine-tuned_own",
        "fine-tuned_passive",
        "pruned_own",
        "pruned_passive",
        "seconds",
    ):
        values = [r[key_name] for r in rows]
        print(f"| {key_name} | {statistics.mean(values):.3f} | {min(values):.3f} | {max(values):.3f} |")
    passed = {a: sum(r[f"{a}_own"] >= r["threshold"] for r in rows) for a in ("fine-tuned", "pruned")}
    thresholds = sorted({r["threshold"] for r in rows})
    print(
        f"\n{len(rows)} copies; own triggers matched after fine-tuning: {passed['fine-tuned']}/{len(rows)}, "
        f"after pruning: {passed['pruned']}/{len(rows)}; thresholds {thresholds}"
    )


if __name__ == "__main__":
    main()
