"""Several runs at once: repeated seeds (``--seeds N``) and strategy comparisons (``headstart compare``).

One seed and one split can swing a small-data result by several points, so ``--seeds N`` repeats
a run with seeds ``seed .. seed+N-1`` (each seed draws its own split and initialization) and
reports the mean, the standard deviation and a 95% interval of the mean across seeds. With one
seed, intervals come from bootstrapping the test set (``metrics.json`` ``ci95``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from headstart import runner
from headstart.artifacts.out_dir import check_out, claim_out
from headstart.config import RunConfig
from headstart.data.dataset import Dataset
from headstart.report.metric_keys import summary_keys, task_of_metrics
from headstart.report.verdict import verdict
from headstart.tasks import get_task

__all__ = [
    "SUMMARY_METRICS",
    "summary_metrics",
    "Comparison",
    "seed_config",
    "train_seeds",
    "check_outs",
    "aggregate",
    "summary_row",
    "compare",
    "write_comparison_files",
]

SUMMARY_METRICS = ("accuracy", "macro_f1", "roc_auc", "balanced_accuracy", "pr_auc", "ece")  # classification's


def summary_metrics(task: str) -> tuple[str, ...]:
    """The metrics a comparison row keeps for ``task``: the task's ``summary`` keys first, then its extra ones
    (classification: :data:`SUMMARY_METRICS`; regression adds RMSE and Pearson, multilabel micro-AP, subset
    accuracy and Hamming loss)."""
    return summary_keys(task, rows=True)


def seed_config(cfg: RunConfig, seed: int) -> RunConfig:
    """The same config with ``seed`` for the split (``data.seed``) and the training (``train.seed``)."""
    return dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, seed=seed), train=dataclasses.replace(cfg.train, seed=seed)
    )


def _seeds(cfg: RunConfig, n: int) -> list[int]:
    return [cfg.train.seed + i for i in range(n)]


def train_seeds(cfg: RunConfig, out: Path, seeds: int) -> list[runner.RunSummary]:
    """One run (``seeds=1``: into ``out``) or one per seed (into ``out/seed-<s>``).

    Every run folder is checked before the first training starts (``check_out``)."""
    if seeds == 1:
        return [runner.train(cfg, out)]
    targets = {s: out / f"seed-{s}" for s in _seeds(cfg, seeds)}
    check_outs(cfg, out, targets.values())
    with claim_out(out, cfg.data.source):
        return [runner.train(seed_config(cfg, s), target) for s, target in targets.items()]


def check_outs(cfg: RunConfig, container: Path, runs: Iterable[Path]) -> None:
    """Refuse an unsafe container folder or run folder before any of the runs starts."""
    check_out(container, cfg.data.source)
    for target in runs:
        check_out(target, cfg.data.source)


def _t975(dof: int) -> float:
    """Student's t 97.5% quantile for ``dof`` degrees of freedom: the half-width factor of a 95% interval of a
    mean over ``dof + 1`` seeds (12.706 for 1, 2.131 for 15, tending to 1.960)."""
    return float(stats.t.ppf(0.975, dof))


def aggregate(summaries: list[runner.RunSummary], task: str | None = None) -> dict[str, Any]:
    """Mean, std and 95% interval of the mean per metric across seeds (``metric``, ``metric_std``, ``ci95``),
    for the metrics of ``task`` (default: the task the first run's metrics belong to)."""
    out: dict[str, Any] = {"seeds": len(summaries), "ci95": {}}
    for key in summary_metrics(task or task_of_metrics(summaries[0].metrics)):
        values = [s.metrics.get(key) for s in summaries]
        if any(v is None for v in values):
            out[key], out[f"{key}_std"] = None, None
            continue
        arr = np.asarray(values, dtype=np.float64)
        mean, std = float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
        out[key], out[f"{key}_std"] = mean, std
        if len(arr) > 1:
            half = _t975(len(arr) - 1) * std / math.sqrt(len(arr))
            out["ci95"][key] = [mean - half, mean + half]
    return out


@dataclass
class Comparison:
    rows: list[dict[str, Any]]  # one per strategy (means over seeds when seeds > 1)
    verdict: str  # "transfer helps: ..." (see report.verdict)
    runs: dict[str, list[runner.RunSummary]]  # strategy -> one summary per seed


def summary_row(name: str, summaries: list[runner.RunSummary]) -> dict[str, Any]:
    """One comparison row: the run's metrics with bootstrap CIs, or (several seeds) their mean, std and CI.

    The metrics are those of the runs' task (:func:`summary_metrics`), which the row records as ``task``."""
    first = summaries[0]
    task = first.task if first.task else task_of_metrics(first.metrics)
    row: dict[str, Any] = {
        "strategy": name,
        "task": task,
        "seconds": float(np.mean([s.seconds for s in summaries])),
        "trainable_params": first.trainable_params,
        "run": str(first.out.parent if len(summaries) > 1 else first.out),
        "n_test": first.metrics["n"],
    }
    if len(summaries) == 1:
        row.update({k: first.metrics.get(k) for k in summary_metrics(task)}, seeds=1)
        row["ci95"] = first.metrics.get("ci95") or {}
        row["warnings"] = first.metrics.get("warnings") or []
    else:
        row.update(aggregate(summaries, task))
    return row


def _run_folder(out: Path, strategy: str, seed: int, seeds: int) -> Path:
    return out / strategy if seeds == 1 else out / strategy / f"seed-{seed}"


def compare(
    cfg: RunConfig,
    strategies: list[str],
    out: Path,
    seeds: int = 1,
    on_start: Callable[[str, int], None] | None = None,
    dataset: Dataset | None = None,
) -> Comparison:
    """Every strategy on the same split per seed (``out/<strategy>`` or ``out/<strategy>/seed-<s>``).

    Every run folder is checked before the first training starts; the caller claims ``out`` itself
    (:func:`~headstart.artifacts.out_dir.claim_out`) for as long as it writes the comparison files.

    ``on_start(strategy, seed)`` is called before each run (the CLI prints progress with it); ``dataset`` is
    in-memory data (the Python API), used instead of reading ``cfg.data.source``."""
    runs: dict[str, list[runner.RunSummary]] = {name: [] for name in strategies}
    check_outs(cfg, out, [_run_folder(out, name, s, seeds) for name in strategies for s in _seeds(cfg, seeds)])
    for seed in _seeds(cfg, seeds):
        seeded = seed_config(cfg, seed)
        prepared = runner.prepare_data(seeded, dataset)
        for name in strategies:
            run_cfg = dataclasses.replace(seeded, strategy=dataclasses.replace(seeded.strategy, name=name))
            target = _run_folder(out, name, seed, seeds)
            if on_start is not None:
                on_start(name, seed)
            runs[name].append(runner.train(run_cfg, target, prepared))
    rows = [summary_row(name, summaries) for name, summaries in runs.items()]
    return Comparison(rows, verdict(rows, get_task(cfg.task.kind).primary), runs)


def write_comparison_files(result: Comparison, out: Path, data: str, cfg: RunConfig) -> Path:
    """``comparison.json``, ``report.md`` and ``report.html`` of a finished comparison in ``out``; returns the HTML."""
    from headstart.report import write_comparison
    from headstart.report.html import write_compare_report

    header = {
        "data": data,
        "backbone": cfg.model.backbone,
        "task": cfg.task.kind,
        "verdict": result.verdict,
        "config": cfg.to_dict(),
    }
    write_comparison(out, result.rows, header)
    run_dirs = [s.out for summaries in result.runs.values() for s in summaries[:1]]
    return write_compare_report(out, result.rows, run_dirs, result.verdict)
