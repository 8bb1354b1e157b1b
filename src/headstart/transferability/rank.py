"""``headstart rank``: score candidate backbones on the target data from one forward pass each.

For every candidate: features of the train and validation examples through its own recipe (and
the feature cache, so a later ``linear-probe`` of the chosen backbone extracts only the test
split; the test split is never read here), then on the training split
LogME, H-score and, when the backbone has a source classifier, LEEP and NCE; on the validation
split the accuracy of a cosine kNN and of the linear probe fitted on the training split.
Rows are sorted by LogME, the estimator with the best published agreement with fine-tuning.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from headstart.config import RunConfig
from headstart.data.dataset import Dataset
from headstart.data.loader import SkipLog
from headstart.engine import distributed
from headstart.engine.runtime import resolve_runtime
from headstart.errors import HeadstartError
from headstart.tasks.softmax_probe import fit_probe
from headstart.transferability.estimators import hscore, knn_accuracy, leep, logme, nce
from headstart.transferability.features import Candidate, CandidateFeatures, candidate_features

__all__ = ["RankRow", "score_features", "ranked_examples", "rank_backbones", "rank_table_rows"]

logger = logging.getLogger(__name__)


@dataclass
class RankRow:
    backbone: str  # candidate name (random:<name> for a random-weights control)
    pretrained: bool
    feature_dim: int
    logme: float  # per-example log evidence on the training split (higher is better)
    hscore: float  # regularized (shrinkage) H-score on the training split (higher is better)
    leep: float | None  # needs a source classifier
    nce: float | None  # needs a source classifier
    source_confidence: float | None  # mean max softmax of the source classifier (how familiar the data looks)
    knn_accuracy: float  # cosine kNN, train -> validation
    probe_accuracy: float  # logistic-regression probe, train -> validation
    seconds: float  # features (extraction or cache read) + estimators
    feature_cache_hit: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_features(
    cf: CandidateFeatures, y: np.ndarray, splits: dict[str, np.ndarray], num_classes: int, cs: list[float]
) -> dict[str, float | None]:
    """Every estimator for one candidate's features. Unreadable examples are left out."""
    tr = splits["train"][cf.valid[splits["train"]]]
    va = splits["val"][cf.valid[splits["val"]]]
    f_tr, f_va = cf.features[tr].astype(np.float64), cf.features[va].astype(np.float64)
    scores: dict[str, float | None] = {
        "logme": logme(f_tr, y[tr]),
        "hscore": hscore(f_tr, y[tr], shrinkage=True),  # plain H-score saturates when N < D
        "leep": None,
        "nce": None,
        "source_confidence": None,
        # centred first: pooled features after a ReLU all point into one orthant, where cosine
        # similarity barely separates anything
        "knn_accuracy": knn_accuracy(f_tr - f_tr.mean(0), y[tr], f_va - f_tr.mean(0), y[va]),
    }
    if cf.source_proba is not None:
        scores["leep"] = leep(cf.source_proba[tr], y[tr])
        scores["nce"] = nce(cf.source_proba[tr].argmax(1), y[tr])
        scores["source_confidence"] = float(cf.source_proba[tr].max(1).mean())
    fit = fit_probe(cf.features[tr], y[tr], cf.features[va], y[va], num_classes, cs)
    scores["probe_accuracy"] = max(h["val_accuracy"] for h in fit.history if h["C"] == fit.C)
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
    """Score every candidate on ``data`` (a prepared dataset and its splits); best LogME first."""
    images, splits = data
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
            scores = score_features(cf, images.targets, splits, len(images.labels), cfg.strategy.probe_cs)
        except ValueError as exc:  # the estimators' input checks, e.g. a class missing from the train split
            raise HeadstartError(f"cannot rank {cand.name} on {images.source!r}: {exc}") from exc
        rows.append(
            RankRow(
                backbone=cand.name,
                pretrained=cand.pretrained,
                feature_dim=int(cf.features.shape[1]),
                seconds=time.perf_counter() - start,
                feature_cache_hit=cf.cached,
                **scores,  # type: ignore[arg-type]
            )
        )
        logger.info("ranked %s: LogME %.4f in %.1f s", cand.name, rows[-1].logme, rows[-1].seconds)
    return sorted(rows, key=lambda r: r.logme, reverse=True)


def rank_table_rows(rows: list[RankRow]) -> list[list[str]]:
    """Display cells per row, in the column order of :data:`RANK_COLUMNS`."""

    def opt(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    return [
        [
            str(i + 1),
            r.backbone,
            f"{r.logme:.4f}",
            f"{r.hscore:.2f}",
            opt(r.leep),
            opt(r.nce),
            f"{r.knn_accuracy:.3f}",
            f"{r.probe_accuracy:.3f}",
            f"{r.seconds:.1f}" + (" (cached)" if r.feature_cache_hit else ""),
        ]
        for i, r in enumerate(rows)
    ]


RANK_COLUMNS = ["#", "backbone", "LogME", "H-score", "LEEP", "NCE", "kNN acc", "probe acc", "seconds"]
