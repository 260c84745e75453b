"""The default null agreement, justified from the zoo (BENCHMARKS.md, "Strength of evidence").

    python benchmarks/evidence.py [benchmarks/out/results.json]

Per world, setting and seed: the highest matching rate of any independent model, q0 = that + 0.05 (as
``calibrate`` sets it), the threshold for a false-accusation rate of 1e-6 with 100 points, the lowest
copy (distillation excluded) and how many copy families have every copy at or above the threshold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ipguard_onnx.stats import CALIBRATION_MARGIN, threshold_for

NEGATIVES = ("same architecture", "other architecture", "random forest")
SETTINGS = ("ipguard-RL k=3", "ipguard-TR unique k=1")


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "out" / "results.json"
    rows = json.loads(path.read_text())
    print(
        "| world | setting | seed | highest independent | calibrated q0 | threshold for 10⁻⁶ | lowest copy "
        "| copy families at or above it |\n|---|---|---|---|---|---|---|---|"
    )
    for world in (w for w in ("digits", "wine", "cancer") if any(r["world"] == w for r in rows)):
        for config in SETTINGS:
            for row in (r for r in rows if r["world"] == world and r["config"] == config):
                copies = [f for f in row["families"] if f not in NEGATIVES and f != "distillation"]
                highest = max(row["family_max"][f] for f in NEGATIVES)
                null = min(0.999, highest + CALIBRATION_MARGIN)
                threshold = threshold_for(100, null, 1e-6)
                lowest = min(row["family_min"][f] for f in copies)
                passing = sum(row["family_min"][f] >= threshold for f in copies) if threshold is not None else 0
                shown = "—" if threshold is None else f"{threshold:.2f}"
                print(
                    f"| {world} | {config} | {row['seed']} | {highest:.2f} | {null:.2f} | {shown} | {lowest:.2f} "
                    f"| {passing}/{len(copies)} |"
                )


if __name__ == "__main__":
    main()
