"""Remote prediction APIs: a real HTTP server on 127.0.0.1 serving an ONNX model, well and badly."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ipguard_onnx import UsageError, audit, load_bundle
from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.models import HttpClassifier

from ..conftest import RunCli, Zoo
from ..http_server import Behaviour, PredictionServer


@pytest.mark.parametrize("answer", ["scores", "labels"])
@pytest.mark.parametrize("protocol", ["oip", "simple"])
def test_remote_copy_matches_like_the_file(zoo: Zoo, protocol: str, answer: str) -> None:
    with PredictionServer(zoo.fine_tuned, Behaviour(answer=answer)) as server:
        url = f"{server.base}/v2/models/digits/infer" if protocol == "oip" else f"{server.base}/predict"
        remote = HttpClassifier(url, batch_size=16)
        result = audit(zoo.bundle, remote)
    local = audit(zoo.bundle, zoo.fine_tuned)
    assert result.matching_rate == local.matching_rate and result.matched
    assert result.points_skipped == 0
    assert remote.protocol == protocol
    assert remote.queries_sent == _points(zoo)
    assert result.suspect_details["endpoint"] == url


def _points(zoo: Zoo) -> int:
    return len(load_bundle(zoo.bundle).points)


def test_oip_reads_input_name_and_shape_from_metadata(zoo: Zoo) -> None:
    with PredictionServer(zoo.target) as server:
        remote = HttpClassifier(f"{server.base}/v2/models/digits")
    assert remote.input_spec is not None
    assert remote.input_spec.name == "input" and remote.input_spec.sample_shape == (1, 8, 8)
    assert remote.infer_url.endswith("/v2/models/digits/infer")


def test_transient_failures_are_retried(zoo: Zoo) -> None:
    behaviour = Behaviour(fail_every=3)
    with PredictionServer(zoo.target, behaviour) as server:
        remote = HttpClassifier(f"{server.base}/predict", batch_size=10, retries=2, backoff=0.01)
        result = audit(zoo.bundle, remote)
    assert result.points_skipped == 0 and result.matching_rate == 1.0
    assert behaviour.requests > 10  # some batches needed a second try


def test_failures_without_retries_are_skipped_with_their_reason(zoo: Zoo) -> None:
    behaviour = Behaviour(fail_every=5)
    with PredictionServer(zoo.target, behaviour) as server:
        result = audit(zoo.bundle, HttpClassifier(f"{server.base}/predict", batch_size=10, retries=0))
    sizes = [min(10, _points(zoo) - start) for start in range(0, _points(zoo), 10)]
    failed = sum(size for index, size in enumerate(sizes) if (index + 1) % 5 == 0)  # every fifth request
    assert result.points_skipped == failed
    assert result.skipped_reasons == {'HTTP 500: {"error": "injected failure"}': failed}
    assert result.matching_rate == 1.0  # over the answered points only
    assert result.verdict == "match"


def test_a_server_that_hangs_gives_inconclusive(zoo: Zoo) -> None:
    with PredictionServer(zoo.target, Behaviour(delay=1.5)) as server:
        started = time.perf_counter()
        result = audit(
            zoo.bundle, HttpClassifier(f"{server.base}/predict", batch_size=50, timeout=0.3, retries=1, backoff=0.01)
        )
        elapsed = time.perf_counter() - started
    assert result.verdict == "inconclusive" and result.points_skipped == _points(zoo)
    assert result.skipped_reasons == {"timeout after 0.3 s": _points(zoo)}
    assert elapsed < 8  # bounded: 4 batches × 2 attempts × 0.3 s, not the server's 1.5 s each


def test_non_json_answers_are_skipped(zoo: Zoo) -> None:
    with PredictionServer(zoo.target, Behaviour(not_json=True)) as server:
        result = audit(zoo.bundle, HttpClassifier(f"{server.base}/predict"))
    assert result.verdict == "inconclusive"
    assert result.skipped_reasons == {"malformed response: not JSON": _points(zoo)}


def test_a_server_switching_answer_formats_is_refused(zoo: Zoo) -> None:
    from ipguard_onnx import AuditError

    with PredictionServer(zoo.target, Behaviour(answer="alternate")) as server:
        with pytest.raises(AuditError, match="some batches with labels and others with scores"):
            audit(zoo.bundle, HttpClassifier(f"{server.base}/predict", batch_size=50))


def test_query_budget_is_respected(zoo: Zoo) -> None:
    behaviour = Behaviour()
    with PredictionServer(zoo.target, behaviour) as server:
        budget = _points(zoo) - 10
        remote = HttpClassifier(f"{server.base}/predict", batch_size=32, max_queries=budget)
        result = audit(zoo.bundle, remote)
    assert remote.queries_sent == budget
    assert result.points_skipped == 10 and result.points_matched == budget
    assert result.skipped_reasons == {f"query budget (--max-queries {budget}) exhausted": 10}
    assert result.verdict == "match"


def test_unreachable_endpoint_is_skipped(zoo: Zoo) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = audit(zoo.bundle, HttpClassifier(f"http://127.0.0.1:{port}/predict", retries=0))
    assert result.verdict == "inconclusive"
    (reason,) = result.skipped_reasons
    assert reason.startswith("connection failed")


def test_bad_endpoint_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="http"):
        HttpClassifier("ftp://example.com/model")
    with pytest.raises(UsageError, match="positive"):
        HttpClassifier("http://127.0.0.1:9/predict", batch_size=0)


def test_cli_endpoint_with_token_from_the_environment(zoo: Zoo, run_cli: RunCli) -> None:
    with PredictionServer(zoo.target, Behaviour(token="s3cret")) as server:
        url = f"{server.base}/v2/models/digits/infer"
        denied = run_cli("audit", "--endpoint", url, "-f", zoo.bundle, "--format", "json", "--retries", "0")
        allowed = run_cli(
            "audit", "--endpoint", url, "-f", zoo.bundle, "--format", "json", env={"IPGUARD_ONNX_AUTH_TOKEN": "s3cret"}
        )
    assert denied.code == ExitCode.input, denied.stderr  # every point skipped: inconclusive
    (row,) = json.loads(denied.stdout)["results"]
    assert row["verdict"] == "inconclusive"
    assert row["skipped_reasons"] == {'HTTP 401: {"error": "unauthorized"}': _points(zoo)}
    assert allowed.code == ExitCode.match, allowed.stderr
    assert json.loads(allowed.stdout)["results"][0]["matching_rate"] == 1.0


def test_cli_endpoint_of_an_independent_model(zoo: Zoo, run_cli: RunCli) -> None:
    with PredictionServer(zoo.independent) as server:
        result = run_cli("audit", "--endpoint", f"{server.base}/predict", "-f", zoo.bundle)
    assert result.code == ExitCode.no_match, result.stderr
    assert "NO MATCH" in result.stdout


MLSERVER_RUNTIME = """
import numpy as np, onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        self.session = ort.InferenceSession(self.settings.parameters.uri, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        batch = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        scores = self.session.run(None, {self.input_name: batch})[0]
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output("logits", scores)])
"""


@pytest.mark.integration
def test_against_a_real_mlserver(zoo: Zoo, tmp_path: Path) -> None:
    """Seldon MLServer 1.7.1 serving the fine-tuned copy through a small onnxruntime runtime.

    Needs ``mlserver`` on PATH or IPGUARD_MLSERVER pointing at it (a separate venv: `make integration`).
    """
    mlserver = os.environ.get("IPGUARD_MLSERVER") or shutil.which("mlserver")
    if not mlserver:
        pytest.skip("mlserver is not installed (set IPGUARD_MLSERVER=/path/to/venv/bin/mlserver)")
    folder = tmp_path / "serve"
    folder.mkdir()
    shutil.copy(zoo.fine_tuned, folder / "model.onnx")
    (folder / "runtime.py").write_text(MLSERVER_RUNTIME)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # parallel_workers 0: MLServer 1.7.1's worker pool dies at start under uvloop 0.22+ ("no current event loop").
    settings = {"http_port": port, "grpc_port": 0, "metrics_port": 0, "host": "127.0.0.1", "parallel_workers": 0}
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "digits",
                "implementation": "runtime.OnnxRuntime",
                "parameters": {"uri": str(folder / "model.onnx")},
            }
        )
    )
    process = subprocess.Popen(
        [mlserver, "start", str(folder)], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        import urllib.request

        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/digits/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("MLServer did not become ready")
            time.sleep(0.5)
        remote = HttpClassifier(f"http://127.0.0.1:{port}/v2/models/digits/infer", batch_size=25)
        result = audit(load_bundle(zoo.bundle), remote)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert result.points_skipped == 0
    assert result.matching_rate == audit(zoo.bundle, zoo.fine_tuned).matching_rate
