"""The Python API (``import headstart as hs``): the CLI's engine, for notebooks and scripts.

Every function is a thin layer over the entry points the CLI uses (``runner.train``,
``experiments.compare``, ``artifacts.load_run``, ``evaluate_run``, ``predict_files``), so the two
cannot disagree: ``hs.fit`` writes the same run folder as ``headstart train``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from headstart._runtime import tuned_malloc
from headstart.config import RunConfig, resolve_run_config
from headstart.errors import HeadstartError
from headstart.registry import unknown_choice

if TYPE_CHECKING:  # torch and the data modules load on first use: `import headstart` stays light
    from torch import nn

    from headstart.backbones.recipe import Recipe
    from headstart.data.dataset import Dataset

__all__ = ["Run", "Model", "fit", "load", "compare", "rank"]

Data = Any  # a path or builtin:NAME, (inputs, labels), a pandas DataFrame, or a torch Dataset of (input, label)


def _source(data: Data) -> str:
    """DATA as the config's ``data.source``: the path or builtin, or the in-memory marker."""
    if isinstance(data, (str, Path)):
        return str(data)
    from headstart.data.memory import MEMORY_SOURCE

    return MEMORY_SOURCE


def _dataset(data: Data, task: str) -> Dataset | None:
    """The in-memory set (None for paths and builtins), read for ``task`` (a multi-label example may have an
    empty label list)."""
    if isinstance(data, (str, Path)):
        return None
    from headstart.data.memory import from_memory
    from headstart.tasks import get_task

    return from_memory(data, get_task(task).empty_labels)


@dataclass
class Run:
    """A finished training run: its folder, test metrics and labels (``hs.fit`` returns one)."""

    path: Path  # the run folder (headstart.json, model.safetensors, report.html, ...)
    strategy: str
    backbone: str
    labels: list[str]
    metrics: dict[str, Any] = field(repr=False)  # metrics.json: accuracy, macro_f1, roc_auc, per class, ci95, ...
    seconds: float
    task: str = "classification"  # what the head predicts (a registered task)
    target_metrics: dict[str, Any] | None = field(default=None, repr=False)  # on all of a labelled ``target``

    def load(self) -> Model:
        """The trained model, ready to predict."""
        return load(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, {self.strategy} on {self.backbone}, {_headline(self.metrics, self.task)})"

    def _repr_html_(self) -> str:
        return _report_frame(self.path) or f"<pre>{html.escape(repr(self))}</pre>"


def _headline(metrics: dict[str, Any], task: str | None = None) -> str:
    from headstart.tasks import DEFAULT_TASK, get_task

    keys = get_task(task or DEFAULT_TASK).summary
    parts = [f"{k}={metrics[k]:.3f}" for k in keys if isinstance(metrics.get(k), (int, float))]
    return ", ".join(parts) + f" on {metrics.get('n', '?')} test examples"


def _report_frame(path: Path) -> str | None:
    """The run's self-contained report.html inside an iframe (Jupyter shows it inline)."""
    from headstart.artifacts.names import REPORT

    report = path / REPORT
    if not report.is_file():
        return None
    doc = html.escape(report.read_text(encoding="utf-8"), quote=True)
    return f'<iframe srcdoc="{doc}" style="width:100%;height:720px;border:1px solid #ddd"></iframe>'


class Model:
    """A trained run loaded for use: ``predict``, ``predict_proba``, ``evaluate``; ``module`` is the plain
    ``nn.Module`` and ``transform`` its preprocessing (``hs.load`` returns one)."""

    def __init__(self, path: str | Path):
        from headstart.artifacts import load_run

        self._run = load_run(path)

    @property
    def path(self) -> Path:
        return self._run.path

    @property
    def labels(self) -> list[str]:
        return list(self._run.labels)

    @property
    def module(self) -> nn.Module:
        """The network (eval mode, CPU): preprocessed inputs in, logits out."""
        return self._run.model

    @property
    def recipe(self) -> Recipe:
        """The preprocessing recipe saved with the weights (input size, crop, mean/std, or tokenizer settings)."""
        return self._run.recipe

    @property
    def transform(self) -> Any:
        """Image runs: the eval transform, a (C, H, W) uint8 tensor in, the normalized float tensor out.
        Text runs: a function from a list of texts to token ids and attention masks. Audio runs: ``(waveform,
        sample_rate)`` in, the (clip_samples,) float tensor the network takes out (mono, resampled, centre window;
        the log-mel front end is inside the network)."""
        from headstart.modalities import recipe_kind

        return recipe_kind(self._run.recipe).transform(self._run.recipe)

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self._run.manifest.get("metrics") or {})

    def predict(self, inputs: Any, batch_size: int | None = None) -> list[dict[str, Any]]:
        """One record per input, as ``headstart predict --format json`` prints: ``path`` (or ``input`` /
        ``text``), ``label``, ``probabilities`` ({label: p}); an unreadable input gets an ``error``.

        Image runs take paths, PIL images, (H, W[, C]) arrays and (C, H, W) tensors, mixed freely; text
        runs take strings; audio runs take files and ``(waveform, sample_rate)`` pairs ((samples,) or
        (samples, channels) float arrays in [-1, 1]). A single input gives a list of one record.
        """
        from headstart.modalities import get_modality

        with tuned_malloc():
            return get_modality(self._run.modality).predict(self._run, _as_list(inputs), batch_size)

    def predict_proba(self, inputs: Any, batch_size: int | None = None) -> np.ndarray:
        """(n, classes) probabilities in ``labels`` order (multi-label: (n, labels), each its own probability);
        an unreadable input raises (use ``predict`` to get per-input errors instead). Regression models
        predict values, not probabilities: use ``predict``."""
        records = self.predict(inputs, batch_size)
        if any("probabilities" not in r for r in records if not r.get("error")):
            raise HeadstartError(
                f"a {self._run.task.name} model predicts values, not probabilities; model.predict(...) gives each"
            )
        failed = [r for r in records if r.get("error")]
        if failed:
            raise HeadstartError(
                f"{len(failed)} of {len(records)} input(s) could not be predicted: {failed[0]['error']}; "
                "use model.predict(...) to see each input's error"
            )
        return np.asarray([[r["probabilities"][label] for label in self.labels] for r in records], dtype=np.float64)

    def evaluate(self, data: Data = None, split: str = "auto") -> dict[str, Any]:
        """The metrics dict of ``metrics.json`` on labelled ``data`` (default: the run's own test split)."""
        from headstart.artifacts import evaluate_run

        task = self._run.task.name
        source: str | Dataset | None = data if data is None or isinstance(data, str) else _dataset(data, task)
        if isinstance(data, Path):
            source = str(data)
        with tuned_malloc():
            result = evaluate_run(self._run, source, split)
        return {**result.metrics, "split": result.split, "skipped_unreadable": result.skipped}

    def export(self, format: str, path: str | Path) -> Path:
        """Write the model for use without headstart, as ``headstart export`` does; returns the file written.

        ``format="onnx"``: one graph from raw inputs (uint8 RGB images ``(N, H, W, 3)`` of any size, or the token
        ids of the ``tokenizer.json`` written beside it) to the scores ``predict`` reports, with the labels and
        recipe in its metadata. ``path`` lies in an existing folder; only a file headstart wrote is replaced.

        Example::

            hs.load("runs/cells").export("onnx", "cells.onnx")
        """
        from headstart.export import export_run

        with tuned_malloc():
            return export_run(self._run, format, path)[0]

    def __repr__(self) -> str:
        m = self._run.manifest
        return (
            f"Model({str(self.path)!r}, {m['strategy']} on {m['backbone']['name']}, labels={self.labels}, "
            f"{_headline(self.metrics, self._run.task.name)})"
        )

    def _repr_html_(self) -> str:
        return _report_frame(self.path) or f"<pre>{html.escape(repr(self))}</pre>"


def _is_clip(x: Any) -> bool:
    return isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], np.ndarray) and isinstance(x[1], int)


def _as_list(inputs: Any) -> list[Any]:
    if _is_clip(inputs):  # one audio clip: (waveform, sample_rate)
        return [inputs]
    if isinstance(inputs, (str, Path)) or not isinstance(inputs, Sequence):
        if isinstance(inputs, np.ndarray) and inputs.ndim == 4:  # a batch of (N, H, W, C) images
            return list(inputs)
        return [inputs]
    return list(inputs)


def fit(
    data: Data,
    *,
    backbone: str | None = None,
    strategy: str | None = None,
    task: str | None = None,
    epochs: int | None = None,
    out: str | Path = "runs/latest",
    seed: int | None = None,
    config: str | Path | RunConfig | None = None,
    settings: dict[str, Any] | None = None,
    verbose: bool = True,
    target: str | Path | None = None,
) -> Run:
    """Train one strategy on ``data`` and write its run folder, exactly as ``headstart train`` does.

    ``data``: a folder, CSV or ``builtin:NAME``; ``(images, labels)`` with images as paths, PIL images,
    arrays or tensors; ``(texts, labels)``; a DataFrame; or a torch Dataset of ``(input, label)``.
    ``settings`` sets any config key, e.g. ``{"optim.lr": 3e-4, "train.batch_size": 16}``.
    ``target``: target-domain data (a folder, CSV or ``builtin:NAME``) for ``dann``, ``coral`` and ``adabn``;
    with labels of the same classes, ``Run.target_metrics`` scores the model on all of it.

    Example::

        run = hs.fit("builtin:elpv", backbone="mobilenet_v2", strategy="linear-probe", out="runs/cells")
        run.metrics["macro_f1"], run.labels, run.path
    """
    from headstart import runner
    from headstart.engine.progress import progress_shown

    flags: dict[str, Any] = {"backbone": backbone, "strategy": strategy, "task": task, "epochs": epochs, "seed": seed}
    flags["target"] = _target_source(target)
    cfg = resolve_run_config(_source(data), config, settings=settings, **flags)
    dataset = _dataset(data, cfg.task.kind)
    with progress_shown(verbose), tuned_malloc():
        prepared = runner.prepare_data(cfg, dataset)
        summary = runner.train(cfg, out, prepared)
    manifest = json.loads((summary.out / "headstart.json").read_text())
    return Run(
        path=summary.out,
        strategy=summary.strategy,
        backbone=manifest["backbone"]["name"],
        labels=list(manifest["labels"]),
        metrics=summary.metrics,
        seconds=summary.seconds,
        task=str(manifest.get("task", "classification")),
        target_metrics=summary.target_metrics,
    )


def _target_source(target: Any) -> str | None:
    """``target=``: a data source by name (in-memory target data is refused, with the fix)."""
    if target is not None and not isinstance(target, str | Path):
        raise HeadstartError(
            f"target= takes a folder, a CSV or builtin:NAME, not {type(target).__name__}; save in-memory target "
            "data to a folder of images (or a CSV) and pass its path"
        )
    return str(target) if target is not None else None


def load(path: str | Path) -> Model:
    """A trained run folder (``hs.fit``'s ``out`` or ``headstart train --out``), ready to predict.

    Example::

        model = hs.load("runs/cells")
        model.predict(["a.png", pil_image, array_hwc, tensor_chw])
    """
    return Model(path)


def compare(
    data: Data,
    strategies: Sequence[str] = ("linear-probe", "finetune", "scratch"),
    *,
    backbone: str | None = None,
    task: str | None = None,
    epochs: int | None = None,
    out: str | Path = "runs/compare",
    seeds: int = 1,
    seed: int | None = None,
    config: str | Path | RunConfig | None = None,
    settings: dict[str, Any] | None = None,
    resume: bool = False,
    verbose: bool = True,
    target: str | Path | None = None,
) -> Any:
    """Several strategies on the same split(s), as ``headstart compare``: a ``Comparison`` with ``rows``
    (one per strategy, 95% CIs), ``verdict`` and ``runs``; ``out`` gets the run folders and report.html.

    ``resume=True`` continues an interrupted comparison in ``out`` (a kernel restart, Ctrl-C): finished runs
    made with the same settings and data are reused (their row's ``origin`` says ``reused``), an interrupted
    one continues from its checkpoint (``resumed``), the missing ones are trained; other settings or data
    are refused, naming what differs. ``target``: as in :func:`fit`; every row then also has the task's
    primary metric on it (``target_macro_f1``)."""
    from headstart import experiments
    from headstart.artifacts.out_dir import claim_out
    from headstart.engine.progress import progress_shown
    from headstart.strategies import STRATEGIES

    if not strategies:
        raise HeadstartError(f"pass at least one strategy to compare; known: {', '.join(STRATEGIES)}")
    for name in strategies:
        if name not in STRATEGIES:
            raise unknown_choice("strategy", name, STRATEGIES)
    flags: dict[str, Any] = {"backbone": backbone, "task": task, "epochs": epochs, "seed": seed}
    flags["target"] = _target_source(target)
    cfg = resolve_run_config(_source(data), config, settings=settings, **flags)
    dataset = _dataset(data, cfg.task.kind)
    with claim_out(out, cfg.data.source), progress_shown(verbose), tuned_malloc():
        hint = "the same hs.compare(...) call with resume=True"
        result = experiments.compare(
            cfg, list(strategies), Path(out), seeds, dataset=dataset, resume=resume, resume_hint=hint
        )
        experiments.write_comparison_files(result, Path(out), cfg.data.source, cfg)
    return result


def rank(
    data: Data,
    backbones: Sequence[str] = ("efficientnet_lite0", "mobilenet_v2"),
    *,
    task: str | None = None,
    config: str | Path | RunConfig | None = None,
    settings: dict[str, Any] | None = None,
    verbose: bool = True,
) -> list[Any]:
    """Rank candidate backbones on ``data`` before training (LogME, H-score, kNN and probe scores on
    validation), as ``headstart rank``: a list of ``RankRow``, best first."""
    from headstart import runner
    from headstart.engine.progress import progress_shown
    from headstart.transferability.features import parse_candidates
    from headstart.transferability.rank import rank_backbones

    cfg = resolve_run_config(_source(data), config, settings=settings, task=task)
    dataset = _dataset(data, cfg.task.kind)
    with progress_shown(verbose), tuned_malloc():
        prepared = runner.prepare_data(cfg, dataset)
        candidates = parse_candidates(",".join(backbones), prepared[0].modality)
        return list(rank_backbones(cfg, candidates, prepared))
