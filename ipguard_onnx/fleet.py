"""``scan --ray``: the scan's unit of work (one suspect × its bundles) on Ray Data, over an actor pool.

The driver keeps the journal (``scan.Journal``); Ray Data streams suspects through ``map_batches`` with a
class-based UDF on ``ActorPoolStrategy``: each actor verifies and loads the bundles once (sent as bytes
through the object store, so no node needs the owner's files) and keeps its onnxruntime settings —
CUDA when Ray gave the actor a GPU. Each output row carries one suspect's rows, so the driver writes a
suspect's results together as they stream in. When an actor dies mid-batch, Ray re-runs that batch on
another actor; the journal writes a pair only once, so nothing is lost and nothing is duplicated.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import requirements
from .bundle import Bundle, load_bundle
from .errors import UsageError
from .keys import load_public_key
from .scan import Runner, ScanOptions, ScanRow, scan_suspect
from .text import shown


class ScanActor:
    """A Ray Data UDF: the bundles, loaded and verified once per actor; ``__call__`` scans a batch of suspects."""

    def __init__(
        self, bundles: Sequence[tuple[str, bytes]], trusted_key_pem: bytes | None, options: ScanOptions
    ) -> None:
        import ray

        trusted = None
        with tempfile.TemporaryDirectory(prefix="ipguard-fleet-") as folder:
            if trusted_key_pem is not None:
                key_path = Path(folder) / "trusted.pub.pem"
                key_path.write_bytes(trusted_key_pem)
                trusted = load_public_key(key_path)
            loaded = []
            for index, (name, payload) in enumerate(bundles):
                path = Path(folder) / str(index) / name  # the file's own name: the rows name bundles by it
                path.parent.mkdir()
                path.write_bytes(payload)
                loaded.append(load_bundle(path, trusted_key=trusted))
        self.bundles = {bundle.sha256: bundle for bundle in loaded}
        self.options = replace(options, providers="cuda") if ray.get_gpu_ids() else options
        self.pid = os.getpid()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        out_suspects, out_rows = [], []
        for reference, wanted in zip(batch["suspect"], batch["bundles"], strict=True):
            bundles = [self.bundles[sha] for sha in json.loads(str(wanted))]
            rows = scan_suspect(str(reference), bundles, self.options)
            out_suspects.append(str(reference))
            out_rows.append(json.dumps([row.to_json() for row in rows]))
        return {"suspect": out_suspects, "rows": out_rows}


def _connect(address: str) -> None:
    import ray

    if ray.is_initialized():
        return
    quiet: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    try:
        if address == "auto":  # a local instance of our own, not "join the running one" as ray.init("auto") means
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ValueError, ConnectionError) as error:  # a malformed or unreachable address: the user's to fix
        raise UsageError(f"--ray {shown(address)!r}: {shown(' '.join(str(error).split()))[:200]}") from None


def ray_runner(address: str, *, workers: int, bundle_paths: Sequence[Path | None], trusted_key: Path | None) -> Runner:
    """A ``scan`` runner on Ray: ``auto`` starts a local instance, any other value is a cluster address."""
    requirements.ray_data()
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    payloads = [(path.name, path.read_bytes()) for path in bundle_paths if path is not None]
    key_pem = trusted_key.read_bytes() if trusted_key is not None else None

    def run(work: Sequence[tuple[str, Sequence[Bundle]]], options: ScanOptions) -> Iterator[list[ScanRow]]:
        if not work:
            return
        import ray
        import ray.data
        from ray.data import ActorPoolStrategy, DataContext

        _connect(address)
        for name in ("ray", "ray.data"):  # the scan reports its own progress; Ray's INFO lines are noise here
            logging.getLogger(name).setLevel(logging.ERROR)
        context = DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        gpus = float(ray.cluster_resources().get("GPU", 0.0))  # type: ignore[no-untyped-call]
        items = [{"suspect": ref, "bundles": json.dumps([b.sha256 for b in missing])} for ref, missing in work]
        dataset = ray.data.from_items(items, override_num_blocks=min(len(items), 4 * workers))
        scanned = dataset.map_batches(
            ScanActor,
            fn_constructor_kwargs={"bundles": payloads, "trusted_key_pem": key_pem, "options": options},
            batch_size=1,
            compute=ActorPoolStrategy(size=workers),
            num_cpus=1,
            num_gpus=1 if gpus >= workers else 0,
        )  # Ray Data restarts dead pool actors and retries their batches by default (max_restarts=-1)
        for row in scanned.iter_rows():
            yield [ScanRow.from_json(line) for line in json.loads(row["rows"])]

    return run
