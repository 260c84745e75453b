"""TPR at 1 % and 5 % FPR per copy family, from the bundles an earlier ``run_zoo.py`` left in the zoo folders.

    python benchmarks/by_family.py [--worlds digits wine] [--seeds 0 1 2] [--configs "ipguard-RL k=1" ...]

For every world, seed and setting (the setting's bundle ``fp-<setting>.safetensors`` in the zoo folder), audit
every suspect again and count, per family, the share of its copies that a threshold admitting at most 1 % (5 %)
of the 20 independent models verifies — the threshold is set per seed, on that seed's negatives, as the
newer literature does; families pool their copies over seeds. Also the points (= queries) per verification.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ipguard_onnx import Bundle, audit, load_bundle  # noqa: E402
from ipguard_onnx.evaluate import evaluate, tpr_at_fpr  # noqa: E402
from ipguard_onnx.stats import CALIBRATION_MARGIN, binomial_tail, combined_p_value  # noqa: E402

FAMILY_ORDER = (
    "FTLL",
    "FTAL",
    "RTLL",
    "RTAL",
    "weight pruning",
    "filter pruning",
    "int8-dynamic",
    "int8-static",
    "float16",
    "distillation",
    "label extraction 1k",
    "label extraction 1k, other arch",
    "label extraction 10k",
    "probability extraction",
    "adversarial label extraction",
    "extraction + fine-tuning",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worlds", nargs="+", default=["digits", "wine"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--configs", nargs="*", default=[], help="settings as run_zoo.py labels them")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument(
        "--calibrated-parts",
        action="store_true",
        help="rank bundles tested in parts by their combined p-value with each part's q0 calibrated as "
        "`calibrate` would on the seed's independent models (highest part matching rate + 0.05)",
    )
    parser.add_argument(
        "--mistake-quartiles",
        action="store_true",
        help="instead: how often each group repeats the target's mistakes on owner-labelled.npz, per quartile "
        "of the target's confidence in them (most confident first)",
    )
    args = parser.parse_args()
    if args.mistake_quartiles:
        for world in args.worlds:
            for seed in args.seeds:
                _mistake_quartiles(args.out / f"{world}-seed{seed}", f"{world} seed {seed}")
        return
    for world in args.worlds:
        # (config, family) -> [verified at 1 %, verified at 5 %] per copy; config -> points per verification
        verified: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        points: dict[str, list[int]] = defaultdict(list)
        for seed in args.seeds:
            folder = args.out / f"{world}-seed{seed}"
            entries = json.loads((folder / "manifest.json").read_text())["suspects"]
            families = {path: family for path, _, family in entries}
            for config in args.configs:
                bundle_path = folder / f"fp-{config.replace(' ', '_')}.safetensors"
                if not bundle_path.exists():
                    continue
                bundle = load_bundle(bundle_path)
                points[config].append(len(bundle.points))
                if args.calibrated_parts and bundle.parts:
                    scores = _calibrated_evidence(bundle, folder, entries)
                else:
                    rows = evaluate(bundle, [(folder / path, group) for path, group, _ in entries]).rows
                    scores = {row.suspect: row.copy_score for row in rows}
                groups = {path: group for path, group, _ in entries}
                negatives = [score for suspect, score in scores.items() if groups[suspect] == "negative"]
                for suspect, score in scores.items():
                    if groups[suspect] == "negative":
                        continue
                    at = [tpr_at_fpr([score], negatives, fpr) for fpr in (0.01, 0.05)]
                    verified[(config, families[suspect])].append((at[0], at[1]))
        present = [f for f in FAMILY_ORDER if any((c, f) in verified for c in args.configs)]
        configs = [c for c in args.configs if points[c]]
        print(f"\n### {world}: TPR at 1 % / 5 % FPR per family ({len(args.seeds)} seeds; copies pooled)\n")
        print("| family | " + " | ".join(configs) + " |\n|---|" + "---|" * len(configs))
        for family in present:
            cells = []
            for config in configs:
                marks = verified.get((config, family), [])
                cells.append(
                    f"{sum(m[0] for m in marks) / len(marks):.2f} / {sum(m[1] for m in marks) / len(marks):.2f}"
                    if marks
                    else "–"
                )
            print(f"| {family} ({len(verified.get((configs[0], family), []))}) | " + " | ".join(cells) + " |")
        print(
            "| points (= queries) per verification | "
            + " | ".join(
                f"{min(points[c])}–{max(points[c])}" if min(points[c]) != max(points[c]) else str(points[c][0])
                for c in configs
            )
            + " |"
        )


def _calibrated_evidence(bundle: Bundle, folder: Path, entries: list[list[str]]) -> dict[str, float]:
    """−log10 of the combined p-value per suspect, each part's q0 = its highest independent match + 0.05."""
    parts = {path: audit(bundle, folder / path).parts for path, _, _ in entries}
    negatives = [parts[path] for path, group, _ in entries if group == "negative"]
    nulls = [
        min(0.999, max(found[index].matching_rate for found in negatives) + CALIBRATION_MARGIN)
        for index in range(len(bundle.parts))
    ]
    evidence = {}
    for path, found in parts.items():
        p_values = [binomial_tail(part.matched, part.answered, null) for part, null in zip(found, nulls, strict=True)]
        evidence[path] = -math.log10(max(combined_p_value(p_values), 1e-300))
    return evidence


def _mistake_quartiles(folder: Path, name: str) -> None:
    """Share of the target's mistakes on the owner's labelled data each group repeats, per confidence quartile."""
    import numpy as np

    from ipguard_onnx import OnnxClassifier

    owner = np.load(folder / "owner-labelled.npz")
    target = OnnxClassifier(folder / "target.onnx")
    scores = target.scores(owner["x"])
    said = scores.argmax(axis=1)
    wrong = np.flatnonzero(said != owner["y"])
    top = np.sort(scores[wrong], axis=1)
    wrong = wrong[np.argsort(-(top[:, -1] - top[:, -2]), kind="stable")]  # most confident first
    quarter = max(len(wrong) // 4, 1)
    entries = json.loads((folder / "manifest.json").read_text())["suspects"]
    repeats: dict[str, list[np.ndarray]] = defaultdict(list)
    for path, group, _ in entries:
        suspect = OnnxClassifier(folder / path)
        answers = suspect.answer(owner["x"][wrong].reshape(len(wrong), *suspect.input_spec.sample_shape))
        repeats[group].append(np.asarray(answers.labels).astype(np.int64) == said[wrong])
    cells = {
        group: [float(np.stack(rows)[:, q * quarter : (q + 1) * quarter].mean()) for q in range(4)]
        for group, rows in repeats.items()
    }
    print(
        f"{name}: {len(wrong)} mistakes; quartiles most confident first: "
        + "; ".join(f"{group} " + " / ".join(f"{v:.2f}" for v in values) for group, values in cells.items())
    )


if __name__ == "__main__":
    main()
