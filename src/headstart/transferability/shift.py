"""``headstart shift``: how different two datasets look to one backbone.

Three views, from cached features:

* **proxy A-distance** (Ben-David et al. 2007/2010): a linear classifier learns to tell source
  from target features; with held-out error ``e``, ``PAD = 2 (1 - 2 e)``: 0 when the two are
  indistinguishable, 2 when they are perfectly separable.
* **per-feature shift**: the standardized mean difference of every feature dimension (how many
  pooled standard deviations its mean moved) and the log ratio of its variances.
* **label transfer**, when both datasets have the same classes: a linear probe fitted on the
  source's training split, scored on the source's test split and on every target example; the
  drop is what the shift costs a model that is not adapted.

Classification data only (:data:`SHIFT_TASKS`): another ``task.kind`` is refused before any work.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from headstart.config import RunConfig
from headstart.data.dataset import Dataset
from headstart.data.loader import SkipLog
from headstart.engine.runtime import resolve_runtime
from headstart.errors import HeadstartError
from headstart.tasks.softmax_probe import fit_probe
from headstart.transferability.features import Candidate, candidate_features

__all__ = ["ShiftReport", "SHIFT_TASKS", "check_shift_task", "proxy_a_distance", "feature_shift", "measure_shift"]

MEDIUM_EFFECT = 0.5  # Cohen's "medium" standardized mean difference
SHIFT_TASKS = ("classification",)  # the probe-transfer drop is a class accuracy


def check_shift_task(task: str) -> None:
    """Refuse a task ``shift`` does not measure (anything but classification), naming what it supports."""
    if task not in SHIFT_TASKS:
        raise HeadstartError(
            f"headstart shift supports --task {' / '.join(SHIFT_TASKS)} only (its probe-transfer drop is a class "
            f"accuracy), not --task {task}; leave task.kind at classification to compare the two sets "
            "(the proxy A-distance and feature shift do not read the labels), or rank each set with "
            f"headstart rank --task {task}"
        )


@dataclass
class ShiftReport:
    backbone: str
    source: str
    target: str
    n_source: int
    n_target: int
    proxy_a_distance: float  # 0 (same) .. 2 (perfectly separable)
    domain_accuracy: float  # held-out accuracy of the source-vs-target classifier
    feature_shift: dict[str, float]  # summary of per-feature mean and variance shift
    transfer: dict[str, Any] | None  # probe trained on source, tested on both (same classes only)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def proxy_a_distance(source: np.ndarray, target: np.ndarray, seed: int = 0, folds: int = 5) -> tuple[float, float]:
    """``(PAD, domain accuracy)`` from a cross-validated logistic regression separating the two sets.

    The larger set is subsampled to the size of the smaller one, so chance accuracy is 0.5.
    """
    if min(len(source), len(target)) < folds:
        raise HeadstartError(f"proxy A-distance needs at least {folds} examples in each dataset")
    if source.shape[1] != target.shape[1]:
        raise HeadstartError(f"feature sizes differ ({source.shape[1]} vs {target.shape[1]}); use one backbone")
    rng = np.random.default_rng(seed)
    n = min(len(source), len(target))
    x = np.concatenate([source[rng.permutation(len(source))[:n]], target[rng.permutation(len(target))[:n]]])
    y = np.repeat([0, 1], n)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    pred = cross_val_predict(clf, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    error = float((pred != y).mean())
    return float(np.clip(2.0 * (1.0 - 2.0 * error), 0.0, 2.0)), 1.0 - error


def feature_shift(source: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Per-feature standardized mean difference (SMD) and log variance ratio, summarized."""
    s, t = source.astype(np.float64), target.astype(np.float64)
    vs, vt = s.var(0), t.var(0)
    smd = np.abs(s.mean(0) - t.mean(0)) / np.sqrt((vs + vt) / 2 + 1e-12)
    log_ratio = np.log((vt + 1e-12) / (vs + 1e-12))
    return {
        "median_smd": float(np.median(smd)),
        "p90_smd": float(np.quantile(smd, 0.9)),
        "share_smd_over_0.5": float((smd > MEDIUM_EFFECT).mean()),
        "median_abs_log_var_ratio": float(np.median(np.abs(log_ratio))),
    }


def _transfer(
    src: Dataset, src_splits: dict[str, np.ndarray], fs: Any, tgt: Dataset, ft: Any, cfg: RunConfig
) -> dict[str, Any] | None:
    if list(src.labels) != list(tgt.labels):
        return None
    tr = src_splits["train"][fs.valid[src_splits["train"]]]
    va = src_splits["val"][fs.valid[src_splits["val"]]]
    te = src_splits["test"][fs.valid[src_splits["test"]]]
    fit = fit_probe(
        fs.features[tr], src.targets[tr], fs.features[va], src.targets[va], len(src.labels), cfg.strategy.probe_cs
    )

    def accuracy(x: np.ndarray, y: np.ndarray) -> float:
        return float(((x @ fit.weight.T + fit.bias).argmax(1) == y).mean())

    on_source = accuracy(fs.features[te].astype(np.float64), src.targets[te])
    on_target = accuracy(ft.features[ft.valid].astype(np.float64), tgt.targets[ft.valid])
    return {"source_test_accuracy": on_source, "target_accuracy": on_target, "drop": on_source - on_target}


def measure_shift(
    cfg: RunConfig,
    candidate: Candidate,
    source: tuple[Dataset, dict[str, np.ndarray]],
    target: Dataset,
) -> ShiftReport:
    """Compare ``source`` (prepared, with splits) and ``target`` through ``candidate``'s features."""
    check_shift_task(cfg.task.kind)
    start = time.perf_counter()
    runtime = resolve_runtime(cfg.train)
    src, src_splits = source
    fs = candidate_features(candidate, src, cfg, runtime, SkipLog(), src.fingerprint())
    ft = candidate_features(candidate, target, cfg, runtime, SkipLog(), target.fingerprint())
    xs, xt = fs.features[fs.valid], ft.features[ft.valid]
    pad, domain_acc = proxy_a_distance(xs, xt, seed=cfg.data.seed)
    return ShiftReport(
        backbone=candidate.name,
        source=src.source,
        target=target.source,
        n_source=len(xs),
        n_target=len(xt),
        proxy_a_distance=pad,
        domain_accuracy=domain_acc,
        feature_shift=feature_shift(xs, xt),
        transfer=_transfer(src, src_splits, fs, target, ft, cfg),
        seconds=time.perf_counter() - start,
    )
