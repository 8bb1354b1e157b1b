"""What a finished run writes: the manifest, metrics, history, splits, plan, test predictions, the files the
recipe's plug-in carries with the weights (an encoder's tokenizer, a TF-IDF vocabulary), TensorBoard files,
and the report once the run is on disk.

:func:`run_files` turns a fitted run into :class:`~headstart.artifacts.run_dir.RunFiles` for
:func:`~headstart.artifacts.run_dir.write_run`; nothing here branches on a modality or a task.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from headstart.artifacts.model_card import card_file
from headstart.artifacts.names import PLAN, PREDICTIONS, TARGET_METRICS
from headstart.artifacts.run_dir import RunFiles, package_versions
from headstart.backbones.catalog import backbone_identity
from headstart.config import RunConfig
from headstart.data.splits import splits_to_json
from headstart.engine.checkpoint import data_identity
from headstart.engine.fitting import Fitted, RunContext
from headstart.engine.tensorboard import TB_DIR, TensorBoardLog
from headstart.modalities import recipe_kind
from headstart.report.html import write_run_report

__all__ = ["PREDICTIONS", "run_files", "run_manifest", "write_report", "tensorboard_folder"]

logger = logging.getLogger(__name__)


def run_manifest(run: RunContext, fitted: Fitted, metrics: dict[str, Any]) -> dict[str, Any]:
    """``headstart.json``: what the run is (backbone, recipe, labels, task, strategy, config), what it scored,
    where and with what it ran, and the data it saw."""
    data = run.data
    return {
        "backbone": backbone_identity(run.spec),
        "recipe": fitted.recipe.to_dict(),
        "checkpoint_recipe": fitted.checkpoint_recipe.to_dict(),
        "labels": data.labels,
        "task": run.task.name,
        "task_state": run.task.state,  # what the task fitted to the training targets (regression: mean, std)
        "strategy": run.cfg.strategy.name,
        "config": run.cfg.to_dict(),
        "metrics": metrics,
        "runtime": run.runtime.describe(),
        "versions": package_versions(),
        "data": {
            "source": data.source,
            "fingerprint": run.fingerprint,
            "identity": data_identity(data, run.splits),  # examples and splits: what compare --resume checks
            "n": len(data),
            **run.task.target_summary(data),  # class counts, value range, label counts
            "split_sizes": {k: len(v) for k, v in run.splits.items()},
            "skipped_unreadable": sorted(run.skips.items.values()),
            **run.modality.data_facts(data, fitted.recipe),
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_files(
    run: RunContext,
    fitted: Fitted,
    summary: Any,
    threshold: float | None,
    plan: tuple[list[dict[str, Any]], str],
    resumed: bool,
) -> RunFiles:
    """Everything the run directory of ``summary`` (a :class:`~headstart.runner.RunSummary`) holds.
    ``plan``: the plan's rows and their markdown table."""
    rows, table = plan
    manifest = run_manifest(run, fitted, summary.metrics)
    manifest.update(
        best_epoch=fitted.best_epoch,
        seconds=summary.seconds,
        trainable_params=summary.trainable_params,
        feature_cache_hit=summary.feature_cache_hit,
        plan=rows,
        resumed=resumed,
        threshold=threshold,
        **_target_fields(run, summary),
        **fitted.extra,  # lp-ft's temperature, a baseline's identity, ...
    )
    test, labels = fitted.test, run.data.labels
    ids = [run.data.ids[int(i)] for i in test.index]
    predictions = run.task.predictions_csv(ids, test.y, test.scores, labels, threshold)
    texts, folders = recipe_kind(fitted.recipe).run_files(fitted.model, fitted.recipe)
    if summary.target_metrics is not None:
        texts = {**texts, TARGET_METRICS: json.dumps(summary.target_metrics, indent=2, allow_nan=True) + "\n"}
    return RunFiles(
        fitted.model,
        manifest,
        summary.metrics,
        fitted.history,
        splits_to_json(run.data, run.splits, run.cfg.data.seed),
        extra={PLAN: table, PREDICTIONS: predictions, **card_file(manifest, summary.metrics, summary.out), **texts},
        folders={**folders, **tensorboard_folder(run.cfg, summary.out, fitted.history)},
    )


def _target_fields(run: RunContext, summary: Any) -> dict[str, Any]:
    """``headstart.json`` ``target``: the --target data (and its metrics when labelled); nothing without one."""
    if run.target is None:
        return {}
    return {"target": {**run.target.describe(), "metrics": summary.target_metrics}}


def write_report(run_dir: Path, data: Any | None) -> Path | None:
    """``report.html`` for a written run. The run is already safe on disk, so a failure here only warns."""
    try:
        return write_run_report(run_dir, _examples_of(data) if data is not None else None)
    except Exception as exc:  # noqa: BLE001 - a plotting problem must not fail a finished training run
        logger.warning(
            "could not write %s/report.html (%s: %s); the run itself is complete", run_dir, type(exc).__name__, exc
        )
        return None


def _examples_of(data: Any) -> Callable[[str], Any]:
    """Look up an example by id as the report shows it (an image array, a text; None when unreadable)."""
    position = {id_: i for i, id_ in enumerate(data.ids)}
    return lambda id_: data.example(position[id_]) if id_ in position else None


def tensorboard_folder(cfg: RunConfig, out: Path, history: list[dict]) -> dict[str, Callable[[Path], None]]:
    """``tb/``: the train loop's live event files (kept when the run is written), or the history at the end."""
    if cfg.train.log != "tensorboard":
        return {}
    live = out / TB_DIR

    def write(folder: Path) -> None:
        if live.is_dir():
            shutil.copytree(live, folder, dirs_exist_ok=True)
            return
        log = TensorBoardLog(folder)
        for record in history:
            log.log(record)
        log.close()

    return {TB_DIR: write}
