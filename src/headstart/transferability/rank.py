"""``headstart rank``: score candidate backbones on the target data from one forward pass each.

For every candidate: features of the train and validation examples through its own recipe (and
the feature cache, so a later ``linear-probe`` of the chosen backbone extracts only the test
split; the test split is never read here), then the estimators of the run's task (:data:`SCORING`):
LogME on the training split for every task; for classification also H-score and, when the backbone
has a source classifier, LEEP and NCE; on the validation split a cosine kNN and the task's linear
probe fitted on the training split, each scored with the task's metric (accuracy, R2, mean average
precision). Estimators a task does not define are None. Rows are sorted by LogME, the estimator
with the best published agreement with fine-tuning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from headstart.config import RunConfig
from headstart.data.dataset import Dataset
from headstart.data.loader import SkipLog
from headstart.engine import distributed
from headstart.engine.runtime import resolve_runtime
from headstart.errors import HeadstartError
from headstart.tasks.base import DEFAULT_TASK
from headstart.tasks.ridge_probe import RIDGE_ALPHAS, fit_ridge
from headstart.tasks.sigmoid_probe import fit_sigmoid_probe
from headstart.tasks.softmax_probe import fit_probe
from headstart.transferability.estimators import hscore, knn_accuracy, leep, logme, nce
from headstart.transferability.features import Candidate, CandidateFeatures, candidate_features
from headstart.transferability.target_estimators import (
    knn_mean_average_precision,
    knn_r2,
    logme_multilabel,
    logme_regression,
)

__all__ = [
    "RankRow",
    "TaskScoring",
    "SCORING",
    "scoring_for",
    "score_features",
    "ranked_examples",
    "rank_backbones",
    "rank_columns",
    "rank_table_rows",
]

logger = logging.getLogger(__name__)


@dataclass
class RankRow:
    backbone: str  # candidate name (random:<name> for a random-weights control)
    pretrained: bool
    feature_dim: int
    logme: float  # per-example log evidence on the training split (higher is better)
    hscore: float | None  # regularized (shrinkage) H-score on the training split; classification only
    leep: float | None  # needs a source classifier and classes
    nce: float | None  # needs a source classifier and classes
    source_confidence: float | None  # mean max softmax of the source classifier (how familiar the data looks)
    knn_score: float  # cosine kNN, train -> validation, in the task's metric (see ``metric``)
    probe_score: float  # the task's linear probe, train -> validation, in the task's metric
    seconds: float  # features (extraction or cache read) + estimators
    feature_cache_hit: bool
    task: str = DEFAULT_TASK  # classification | regression | multilabel

    @property
    def metric(self) -> str:
        """What ``knn_score`` and ``probe_score`` measure: accuracy, r2 or mean_average_precision."""
        return scoring_for(self.task).metric

    @property
    def probe_accuracy(self) -> float | None:
        """The probe's validation accuracy (classification rows; None where ``probe_score`` is R2 or mAP)."""
        return self.probe_score if self.metric == "accuracy" else None

    @property
    def knn_accuracy(self) -> float | None:
        """The kNN's validation accuracy (classification rows; None where ``knn_score`` is R2 or mAP)."""
        return self.knn_score if self.metric == "accuracy" else None

    def to_dict(self) -> dict[str, Any]:
        """The fields, the metric's name, and the two validation scores under their metric's name too
        (``probe_accuracy``, ``probe_r2``, ``probe_mean_average_precision``, and ``knn_...`` alike)."""
        m = self.metric
        return asdict(self) | {"metric": m, f"knn_{m}": self.knn_score, f"probe_{m}": self.probe_score}


Scorer = Callable[[np.ndarray, np.ndarray], float]  # (train features, train targets) -> score
HeldOut = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]  # train -> validation
Probe = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, list[float]], float]


@dataclass(frozen=True)
class TaskScoring:
    """What ``rank`` measures for one task: a row of :data:`SCORING`."""

    metric: str  # the task's metrics.json key the kNN and the probe report on validation
    name: str  # that metric in words ("the best linear-probe accuracy")
    short: str  # in a column heading ("probe acc")
    words: str  # in the table title ("kNN and probe accuracies on validation")
    logme: Scorer  # on the training split
    knn: HeldOut  # on centred features
    probe: Probe  # (x_train, y_train, x_val, y_val, number of labels, probe Cs)
    hscore: Scorer | None = None  # None: not defined for this task
    source_classes: bool = False  # LEEP and NCE: target classes against the source head's classes
    note: str = "LEEP and NCE need a source classifier head"  # the table footer's word on the None cells


def _probe_accuracy(
    xtr: np.ndarray, ytr: np.ndarray, xva: np.ndarray, yva: np.ndarray, k: int, cs: list[float]
) -> float:
    fit = fit_probe(xtr, ytr, xva, yva, k, cs)
    return max(h["val_accuracy"] for h in fit.history if h["C"] == fit.C)


def _probe_r2(xtr: np.ndarray, ytr: np.ndarray, xva: np.ndarray, yva: np.ndarray, k: int, cs: list[float]) -> float:
    """Validation R2 of the ridge probe (the penalty chosen on validation, as ``linear-probe`` does)."""
    mean, std = float(ytr.mean()), float(ytr.std()) or 1.0
    fit = fit_ridge(xtr, (ytr - mean) / std, xva, (yva - mean) / std, RIDGE_ALPHAS)  # R2 is scale-free
    return next(float(h["val_r2"]) for h in fit.history if h["C"] == fit.C)


def _probe_map(xtr: np.ndarray, ytr: np.ndarray, xva: np.ndarray, yva: np.ndarray, k: int, cs: list[float]) -> float:
    """Validation mean average precision of the one-vs-rest logistic probe."""
    fit = fit_sigmoid_probe(xtr, ytr, xva, yva, cs)
    m_ap = next(h["val_mean_average_precision"] for h in fit.history if h["C"] == fit.C)
    if m_ap is None:
        raise ValueError("no validation example has any label; mean average precision needs a positive")
    return float(m_ap)


def _only_classes(task: str) -> str:
    return f"H-score, LEEP and NCE are defined for single-label classes only: - for --task {task}"


SCORING: dict[str, TaskScoring] = {
    "classification": TaskScoring(
        metric="accuracy",
        name="accuracy",
        short="acc",
        words="accuracies",
        logme=logme,
        knn=knn_accuracy,
        probe=_probe_accuracy,
        hscore=lambda f, y: hscore(f, y, shrinkage=True),  # plain H-score saturates when N < D
        source_classes=True,
    ),
    "regression": TaskScoring(
        metric="r2",
        name="R2",
        short="R2",
        words="R2",
        logme=logme_regression,
        knn=knn_r2,
        probe=_probe_r2,
        note=f"LogME of the standardized target; {_only_classes('regression')}",
    ),
    "multilabel": TaskScoring(
        metric="mean_average_precision",
        name="mean average precision",
        short="mAP",
        words="mean average precision",
        logme=logme_multilabel,
        knn=knn_mean_average_precision,
        probe=_probe_map,
        note=f"LogME is the mean over labels of each label's binary LogME; {_only_classes('multilabel')}",
    ),
}
"""The estimators of each task, by task name."""


def scoring_for(task: str) -> TaskScoring:
    """The estimators of ``task``; a task without any is an error naming the ones rank scores."""
    if task not in SCORING:
        raise HeadstartError(f"rank has no estimators for --task {task}; it scores {', '.join(SCORING)}")
    return SCORING[task]


def score_features(
    cf: CandidateFeatures,
    y: np.ndarray,
    splits: dict[str, np.ndarray],
    num_classes: int,
    cs: list[float],
    task: str = DEFAULT_TASK,
) -> dict[str, float | None]:
    """Every estimator of ``task`` for one candidate's features (None where undefined).

    ``y`` are the task's targets: (N,) int classes, (N,) float values, or (N, L) multi-hot rows.
    Unreadable examples are left out."""
    scoring = scoring_for(task)
    tr = splits["train"][cf.valid[splits["train"]]]
    va = splits["val"][cf.valid[splits["val"]]]
    f_tr, f_va = cf.features[tr].astype(np.float64), cf.features[va].astype(np.float64)
    centre = f_tr.mean(0)  # pooled features after a ReLU all point into one orthant, where cosine
    # similarity barely separates anything
    scores: dict[str, float | None] = {
        "logme": scoring.logme(f_tr, y[tr]),
        "hscore": None if scoring.hscore is None else scoring.hscore(f_tr, y[tr]),
        "leep": None,
        "nce": None,
        "source_confidence": None,
        "knn_score": scoring.knn(f_tr - centre, y[tr], f_va - centre, y[va]),
    }
    if cf.source_proba is not None:
        scores["source_confidence"] = float(cf.source_proba[tr].max(1).mean())
        if scoring.source_classes:
            scores["leep"] = leep(cf.source_proba[tr], y[tr])
            scores["nce"] = nce(cf.source_proba[tr].argmax(1), y[tr])
    scores["probe_score"] = scoring.probe(cf.features[tr], y[tr], cf.features[va], y[va], num_classes, cs)
    return scores


def ranked_examples(splits: dict[str, np.ndarray]) -> np.ndarray:
    """The rows ranking reads (train and validation): the test split is never extracted for it."""
    return np.concatenate([splits["train"], splits["val"]])


def rank_backbones(
    cfg: RunConfig,
    candidates: list[Candidate],
    data: tuple[Dataset, dict[str, np.ndarray]],
    on_start: Any = None,
) -> list[RankRow]:
    """Score every candidate on ``data`` (a prepared dataset and its splits, targets encoded for
    ``cfg.task.kind``); best LogME first."""
    images, splits = data
    task = cfg.task.kind
    scoring_for(task)  # before any extraction
    distributed.setup(cfg.train.device)  # joins torchrun's process group when started by torchrun
    runtime = resolve_runtime(cfg.train)
    fingerprint = images.fingerprint()
    needed = ranked_examples(splits)
    rows = []
    for cand in candidates:
        if on_start is not None:
            on_start(cand.name)
        start = time.perf_counter()
        cf = candidate_features(cand, images, cfg, runtime, SkipLog(), fingerprint, needed)
        try:
            scores = score_features(cf, images.targets, splits, len(images.labels), cfg.strategy.probe_cs, task)
        except ValueError as exc:  # the estimators' input checks, e.g. a class missing from the train split
            raise HeadstartError(f"cannot rank {cand.name} on {images.source!r}: {exc}") from exc
        rows.append(
            RankRow(
                backbone=cand.name,
                pretrained=cand.pretrained,
                feature_dim=int(cf.features.shape[1]),
                seconds=time.perf_counter() - start,
                feature_cache_hit=cf.cached,
                task=task,
                **scores,  # type: ignore[arg-type]
            )
        )
        logger.info("ranked %s: LogME %.4f in %.1f s", cand.name, rows[-1].logme, rows[-1].seconds)
    return sorted(rows, key=lambda r: r.logme, reverse=True)


def rank_columns(task: str = DEFAULT_TASK) -> list[str]:
    """The rank table's headings for ``task`` (the kNN and probe columns name its metric)."""
    short = scoring_for(task).short
    return ["#", "backbone", "LogME", "H-score", "LEEP", "NCE", f"kNN {short}", f"probe {short}", "seconds"]


def rank_table_rows(rows: list[RankRow]) -> list[list[str]]:
    """Display cells per row, in the column order of :func:`rank_columns`; "-" where undefined."""

    def opt(v: float | None, digits: int = 4) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    return [
        [
            str(i + 1),
            r.backbone,
            f"{r.logme:.4f}",
            opt(r.hscore, 2),
            opt(r.leep),
            opt(r.nce),
            f"{r.knn_score:.3f}",
            f"{r.probe_score:.3f}",
            f"{r.seconds:.1f}" + (" (cached)" if r.feature_cache_hit else ""),
        ]
        for i, r in enumerate(rows)
    ]


RANK_COLUMNS = rank_columns()
"""The classification table's headings."""
