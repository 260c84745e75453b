"""The GPU path, where a CUDA device exists (``pytest -m gpu``; deselected by default, never skipped silently in
a GPU run): onnxruntime-gpu's CUDA provider answers like the CPU, and the speed benchmark runs on CUDA."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ipguard_onnx.models import OnnxClassifier

from .conftest import Zoo

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.gpu


def test_the_cuda_provider_answers_like_the_cpu(zoo: Zoo) -> None:
    import onnxruntime as ort

    assert "CUDAExecutionProvider" in ort.get_available_providers(), "install the [gpu] extra on a CUDA machine"
    cuda = OnnxClassifier(zoo.target, providers="cuda")
    cpu = OnnxClassifier(zoo.target, providers="cpu")
    assert cuda.providers[0] == "CUDAExecutionProvider"
    np.testing.assert_array_equal(cuda.predict(zoo.x[:500]), cpu.predict(zoo.x[:500]))


def test_the_speed_benchmark_runs_the_search_on_cuda(tmp_path: Path) -> None:
    import torch

    assert torch.cuda.is_available(), "torch sees no CUDA device"
    command = [sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--child", "digits", "--n", "100"]
    command += ["--device", "cuda", "--folder", str(tmp_path)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["device"] == "cuda" and result["hit_rate"] > 0.5
