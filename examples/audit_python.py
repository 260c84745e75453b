"""Audit from Python: any callable that labels a numpy batch is a suspect.

    python examples/audit_python.py

Loads the published demo fingerprint (pinned to the published demo key), then audits
(1) a scikit-learn model through a plain function, and (2) an onnxruntime session of the quickstart's
demo model if examples/out/ holds it (run examples/quickstart.py first).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from ipguard_onnx import audit, load_bundle
from ipguard_onnx.keys import load_public_key

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    bundle = load_bundle(
        ROOT / "fingerprints" / "demo-target.fingerprint.safetensors",
        trusted_key=load_public_key(ROOT / "fingerprints" / "demo-key.pub.pem"),
    )
    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x / 16.0, y)

    def suspect(batch: np.ndarray) -> np.ndarray:
        """A label-only API: 8×8 points in [0, 1] → digit labels."""
        return model.predict(batch.reshape(len(batch), -1))

    result = audit(bundle, suspect)
    print(f"scikit-learn logistic regression: {result.verdict}, matching rate {result.matching_rate:.0%}")

    demo_model = ROOT / "examples" / "out" / "demo-target.onnx"
    if demo_model.exists():
        import onnxruntime as ort

        session = ort.InferenceSession(str(demo_model), providers=["CPUExecutionProvider"])
        result = audit(bundle, session)
        print(f"onnxruntime session of the demo model: {result.verdict}, matching rate {result.matching_rate:.0%}")


if __name__ == "__main__":
    main()
