"""Every failure path a user can reach from the command line, in one place (foolbox's test_attacks_raise).

Each case runs the real CLI in-process on real files and must give: its documented exit code, one
line on stderr that says what to do (no traceback), nothing on stdout, and no change to any file
the user had. The cases that need a costly model (a signed licensee copy) build a cheap stand-in.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ipguard_onnx.exit_codes import ExitCode
from ipguard_onnx.keys import write_keypair

from .conftest import RunCli, Zoo, one_line_error

Arguments = Callable[[Zoo, Path], list[object]]


def _tampered(zoo: Zoo, tmp_path: Path) -> Path:
    data = bytearray(zoo.bundle.read_bytes())
    data[-3] ^= 0x10  # inside the points' bytes
    path = tmp_path / "tampered.safetensors"
    path.write_bytes(bytes(data))
    return path


def _not_onnx(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_text("definitely not a model")
    return path


def _other_key(tmp_path: Path, public: bool = True) -> Path:
    pair = write_keypair(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    return pair.public_path if public else pair.private_path


def _vector_model(tmp_path: Path) -> Path:
    weights = numpy_helper.from_array(np.ones((5, 10), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "vector",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "vector.onnx"
    onnx.save(model, path)
    return path


def _forest(zoo: Zoo, tmp_path: Path) -> Path:
    """A small random forest exported by skl2onnx: a TreeEnsembleClassifier, which has no gradient."""
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    flat = zoo.x.reshape(len(zoo.x), -1)
    path = tmp_path / "forest.onnx"
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(flat, zoo.y)
    path.write_bytes(to_onnx(model, flat[:1]).SerializeToString())
    return path


def _linear_zipmap(tmp_path: Path) -> Path:
    """A binary logistic regression behind a ZipMap (no gradient): class 1 wherever the first feature > 0."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    path = tmp_path / "linear.onnx"
    path.write_bytes(to_onnx(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), x[:1]).SerializeToString())
    return path


def _labels_only(tmp_path: Path) -> Path:
    """The logistic regression behind a ZipMap, with its label output only."""
    import onnx

    graph = onnx.load(_linear_zipmap(tmp_path))
    kept = [output for output in graph.graph.output if output.name == "output_label"]
    del graph.graph.output[:]
    graph.graph.output.extend(kept)
    path = tmp_path / "labels-only.onnx"
    onnx.save(graph, path)
    return path


def _bundle_copy(zoo: Zoo, tmp_path: Path) -> Path:
    path = tmp_path / "fp.safetensors"
    shutil.copy(zoo.bundle, path)
    return path


def _data(zoo: Zoo, tmp_path: Path, rows: int) -> Path:
    path = tmp_path / f"data-{rows}.npz"
    np.savez(path, x=zoo.x[:rows])
    return path


def _said(zoo: Zoo, rows: int) -> np.ndarray:
    """The target's own labels on the first ``rows`` samples (onnxruntime, not the package)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(zoo.target), providers=["CPUExecutionProvider"])
    labels: np.ndarray = session.run(None, {session.get_inputs()[0].name: zoo.x[:rows]})[0].argmax(axis=1)
    return labels


def _labelled(zoo: Zoo, tmp_path: Path, labels: np.ndarray) -> Path:
    path = tmp_path / "labelled.npz"
    np.savez(path, x=zoo.x[: len(labels)], y=labels)
    return path


def _registry(tmp_path: Path, *licensees: str) -> Path:
    """A registry folder holding entries for ``licensees`` (their content does not matter to the check)."""
    folder = tmp_path / "registry"
    folder.mkdir(exist_ok=True)
    for name in licensees:
        (folder / f"{name}.licensee.safetensors").write_bytes(b"an entry")
    return folder


def _issue(zoo: Zoo, tmp_path: Path, *extra: object, rows: int = 600) -> list[object]:
    return [
        "issue",
        zoo.target,
        "--licensee",
        "hooli",
        "--registry",
        _registry(tmp_path),
        "--key",
        zoo.private_key,
        "--data",
        _data(zoo, tmp_path, rows),
        *extra,
    ]


# (name, arguments, exit code, a regular expression the one line must contain)
CASES: list[tuple[str, Arguments, ExitCode, str]] = [
    # usage errors: options and values (exit 2)
    ("unknown option", lambda z, t: ["audit", "--no-such-option"], ExitCode.usage, "No such option: --no-such-option"),
    (
        "bad domain",
        lambda z, t: ["fingerprint", z.target, "--domain", "zero-one"],
        ExitCode.usage,
        "--domain expects LOW,HIGH",
    ),
    ("empty domain", lambda z, t: ["fingerprint", z.target, "--domain", "1,0"], ExitCode.usage, "LOW < HIGH"),
    ("bad n", lambda z, t: ["fingerprint", z.target, "--n", 0], ExitCode.usage, "--n must lie in 1.."),
    (
        "negative k",
        lambda z, t: ["fingerprint", z.target, "--k", -1],
        ExitCode.usage,
        "--k must be a finite number ≥ 0",
    ),
    (
        "input shape not numbers",
        lambda z, t: ["fingerprint", z.target, "--input-shape", "three"],
        ExitCode.usage,
        "--input-shape expects sizes like 3,48,192",
    ),
    ("input shape zero", lambda z, t: ["fingerprint", z.target, "--input-shape", "1,0,8"], ExitCode.usage, "positive"),
    (
        "init data without data",
        lambda z, t: ["fingerprint", z.target, "--init", "data"],
        ExitCode.usage,
        "--init data needs --data",
    ),
    (
        "bad init",
        lambda z, t: ["fingerprint", z.target, "--init", "zeros"],
        ExitCode.usage,
        "Invalid value for '--init'",
    ),
    ("missing data", lambda z, t: ["fingerprint", z.target, "--data", t / "no.npz"], ExitCode.usage, "does not exist"),
    (
        "bad label",
        lambda z, t: ["fingerprint", z.target, "--label", "most-likely"],
        ExitCode.usage,
        "Invalid value for '--label'",
    ),
    (
        "bad method",
        lambda z, t: ["fingerprint", z.target, "--method", "pgd"],
        ExitCode.usage,
        "Invalid value for '--method': 'pgd' is not one of ipguard, random, fgsm, igsm, cw-l2",
    ),
    (
        "bad providers",
        lambda z, t: ["fingerprint", z.target, "--providers", "tpu"],
        ExitCode.usage,
        "Invalid value for '--providers'",
    ),
    (
        "bad epsilon",
        lambda z, t: ["fingerprint", z.target, "--method", "fgsm", "--epsilon", "0"],
        ExitCode.usage,
        "--epsilon must be a positive",
    ),
    (
        "unique baseline",
        lambda z, t: ["fingerprint", z.target, "--method", "fgsm", "--unique"],
        ExitCode.usage,
        "use it with --method ipguard",
    ),
    (
        "gradient baseline on trees",
        lambda z, t: ["fingerprint", _forest(z, t), "--method", "fgsm", "--key", z.private_key],
        ExitCode.usage,
        "holds TreeEnsembleClassifier \\(no gradient\\); use --method gradient-free",
    ),
    (
        "unique on trees",
        lambda z, t: ["fingerprint", _forest(z, t), "--unique", "--key", z.private_key],
        ExitCode.usage,
        "--unique follows a gradient",
    ),
    (
        "one class in the domain",
        lambda z, t: ["fingerprint", _linear_zipmap(t), "--domain", "5,6", "--key", z.private_key],
        ExitCode.input,
        "every input drawn from --domain 5,6 is labelled class 1, so there is no other class to cross to",
    ),
    (
        "trajectories in one class",
        lambda z, t: [
            "fingerprint",
            _linear_zipmap(t),
            "--method",
            "trajectory",
            "--domain",
            "5,6",
            "--key",
            z.private_key,
        ],
        ExitCode.input,
        "every input drawn from --domain 5,6 is labelled class 1, so there is no other class to cross to",
    ),
    (
        "unique without a gradient",
        lambda z, t: ["fingerprint", z.target, "--method", "gradient-free", "--unique"],
        ExitCode.usage,
        "use it with --method ipguard",
    ),
    (
        "unique without data",
        lambda z, t: ["fingerprint", z.target, "--unique", "--n", 5],
        ExitCode.usage,
        "needs owner data",
    ),
    (
        "class names its label output does not use",
        lambda z, t: ["fingerprint", _linear_zipmap(t), "--class-names", "no,yes", "--key", z.private_key],
        ExitCode.usage,
        "label output 'output_label' answers [01], which --class-names does not list",
    ),  # neither is a name given
    (
        "unique on labels only",
        lambda z, t: ["fingerprint", _labels_only(t), "--unique", "--key", z.private_key],
        ExitCode.usage,
        "answers with labels only; use --method gradient-free",
    ),
    (
        "zo-adam on labels only",
        lambda z, t: ["fingerprint", _labels_only(t), "--method", "zo-adam", "--key", z.private_key],
        ExitCode.usage,
        "--method zo-adam needs class scores over float inputs; labels-only.onnx gives labels only",
    ),
    (
        "mistakes beyond one",
        lambda z, t: ["fingerprint", z.target, "--mistakes", "1.5"],
        ExitCode.usage,
        "--mistakes is a share of --n and must lie in \\[0, 1\\]",
    ),
    (
        "mistakes without labels",
        lambda z, t: ["fingerprint", z.target, "--data", _data(z, t, 50), "--mistakes", "0.3", "--key", z.private_key],
        ExitCode.usage,
        "--mistakes needs labelled owner data: --data FILE.npz with the inputs under 'x'",
    ),
    (
        "labels outside the classes",
        lambda z, t: ["fingerprint", z.target, "--data", _labelled(z, t, np.arange(50) % 12), "--key", z.private_key],
        ExitCode.usage,
        "labels must be class indices 0 to 9",
    ),
    (
        "no mistakes to use",
        lambda z, t: [
            "fingerprint",
            z.target,
            "--data",
            _labelled(z, t, _said(z, 50)),
            "--mistakes",
            "1",
            "--key",
            z.private_key,
        ],
        ExitCode.input,
        "labels all 50 samples of --data as their labels say: no mistakes to fingerprint with; lower --mistakes",
    ),
    (
        "repeated class names",
        lambda z, t: ["fingerprint", z.target, "--class-names", "a,a"],
        ExitCode.usage,
        "distinct, non-empty names",
    ),
    (
        "class names count",
        lambda z, t: ["fingerprint", z.target, "--class-names", "a,b", "--n", 5],
        ExitCode.usage,
        "lists 2 names; target.onnx has 10 classes",
    ),
    (
        "fingerprint sarif",
        lambda z, t: ["fingerprint", z.target, "--format", "sarif"],
        ExitCode.usage,
        "Invalid value for '--format'",
    ),
    (
        "inspect sarif",
        lambda z, t: ["inspect", z.bundle, "--format", "sarif"],
        ExitCode.usage,
        "Invalid value for '--format'",
    ),
    (
        "bad audit format",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--format", "xml"],
        ExitCode.usage,
        "Invalid value for '--format'",
    ),
    (
        "bad expect",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--expect", "maybe"],
        ExitCode.usage,
        "Invalid value for '--expect'",
    ),
    (
        "bad protocol",
        lambda z, t: ["audit", "--endpoint", "http://127.0.0.1:9/p", "-f", z.bundle, "--protocol", "grpc"],
        ExitCode.usage,
        "Invalid value for '--protocol'",
    ),
    (
        "fingerprints not a folder",
        lambda z, t: ["audit", z.target, "--fingerprints", t / "none"],
        ExitCode.usage,
        "is not a folder",
    ),
    (
        "empty fingerprints folder",
        lambda z, t: ["audit", z.target, "--fingerprints", t],
        ExitCode.usage,
        "holds no .safetensors bundles",
    ),
    ("no fingerprint", lambda z, t: ["audit", z.target], ExitCode.usage, "pass --fingerprint FILE"),
    ("no suspect", lambda z, t: ["audit", "-f", z.bundle], ExitCode.usage, "pass a suspect model"),
    (
        "bad mean",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--mean", "a,b"],
        ExitCode.usage,
        "--mean expects comma-separated numbers",
    ),
    (
        "bad suspect layout",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--suspect-layout", "NHW"],
        ExitCode.usage,
        "--suspect-layout must be N then the letters C, H and W",
    ),
    (
        "sign a text report",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--sign-report", z.private_key],
        ExitCode.usage,
        "add --format json",
    ),
    (
        "endpoint not http",
        lambda z, t: ["audit", "--endpoint", "ftp://example.com/m", "-f", z.bundle],
        ExitCode.usage,
        "--endpoint must be an http\\(s\\) URL",
    ),
    (
        "evaluate without negatives",
        lambda z, t: ["evaluate", "-f", z.bundle, "--positive", z.target],
        ExitCode.usage,
        "at least one --positive and one --negative",
    ),
    (
        "evaluate glob matches nothing",
        lambda z, t: ["evaluate", "-f", z.bundle, "--positive", z.target, "--negative", f"{z.folder}/nothing-*.onnx"],
        ExitCode.usage,
        "matches no .onnx model",
    ),
    (
        "evaluate zero steps",
        lambda z, t: ["evaluate", "-f", z.bundle, "--positive", z.target, "--negative", z.target, "--r", "0"],
        ExitCode.usage,
        "--r must be at least 1",
    ),
    (
        "calibrate without negatives",
        lambda z, t: ["calibrate", _bundle_copy(z, t), "--key", z.private_key],
        ExitCode.usage,
        "at least one --negative",
    ),
    (
        "calibrate impossibly",
        lambda z, t: ["calibrate", _bundle_copy(z, t), "--negative", z.target, "--key", z.private_key],
        ExitCode.usage,
        "no matching rate reaches",
    ),
    (
        "licensee name with a path",
        lambda z, t: [
            "issue",
            z.target,
            "--licensee",
            "../evil",
            "--data",
            _data(z, t, 600),
            "--registry",
            _registry(t),
        ],
        ExitCode.usage,
        "letters, digits",
    ),
    (
        "licensee already issued",
        lambda z, t: [*_issue(z, t), "--registry", _registry(t, "hooli")],
        ExitCode.usage,
        "already holds a copy \\(pass --force to re-issue\\)",
    ),
    ("too little data to issue", lambda z, t: _issue(z, t, rows=50), ExitCode.usage, "needs at least 125"),
    ("too few triggers", lambda z, t: _issue(z, t, "--triggers", 5), ExitCode.usage, "--triggers must be at least 10"),
    ("issue over data bounds", lambda z, t: _issue(z, t, "--domain", "data"), ExitCode.usage, "takes LOW,HIGH"),
    (
        "licensees not a folder",
        lambda z, t: ["audit", z.target, "--licensees", t / "nowhere"],
        ExitCode.usage,
        "not a folder",
    ),
    (
        "empty licensee registry",
        lambda z, t: ["audit", z.target, "--licensees", _registry(t)],
        ExitCode.usage,
        "holds no .licensee.safetensors",
    ),
    # input and model errors (exit 3)
    (
        "missing suspect",
        lambda z, t: ["audit", t / "missing.onnx", "-f", z.bundle],
        ExitCode.input,
        "model file not found",
    ),
    (
        "non-ONNX suspect",
        lambda z, t: ["audit", _not_onnx(t), "-f", z.bundle],
        ExitCode.input,
        "not a readable ONNX model",
    ),
    (
        "missing model",
        lambda z, t: ["fingerprint", t / "missing.onnx", "--n", 5],
        ExitCode.input,
        "model file not found",
    ),
    (
        "non-ONNX model",
        lambda z, t: ["fingerprint", _not_onnx(t), "--n", 5],
        ExitCode.input,
        "not a readable ONNX model",
    ),
    (
        "input shape of another rank",
        lambda z, t: ["fingerprint", z.target, "--input-shape", "64"],
        ExitCode.input,
        "3 dimensions after the batch axis",
    ),
    (
        "missing bundle",
        lambda z, t: ["audit", z.target, "-f", t / "none.safetensors"],
        ExitCode.input,
        "fingerprint not found",
    ),
    ("model as bundle", lambda z, t: ["audit", z.target, "-f", z.target], ExitCode.input, "bundle|header|fingerprint"),
    (
        "bad threshold",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--threshold", "2"],
        ExitCode.usage,
        "--threshold must lie in",
    ),
    (
        "shape mismatch",
        lambda z, t: ["audit", _vector_model(t), "-f", z.bundle],
        ExitCode.input,
        "takes inputs of shape",
    ),
    ("missing report", lambda z, t: ["verify-report", t / "none.json"], ExitCode.input, "not found|no such"),
    # signature and trust (exit 4)
    (
        "tampered bundle",
        lambda z, t: ["audit", z.target, "-f", _tampered(z, t)],
        ExitCode.trust,
        "altered after signing",
    ),
    ("tampered inspect", lambda z, t: ["inspect", _tampered(z, t)], ExitCode.trust, "altered after signing"),
    (
        "wrong trusted key",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--trusted-key", _other_key(t)],
        ExitCode.trust,
        "not by the trusted key",
    ),
    (
        "missing trusted key",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--trusted-key", t / "no.pem"],
        ExitCode.trust,
        "public key not found",
    ),
    (
        "missing signing key",
        lambda z, t: ["fingerprint", z.target, "--key", t / "no.pem"],
        ExitCode.trust,
        "signing key not found",
    ),
    (
        "public key to sign",
        lambda z, t: ["fingerprint", z.target, "--key", z.public_key],
        ExitCode.trust,
        "not a readable PEM private key",
    ),
    ("existing key", lambda z, t: ["keygen", "--out", z.private_key], ExitCode.trust, "already exists"),
    (
        "bundle path in a symlink loop",
        lambda z, t: ["audit", z.target, "-f", _symlink_loop(t, "fp.safetensors")],
        ExitCode.input,
        "not found",
    ),
    (
        "scan journal under a file",
        lambda z, t: ["scan", z.target, "-f", z.bundle, "--output", _file(t) / "s.jsonl"],
        ExitCode.input,
        "cannot be used.*--output",
    ),
    (
        "calibrate with another key",
        lambda z, t: ["calibrate", _bundle_copy(z, t), "--negative", z.independent, "--key", _other_key(t, False)],
        ExitCode.trust,
        "calibrate with the key that signed",
    ),
    (
        "calibrate without a default key",
        lambda z, t: ["calibrate", _bundle_copy(z, t), "--negative", z.independent],
        ExitCode.trust,
        "no default signing key",
    ),
]


def _symlink_loop(folder: Path, name: str) -> Path:
    loop = folder / name
    loop.symlink_to(loop)
    return loop


def _file(folder: Path) -> Path:
    path = folder / "a-file"
    path.write_text("not a folder")
    return path


def _snapshot(*folders: Path) -> dict[Path, bytes]:
    return {
        path: path.read_bytes()
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file() and "config" not in path.relative_to(folder).parts
    }


@pytest.mark.parametrize(("arguments", "code", "message"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_a_user_error_is_one_line_and_its_exit_code(
    zoo: Zoo, tmp_path: Path, run_cli: RunCli, arguments: Arguments, code: ExitCode, message: str
) -> None:
    built = arguments(zoo, tmp_path)
    before = _snapshot(zoo.folder, tmp_path)
    result = run_cli(*built)
    assert result.code == code, (result.code, result.stderr)
    assert re.search(message, one_line_error(result)), result.stderr
    assert result.stdout == ""
    assert _snapshot(zoo.folder, tmp_path) == before  # nothing the user had is lost, changed or half-written


def test_the_cases_cover_every_documented_error_code() -> None:
    assert {code for _, _, code, _ in CASES} == {ExitCode.usage, ExitCode.input, ExitCode.trust}


ENVIRONMENT_CASES: list[tuple[str, Arguments, dict[str, str | None], ExitCode, str]] = [
    (
        "malformed headers variable",
        lambda z, t: ["audit", "--endpoint", "http://127.0.0.1:9/predict", "-f", z.bundle],
        {"IPGUARD_ONNX_HTTP_HEADERS": "nope"},
        ExitCode.usage,
        "IPGUARD_ONNX_HTTP_HEADERS must be a JSON object",
    ),
    (
        "password for an unencrypted key",
        lambda z, t: ["audit", z.target, "-f", z.bundle, "--format", "json", "--sign-report", z.private_key],
        {"IPGUARD_ONNX_KEY_PASSWORD": "wrong"},
        ExitCode.trust,
        "is not encrypted; unset IPGUARD_ONNX_KEY_PASSWORD",
    ),
]


@pytest.mark.parametrize(
    ("arguments", "environment", "code", "message"),
    [c[1:] for c in ENVIRONMENT_CASES],
    ids=[c[0] for c in ENVIRONMENT_CASES],
)
def test_a_bad_environment_variable_is_one_line_and_its_exit_code(
    zoo: Zoo,
    tmp_path: Path,
    run_cli: RunCli,
    arguments: Arguments,
    environment: dict[str, str | None],
    code: ExitCode,
    message: str,
) -> None:
    built = arguments(zoo, tmp_path)
    before = _snapshot(zoo.folder, tmp_path)
    result = run_cli(*built, env=environment)
    assert result.code == code, (result.code, result.stderr)
    assert re.search(message, one_line_error(result)), result.stderr
    assert result.stdout == "" and _snapshot(zoo.folder, tmp_path) == before
