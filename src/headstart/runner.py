"""One training run end to end: data -> backbone + recipe -> strategy -> metrics -> run directory.

Wiring only. What differs between runs is asked of the plug-ins: the modality (how data is read, what the
backbone is, what ``scratch`` means), the task (head, loss, scores, metrics) and the strategy (which steps
it needs: :meth:`~headstart.strategies.base.Strategy.fit` on a :class:`~headstart.engine.fitting.RunFitter`).
``train``, ``headstart plan`` and the Python API resolve a run through :func:`resolve_run`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart.artifacts.out_dir import check_out, claim_out
from headstart.artifacts.run_dir import write_run
from headstart.artifacts.run_files import run_files, write_report
from headstart.backbones.catalog import BackboneSpec, get_backbone
from headstart.config import RunConfig
from headstart.data.dataset import Dataset, load_data
from headstart.data.loader import SkipLog
from headstart.data.splits import limit_per_class, make_splits
from headstart.data.target import check_target, load_target
from headstart.engine import distributed
from headstart.engine.adapt import score_target
from headstart.engine.checkpoint import Checkpoint, interrupted_message, load_checkpoint
from headstart.engine.fitting import Fitted, RunContext, RunFitter
from headstart.engine.runtime import resolve_runtime
from headstart.engine.train import steps_per_epoch
from headstart.errors import HeadstartError, RunInterrupted
from headstart.modalities import check_modality, get_modality
from headstart.strategies.base import STRATEGIES, get_strategy
from headstart.strategies.plan import plan_markdown, plan_rows, plan_rule
from headstart.tasks import get_task

__all__ = ["RunSummary", "prepare_data", "resolve_config", "resolve_run", "train", "resume"]

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    out: Path  # the run directory
    strategy: str
    metrics: dict[str, Any]  # test-split metrics
    seconds: float  # wall time of the run (data loading excluded)
    trainable_params: int
    skipped: int  # unreadable images skipped
    feature_cache_hit: bool | None  # linear-probe only
    task: str | None = None  # what the head predicted (a registered task)
    origin: str = "trained"  # compare --resume: "resumed" (continued from a checkpoint) or "reused" (finished)
    target_metrics: dict[str, Any] | None = None  # --target with labels: metrics on all of TARGET


def prepare_data(cfg: RunConfig, dataset: Dataset | None = None) -> tuple[Dataset, dict[str, np.ndarray]]:
    """Load DATA (or take the in-memory ``dataset``), encode its labels as the task's targets, apply
    ``limit_per_class`` and make the task's stratified splits (before any model is built)."""
    task = get_task(cfg.task.kind)
    loaded = dataset if dataset is not None else load_data(cfg.data.source, cfg.data, task.empty_labels)
    encoded = task.encode(loaded, cfg)
    images = limit_per_class(encoded, cfg.data.limit_per_class, cfg.data.seed, task.strata(encoded.targets))
    splits = make_splits(images, cfg.data, task.stratify)
    for name, idx in splits.items():
        if len(idx) == 0:
            raise HeadstartError(
                f"the {name} split of {cfg.data.source!r} is empty; add examples or raise data.{name}_fraction"
            )
    return images, splits


def resolve_config(cfg: RunConfig, spec: BackboneSpec) -> RunConfig:
    """Fill the settings whose default depends on the backbone or the strategy (``strategy.backbone_lr_factor``)
    or on the task (``optim.lr``); explicit values stay."""
    if cfg.strategy.backbone_lr_factor is None:
        own = STRATEGIES[cfg.strategy.name].default_backbone_lr_factor if cfg.strategy.name in STRATEGIES else None
        factor = spec.backbone_lr_factor if own is None else own
        cfg = replace(cfg, strategy=replace(cfg.strategy, backbone_lr_factor=factor))
    if cfg.optim.lr is None:
        cfg = replace(cfg, optim=replace(cfg.optim, lr=get_task(cfg.task.kind).lr))
    return cfg


def resolve_run(cfg: RunConfig, data: tuple[Dataset, dict[str, np.ndarray]] | None = None) -> RunContext:
    """Everything a run is made of, resolved and checked before any model is built: backbone, config,
    strategy, the data's modality and the task, the data and its splits, the runtime."""
    spec = get_backbone(cfg.model.backbone, cfg.model.weights)
    cfg = resolve_config(cfg, spec)
    strategy = get_strategy(cfg)
    images, splits = data if data is not None else prepare_data(cfg)
    check_modality(images, spec)
    task = get_task(cfg.task.kind).bind(images.targets[splits["train"]])  # regression: the training mean, std
    task.check(cfg, images)
    modality = get_modality(images.modality)
    runtime = resolve_runtime(cfg.train)
    target = load_target(cfg, images, task)
    fingerprint = images.fingerprint()
    return RunContext(cfg, spec, strategy, modality, task, images, splits, runtime, SkipLog(), fingerprint, target)


def train(
    cfg: RunConfig,
    out: str | Path,
    data: tuple[Dataset, dict[str, np.ndarray]] | None = None,
    resume: Checkpoint | None = None,
) -> RunSummary:
    """Train one strategy and write its run directory. ``data`` reuses an already prepared split;
    ``resume`` continues from an interrupted run's checkpoint (see :func:`resume`).

    ``out`` is checked before any work (:func:`~headstart.artifacts.out_dir.check_out`: never a folder
    headstart did not write) and locked until the run is written. Ctrl-C raises :class:`RunInterrupted`
    saying where the checkpoint is and how to continue."""
    out = Path(out)
    distributed.setup(cfg.train.device)  # joins torchrun's process group when started by torchrun
    # every rank refuses an unsafe --out alike, before any work; the lock is rank 0's (it writes the folder)
    check_out(out, cfg.data.source, resuming=resume is not None, check_lock=distributed.is_main())
    check_target(cfg, get_strategy(cfg))  # a strategy that adapts needs --target: said before any work
    if not distributed.is_main():
        return _train(cfg, out, data, resume)
    with claim_out(out, cfg.data.source, resuming=resume is not None):
        try:
            return _train(cfg, out, data, resume)
        except KeyboardInterrupt as exc:
            if isinstance(exc, RunInterrupted):
                raise
            raise RunInterrupted(interrupted_message(out)) from None


def _train(
    cfg: RunConfig, out: Path, data: tuple[Dataset, dict[str, np.ndarray]] | None, resume: Checkpoint | None
) -> RunSummary:
    run = resolve_run(cfg, data)
    start = time.perf_counter()
    fitted: Fitted = run.strategy.fit(RunFitter(run, out, resume))
    seconds = time.perf_counter() - start + (resume.state["seconds"] if resume else 0.0)
    threshold = run.task.tune_threshold(run.cfg, lambda: _validation_scores(run, fitted, out))
    test = fitted.test
    metrics = run.task.metrics(test.y, test.scores, run.data.labels, threshold, run.cfg.eval.n_boot, run.cfg.train.seed)
    trainable = max((h["trainable_params"] for h in fitted.history), default=0)
    skipped = len(run.skips.items)
    summary = RunSummary(out, cfg.strategy.name, metrics, seconds, trainable, skipped, fitted.cache_hit, run.task.name)
    summary.target_metrics = _target_metrics(run, fitted, threshold)
    if distributed.is_main():  # one writer; the other ranks only wait for the run directory
        fitted = replace(fitted, model=fitted.model.cpu().to(memory_format=torch.contiguous_format))
        write_run(out, run_files(run, fitted, summary, threshold, _plan(run, fitted), resumed=resume is not None))
        write_report(out, run.data)
    distributed.barrier()
    return summary


def _plan(run: RunContext, fitted: Fitted) -> tuple[list[dict[str, Any]], str]:
    """The plan the run followed (``headstart.json`` ``plan`` and ``plan.md``)."""
    per_epoch = steps_per_epoch(len(run.splits["train"]), run.cfg.train.batch_size)
    rows = plan_rows(fitted.model, run.strategy, run.cfg, per_epoch, fitted.history)
    rule = plan_rule(fitted.model, run.strategy, run.cfg, per_epoch, run.splits)
    return rows, plan_markdown(rows) + (f"\n{rule}\n" if rule else "")


def _target_metrics(run: RunContext, fitted: Fitted, threshold: Any) -> dict[str, Any] | None:
    """Metrics of the fitted model on all of a labelled ``--target`` (None without one)."""
    if run.target is None or not run.target.labelled:
        return None
    scores, y, _ = score_target(fitted.model, run.target, fitted.recipe, run.cfg, run.runtime, run.task, run.skips)
    return run.task.metrics(y, scores, run.data.labels, threshold, run.cfg.eval.n_boot, run.cfg.train.seed)


def _validation_scores(run: RunContext, fitted: Fitted, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """(targets, scores) of the fitted model on the validation split (for a decision threshold)."""
    scored = RunFitter(run, out).scores(fitted.model, fitted.recipe, "val")
    return scored.y, scored.scores


def resume(out: str | Path) -> RunSummary:
    """Continue an interrupted ``train`` from the checkpoint in ``out`` with the config saved there."""
    ckpt = load_checkpoint(Path(out))
    cfg = RunConfig.from_dict(ckpt.state["config"])
    data = prepare_data(cfg)
    logger.info("resuming %s after epoch %d of %d", out, ckpt.state["epoch"], cfg.train.epochs)
    return train(cfg, out, data, resume=ckpt)
