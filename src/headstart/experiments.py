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
from headstart.continuation import SubRun, inspect_sub_run, sub_run_state
from headstart.data.dataset import Dataset
from headstart.engine.checkpoint import CHECKPOINT_DIR, data_identity, has_checkpoint
from headstart.errors import HeadstartError, RunInterrupted
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


def check_outs(cfg: RunConfig, container: Path, runs: Iterable[Path], resuming: bool = False) -> None:
    """Refuse an unsafe container folder or run folder before any of the runs starts (``resuming``: an
    interrupted run folder is allowed, it is about to be continued)."""
    check_out(container, cfg.data.source)
    for target in runs:
        check_out(target, cfg.data.source, resuming)


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
    origins = sorted({s.origin for s in summaries})
    if origins != ["trained"]:  # compare --resume took over some of them: the table says so
        row["origin"] = "+".join(origins)
    if len(summaries) == 1:
        row.update({k: first.metrics.get(k) for k in summary_metrics(task)}, seeds=1)
        row["ci95"] = first.metrics.get("ci95") or {}
        row["warnings"] = first.metrics.get("warnings") or []
    else:
        row.update(aggregate(summaries, task))
    _add_target_column(row, summaries, task)
    return row


def _add_target_column(row: dict[str, Any], summaries: list[runner.RunSummary], task: str) -> None:
    """``target_<primary metric>`` (with its interval) when every run scored a labelled ``--target``."""
    if not all(s.target_metrics for s in summaries):
        return
    key = get_task(task).primary
    scored = [dataclasses.replace(s, metrics=s.target_metrics or {}) for s in summaries]
    if len(scored) == 1:
        value, ci = scored[0].metrics.get(key), (scored[0].metrics.get("ci95") or {}).get(key)
        row[f"target_{key}"] = value
    else:
        agg = aggregate(scored, task)
        row[f"target_{key}"], row[f"target_{key}_std"], ci = agg[key], agg[f"{key}_std"], agg["ci95"].get(key)
    if ci is not None:
        row.setdefault("ci95", {})[f"target_{key}"] = ci


def _run_folder(out: Path, strategy: str, seed: int, seeds: int) -> Path:
    return out / strategy if seeds == 1 else out / strategy / f"seed-{seed}"


def _strategy_config(cfg: RunConfig, name: str) -> RunConfig:
    return dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, name=name))


def compare(
    cfg: RunConfig,
    strategies: list[str],
    out: Path,
    seeds: int = 1,
    on_start: Callable[[str, int, str], None] | None = None,
    dataset: Dataset | None = None,
    resume: bool = False,
    resume_hint: str = "the same comparison with --resume",
) -> Comparison:
    """Every strategy on the same split per seed (``out/<strategy>`` or ``out/<strategy>/seed-<s>``).

    Every run folder is checked before the first training starts; the caller claims ``out`` itself
    (:func:`~headstart.artifacts.out_dir.claim_out`) for as long as it writes the comparison files.

    ``resume``: a finished run folder made with the same settings and data is reused, an interrupted one is
    continued from its checkpoint, the others are trained; any mismatch is refused before any work
    (:mod:`headstart.continuation`). Without it, an interrupted run folder is refused, naming ``resume_hint``
    (the command, or call, that continues the comparison); an interrupted run says the same.

    ``on_start(strategy, seed, state)`` is called before each run (``state``: ``new``, ``interrupted`` or
    ``finished``; the CLI prints progress with it); ``dataset`` is in-memory data (the Python API), used
    instead of reading ``cfg.data.source``."""
    from headstart.data.target import check_target
    from headstart.strategies import get_strategy

    for name in strategies:  # an adaptation strategy without --target is refused before the first run
        check_target(_strategy_config(cfg, name), get_strategy(_strategy_config(cfg, name)))
    targets = {(name, s): _run_folder(out, name, s, seeds) for s in _seeds(cfg, seeds) for name in strategies}
    if not resume:
        _refuse_interrupted(list(targets.values()), out, resume_hint)
    check_outs(cfg, out, targets.values(), resuming=resume)
    prepared: dict[int, tuple[Dataset, dict[str, np.ndarray]]] = {}

    def data_of(seed: int) -> tuple[Dataset, dict[str, np.ndarray]]:
        if seed not in prepared:
            prepared[seed] = runner.prepare_data(seed_config(cfg, seed), dataset)
        return prepared[seed]

    found = _inspect(cfg, targets, data_of, out) if resume else {}
    runs: dict[str, list[runner.RunSummary]] = {name: [] for name in strategies}
    for (name, seed), target in targets.items():
        sub = found.get((name, seed), SubRun(target, "new"))
        if on_start is not None:
            on_start(name, seed, sub.state)
        if sub.state == "finished":
            runs[name].append(_reused(sub))
        else:
            runs[name].append(_train(_strategy_config(seed_config(cfg, seed), name), sub, data_of(seed), resume_hint))
        if name == strategies[-1]:
            prepared.pop(seed, None)  # this seed's data is done with
    rows = [summary_row(name, summaries) for name, summaries in runs.items()]
    return Comparison(rows, verdict(rows, get_task(cfg.task.kind).primary), runs)


def _train(
    cfg: RunConfig, sub: SubRun, data: tuple[Dataset, dict[str, np.ndarray]], resume_hint: str
) -> runner.RunSummary:
    """Train (or continue) one run of the comparison; Ctrl-C names the command that continues the comparison."""
    try:
        summary = runner.train(cfg, sub.folder, data, resume=sub.checkpoint)
    except RunInterrupted:
        kept = (
            f"its last epoch's checkpoint is in {sub.folder / CHECKPOINT_DIR}"
            if has_checkpoint(sub.folder)
            else "before its first checkpoint"
        )
        raise RunInterrupted(
            f"the comparison was interrupted during {sub.folder} ({kept}); its finished runs are kept. "
            f"Continue the comparison with: {resume_hint}"
        ) from None
    return dataclasses.replace(summary, origin="resumed") if sub.checkpoint is not None else summary


def _refuse_interrupted(targets: list[Path], out: Path, resume_hint: str) -> None:
    interrupted = [t for t in targets if sub_run_state(t) == "interrupted"]
    if interrupted:
        raise HeadstartError(
            f"{interrupted[0]} holds an interrupted run of the comparison in {out}; continue the comparison with "
            f"{resume_hint} (finished runs are reused, the interrupted one continues from its checkpoint), "
            "or choose another --out (nothing was overwritten)"
        )


def _inspect(
    cfg: RunConfig,
    targets: dict[tuple[str, int], Path],
    data_of: Callable[[int], tuple[Dataset, dict[str, np.ndarray]]],
    out: Path,
) -> dict[tuple[str, int], SubRun]:
    """Every run folder's state, checked against the comparison's settings and data (before any work)."""
    from headstart.backbones import get_backbone

    spec = get_backbone(cfg.model.backbone, cfg.model.weights)
    found = {}
    for (name, seed), target in targets.items():
        resolved = runner.resolve_config(_strategy_config(seed_config(cfg, seed), name), spec)
        found[(name, seed)] = inspect_sub_run(target, resolved.to_dict(), data_identity(*data_of(seed)), out)
    return found


def _reused(sub: SubRun) -> runner.RunSummary:
    """The summary of a finished run folder, read back from its ``headstart.json``."""
    manifest = sub.manifest or {}
    return runner.RunSummary(
        out=sub.folder,
        strategy=manifest["strategy"],
        metrics=manifest["metrics"],
        seconds=float(manifest.get("seconds") or 0.0),
        trainable_params=int(manifest.get("trainable_params") or 0),
        skipped=len((manifest.get("data") or {}).get("skipped_unreadable") or []),
        feature_cache_hit=manifest.get("feature_cache_hit"),
        task=manifest.get("task"),
        origin="reused",
        target_metrics=(manifest.get("target") or {}).get("metrics"),
    )


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
