"""ONNX export of a trained run: ``headstart export RUN --format onnx --out model.onnx``, ``Model.export``.

The graph (:mod:`headstart.export.graphs`) holds the run's preprocessing, network and task scores, so
onnxruntime alone reproduces ``headstart predict``. ``torch.export.export`` traces it and ``torch.onnx.export``
translates it (the torch.export-based "dynamo" exporter, torch's default; the TorchScript one is deprecated)
at opset :data:`OPSET`, the first whose ``Resize`` antialiases, with a dynamic batch (and, for images, any
height and width; for texts, any length up to max_length). Before anything is written the graph passes
``onnx.checker.check_model`` and onnxruntime's scores on a batch of another size match the torch module's.

Its ``metadata_props`` carry the labels, the task, the recipe (JSON), the decision threshold and headstart's
version, plus the mark :data:`MARK`: only a file bearing it is ever replaced. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from headstart._atomic import write_bytes_atomic
from headstart.errors import HeadstartError

if TYPE_CHECKING:  # torch, onnx and the graphs load on first use: the path checks run before any of them
    import onnx

    from headstart.artifacts.run_dir import LoadedRun
    from headstart.export.graphs import Graph

__all__ = [
    "OPSET",
    "MARK",
    "EXPORT_PACKAGES",
    "require_export_packages",
    "check_onnx_out",
    "graph_of",
    "hash_key",
    "export_onnx",
]

logger = logging.getLogger(__name__)

OPSET = 18  # the first ONNX opset whose Resize antialiases (the image recipe's resize runs inside the graph)
MARK = "headstart.export"  # the metadata key of every graph headstart writes: such a file may be replaced
EXPORT_PACKAGES = {"onnx": "onnx", "onnxruntime": "onnxruntime", "onnxscript": "onnxscript"}  # module -> package
MAX_BYTES = 2**31 - 1  # one protobuf; larger networks would need ONNX external data files


def require_export_packages() -> None:
    """Raise :class:`HeadstartError` naming the install command when a package the export needs is missing."""
    missing = [package for module, package in EXPORT_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise HeadstartError(
            f"exporting to ONNX needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            "installed; install the export extras: pip install 'headstart[export]'"
        )


def _metadata_of(path: Path) -> dict[str, str] | None:
    """The metadata of an ONNX file headstart wrote (it carries :data:`MARK`); None for any other file."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not ONNX at all (protobuf's DecodeError, a truncated file, ...): not ours
        return None
    props = {p.key: p.value for p in model.metadata_props}
    return props if model.producer_name == "headstart" and MARK in props else None


def check_onnx_out(out: str | Path, flag: str = "--out") -> Path:
    """Refuse an unsafe output path before any work; returns it resolved.

    It must end in ``.onnx``, lie in an existing folder this user may write, and be new or a graph that
    headstart wrote (a file of the user's is never replaced)."""
    require_export_packages()
    path = Path(out).expanduser().resolve()
    if path.is_dir():
        raise HeadstartError(
            f"{flag} {out} is a folder; pass the file to write, e.g. {flag} {Path(out) / 'model.onnx'}"
        )
    if path.suffix.lower() != ".onnx":
        raise HeadstartError(
            f"{flag} {out} does not end in .onnx; pass the file to write, e.g. {flag} {path.stem}.onnx"
        )
    if not path.parent.is_dir():
        raise HeadstartError(
            f"{flag} {out}: the folder {path.parent} does not exist; create it first (mkdir -p {path.parent}) "
            "or choose a file in an existing folder (nothing was written)"
        )
    if path.exists() and _metadata_of(path) is None:
        raise HeadstartError(
            f"{flag} {out} exists and was not written by headstart; it is left as it is. Choose another file "
            "name (or delete it yourself first)"
        )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise HeadstartError(f"{flag} {out}: the folder {path.parent} is not writable by this user; choose another")
    return path


def hash_key(name: str) -> str:
    """The metadata key holding the sha256 of the companion file ``name`` (``tokenizer.json``: ``tokenizer_sha256``)."""
    return f"{Path(name).stem}_sha256"


def _check_companions(path: Path, files: dict[str, bytes]) -> None:
    """Files written beside the graph (``tokenizer.json``) replace only what an earlier export to ``path`` wrote
    (its metadata records the file's sha256) or an identical file; anything else of the user's stays."""
    previous = _metadata_of(path) if path.exists() else None
    for name, data in files.items():
        file = path.parent / name
        if not file.exists():
            continue
        old = file.read_bytes() if file.is_file() else None
        ours = old is not None and (
            old == data or (previous or {}).get(hash_key(name)) == hashlib.sha256(old).hexdigest()
        )
        if not ours:
            raise HeadstartError(
                f"{file} exists and was not written by headstart for {path.name}; the graph needs its own {name} "
                "beside it. Export into another folder (nothing was written)"
            )


def graph_of(run: LoadedRun) -> Graph:
    """The graph to trace for ``run``; a run of a kind ONNX export does not cover is refused, naming those it does."""
    from headstart.export.graphs import GRAPHS

    kind = run.recipe.kind
    if kind not in GRAPHS:
        raise HeadstartError(
            f"{run.path} is a {kind} run ({run.modality} data); ONNX export covers {' and '.join(GRAPHS)} runs "
            "(timm image backbones, transformers text encoders), every strategy. Export a run trained on one of "
            "those (`headstart backbones` lists them)"
        )
    return GRAPHS[kind](run)


def _output_name(run: LoadedRun) -> str:
    """``probabilities`` when the task's predictions carry probabilities, else ``values`` (regression)."""
    labels, threshold = list(run.labels), run.manifest.get("threshold")
    record = run.task.record(np.full(run.task.num_outputs(labels), 0.5), labels, threshold)
    return "probabilities" if "probabilities" in record else "values"


def _trace(graph: Graph, output: str) -> onnx.ModelProto:
    """The graph as ONNX: ``torch.export.export`` (dynamic shapes), then ``torch.onnx.export`` of that program.

    Two steps rather than ``torch.onnx.export(module)``: that one traces under torch's "size oblivious" shape
    reasoning, which took twice as long for MobileNetV2 for nothing here (example sizes are never 0 or 1)."""
    import torch

    dynamic = (tuple(graph.dynamic_shapes[name] for name in graph.input_names),)  # forward(*inputs)
    with warnings.catch_warnings(), _quiet("onnxscript", "onnx_ir"), torch.no_grad():
        warnings.filterwarnings("ignore", module=r"(torch|onnxscript|onnx_ir)(\.|$)")  # the exporter's internals
        try:
            program = torch.export.export(graph.module, graph.inputs, dynamic_shapes=dynamic, strict=False)
            onnx_program = torch.onnx.export(
                program,
                input_names=graph.input_names,
                output_names=[output],
                dynamic_shapes=dynamic,  # names the symbolic axes (batch, height, ...) in the graph
                opset_version=OPSET,
                verbose=False,
            )
        except Exception as exc:  # tracing fails in many exception types (torch.export, onnxscript): one message
            raise _untranslatable(exc) from exc
    assert onnx_program is not None
    return onnx_program.model_proto


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """The exporter's loggers at WARNING while it runs (its optimizer logs every initializer it merges)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _untranslatable(exc: Exception) -> HeadstartError:
    """The tracer's own summary line (its messages run to pages), and the fix."""
    lines = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    cause = next((line for line in lines if line.startswith("<class ")), lines[0])  # torch.onnx's summary line
    return HeadstartError(
        f"torch could not export this network to ONNX ({type(exc).__name__}: {cause[:300]}); update torch and "
        "onnxscript (pip install -U torch onnxscript) and export again (nothing was written)"
    )


def _annotate(model: onnx.ModelProto, run: LoadedRun, graph: Graph, output: str) -> None:
    """The labels, task, recipe, threshold and versions as ``metadata_props``, and the mark :data:`MARK`."""
    import onnx

    from headstart.artifacts.run_dir import package_versions

    version = package_versions().get("headstart", "unknown")
    model.producer_name, model.producer_version = "headstart", version
    threshold = run.manifest.get("threshold")
    props = {
        MARK: "1",
        "headstart_version": version,
        "task": run.task.name,
        "labels": json.dumps(list(run.labels)),
        "output": f"{output} (N, {run.task.num_outputs(list(run.labels))}), in labels order: the scores "
        f"`headstart predict` reports ({run.task.name})",
        "threshold": json.dumps(threshold),
        "recipe": json.dumps(run.recipe.to_dict()),
        "backbone": str(run.manifest.get("backbone", {}).get("name", "")),
        "strategy": str(run.manifest.get("strategy", "")),
        **graph.metadata,
        **{hash_key(name): hashlib.sha256(data).hexdigest() for name, data in graph.files.items()},
    }
    onnx.helper.set_model_props(model, props)
    model.doc_string = f"headstart {run.task.name} model: {props['input']} -> {props['output']}"


def _verify(data: bytes, graph: Graph, output: str) -> float:
    """onnxruntime's scores on ``graph.check`` (another batch size and input size than traced) against the torch
    module's; a graph that disagrees beyond ``graph.tolerance`` is refused. Returns the largest difference."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {name: t.numpy() for name, t in zip(graph.input_names, graph.check, strict=True)}
    got = session.run([output], feeds)[0]
    with torch.inference_mode():
        want = graph.module(*graph.check).numpy()
    gap = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
    if not gap <= graph.tolerance:
        raise HeadstartError(
            f"the exported graph disagrees with the network (largest score difference {gap:.3g} on a test batch); "
            "nothing was written. Update torch, onnxscript and onnxruntime and export again"
        )
    return gap


def export_onnx(run: LoadedRun, out: str | Path) -> list[Path]:
    """Write ``run`` as an ONNX graph at ``out`` (and its companion files beside it); returns the files written,
    the graph first. Refusals (a foreign file at ``out``, a missing folder, a run kind not covered) come
    before any work."""
    require_export_packages()
    import onnx

    path = check_onnx_out(out)
    graph = graph_of(run)
    _check_companions(path, graph.files)
    start, output = time.perf_counter(), _output_name(run)
    model = _trace(graph, output)
    _annotate(model, run, graph, output)
    if model.ByteSize() > MAX_BYTES:
        raise HeadstartError("the network is over 2 GB, which one ONNX file cannot hold; nothing was written")
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()
    gap = _verify(data, graph, output)
    written = [write_bytes_atomic(path.parent / name, contents) for name, contents in graph.files.items()]
    write_bytes_atomic(path, data)  # last: it records the companions' hashes
    logger.info("exported %s in %.1fs (onnxruntime vs torch: %.2g)", path, time.perf_counter() - start, gap)
    return [path, *written]
