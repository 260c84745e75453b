"""Which ONNX→PyTorch converter can build the surrogate? (docs/reference/install.md "Why these dependencies")

    pip install onnx2torch==1.5.15   # optional: measured beside onnx2pytorch when installed
    python benchmarks/converters.py

For each model exported by today's torch.onnx.export (dynamo, opset 20), and for an onnxruntime
dynamic-int8 copy, tries each converter as is and, for onnx2torch, after the usual workaround
(down-convert to opset 17 and drop Reshape's allowzero). Reports conversion, max |score difference|
against onnxruntime on 100 random points, and the time of 100 forward+backward passes on them.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from ipguard_onnx import demo

warnings.filterwarnings("ignore")


def onnx2pytorch_convert(model: onnx.ModelProto) -> nn.Module:
    from onnx2pytorch import ConvertModel

    return ConvertModel(model, experimental=True)


def onnx2torch_convert(model: onnx.ModelProto) -> nn.Module:
    from onnx2torch import convert

    return convert(model)


def onnx2torch_workaround(model: onnx.ModelProto) -> nn.Module:
    from onnx import version_converter

    lowered = version_converter.convert_version(model, 17)
    for node in lowered.graph.node:
        for attribute in list(node.attribute):
            if attribute.name == "allowzero":
                node.attribute.remove(attribute)
    return onnx2torch_convert(lowered)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="ipguard-conv-"))
    x, y = demo.digits()
    cnn = demo.train(demo.digits_cnn(seed=0), x, y, seed=0, epochs=3)
    models = {
        "digits CNN (opset 20)": demo.export_onnx(cnn, x, folder / "cnn.onnx"),
        "digits CNN, fixed batch 1": demo.export_onnx(cnn, x, folder / "cnn_b1.onnx", dynamic_batch=False),
        "digits CNN + softmax": demo.export_onnx(nn.Sequential(cnn, nn.Softmax(1)), x, folder / "cnn_sm.onnx"),
        "digits MLP": demo.export_onnx(
            demo.train(demo.digits_mlp(seed=1), x, y, seed=1, epochs=3), x, folder / "mlp.onnx"
        ),
    }
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(models["digits CNN (opset 20)"]), str(folder / "pre.onnx"))
    quantize_dynamic(str(folder / "pre.onnx"), str(folder / "int8.onnx"), weight_type=QuantType.QInt8)
    models["digits CNN, dynamic int8"] = folder / "int8.onnx"

    converters: dict[str, Callable[[onnx.ModelProto], nn.Module]] = {"onnx2pytorch": onnx2pytorch_convert}
    try:
        importlib.metadata.version("onnx2torch")
        converters["onnx2torch"] = onnx2torch_convert
        converters["onnx2torch (opset 17 + no allowzero)"] = onnx2torch_workaround
    except importlib.metadata.PackageNotFoundError:
        print("onnx2torch not installed: measuring onnx2pytorch only")
    for name in ("onnx2pytorch", "onnx2torch"):
        try:
            print(f"{name} {importlib.metadata.version(name)}", end="; ")
        except importlib.metadata.PackageNotFoundError:
            pass
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}\n")
    batch = np.random.default_rng(0).random((100, 1, 8, 8), dtype=np.float32)
    print("| model | converter | converts | max abs diff | 100 fwd+bwd (s) |\n|---|---|---|---|---|")
    for model_name, path in models.items():
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = batch if "MLP" not in model_name else batch
        if "fixed batch" in model_name:
            reference = np.concatenate(
                [session.run(None, {session.get_inputs()[0].name: row[None]})[0] for row in feed]
            )
        else:
            reference = session.run(None, {session.get_inputs()[0].name: feed})[0]
        for converter_name, convert in converters.items():
            try:
                module = convert(onnx.load(str(path))).eval()
                inputs = torch.from_numpy(feed).requires_grad_(True)
                output = module(inputs)
                difference = float(np.abs(output.detach().numpy() - reference).max())
                started = time.perf_counter()
                for _ in range(100):
                    module(inputs).sum().backward()
                seconds = time.perf_counter() - started
                print(f"| {model_name} | {converter_name} | yes | {difference:.1e} | {seconds:.2f} |")
            except Exception as exc:  # report, do not stop: this is a survey
                print(f"| {model_name} | {converter_name} | no: {type(exc).__name__}: {str(exc)[:70]} | | |")


if __name__ == "__main__":
    main()
