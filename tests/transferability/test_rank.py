"""``rank_backbones``: every estimator per candidate, sorted by LogME, through the feature cache."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from headstart.config import RunConfig
from headstart.engine import cache_dir
from headstart.errors import HeadstartError
from headstart.runner import prepare_data
from headstart.transferability.features import CandidateFeatures, parse_candidates
from headstart.transferability.rank import (
    RANK_COLUMNS,
    RankRow,
    rank_backbones,
    rank_columns,
    rank_table_rows,
    score_features,
    scoring_for,
)


def _done_rows(entry: Path) -> np.ndarray:
    """The rows a feature-cache entry holds (its ``done`` mask), in order."""
    return np.flatnonzero(load_file(str(entry))["done"])


def _blobs(sep: float, n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 8))
    x[np.arange(n), y] += sep  # class k moves along axis k
    return x.astype(np.float32), y


def test_score_features_uses_train_for_estimators_and_val_for_accuracies() -> None:
    x, y = _blobs(6.0)
    splits = {"train": np.arange(0, 40), "val": np.arange(40, 60), "test": np.arange(0)}
    valid = np.ones(60, dtype=bool)
    proba = np.eye(3)[y] * 0.9 + 0.1 / 3
    scores = score_features(CandidateFeatures(x, valid, proba, False, 0.0), y, splits, 3, [0.1, 1.0])
    assert scores["knn_score"] == 1.0 and scores["probe_score"] == 1.0  # accuracies for classification
    assert scores["nce"] == 0.0  # the source prediction determines the label
    assert scores["source_confidence"] == np.float64(0.9 + 0.1 / 3).item()
    noisy = score_features(CandidateFeatures(*_blobs(0.0)[:1], valid, None, False, 0.0), y, splits, 3, [0.1, 1.0])
    assert noisy["logme"] < scores["logme"] and noisy["hscore"] < scores["hscore"]
    assert noisy["leep"] is None and noisy["nce"] is None


def test_unreadable_examples_are_left_out() -> None:
    x, y = _blobs(6.0)
    x[5] = np.nan  # what an unreadable image's row must never feed into an estimator
    valid = np.ones(60, dtype=bool)
    valid[5] = False
    splits = {"train": np.arange(0, 40), "val": np.arange(40, 60), "test": np.arange(0)}
    scores = score_features(CandidateFeatures(x, valid, None, False, 0.0), y, splits, 3, [1.0])
    assert all(v is None or math.isfinite(v) for v in scores.values())


def test_pretrained_ranks_above_its_random_control_on_real_cells(tiny_config: RunConfig) -> None:
    data = prepare_data(tiny_config)
    cands = parse_candidates("random:efficientnet_lite0,efficientnet_lite0", "image")
    rows = rank_backbones(tiny_config, cands, data)
    assert [r.backbone for r in rows] == ["efficientnet_lite0", "random:efficientnet_lite0"]
    pre, rnd = rows
    assert pre.logme > rnd.logme
    assert pre.leep is not None and pre.source_confidence is not None and rnd.leep is None
    assert pre.feature_dim == 1280 and not pre.feature_cache_hit
    cells = rank_table_rows(rows)
    assert len(cells[0]) == len(RANK_COLUMNS) and cells[1][4] == "-"
    again = rank_backbones(tiny_config, cands[1:], data)
    assert again[0].feature_cache_hit and again[0].logme == pre.logme
    # only the train and validation rows were extracted: ranking never pays for the test split
    _, splits = data
    for path in (cache_dir() / "features").glob("*.safetensors"):
        np.testing.assert_array_equal(_done_rows(path), np.sort(np.concatenate([splits["train"], splits["val"]])))


def test_text_candidates_have_no_source_head(text_config: RunConfig) -> None:
    rows = rank_backbones(text_config, parse_candidates("minilm", "text"), prepare_data(text_config))
    (row,) = rows
    assert row.feature_dim == 384 and row.leep is None and row.source_confidence is None
    n_val = len(prepare_data(text_config)[1]["val"])  # an accuracy over n_val examples: a multiple of 1/n_val
    assert abs(row.probe_score * n_val - round(row.probe_score * n_val)) < 1e-9 and math.isfinite(row.logme)


@pytest.mark.parametrize("train_precision", ["bf16", "fp32"])
def test_a_probe_after_rank_extracts_only_the_test_split(tiny_config: RunConfig, train_precision: str) -> None:
    """rank and the probe's fitting features share one cache entry (both in the training precision);
    the probe then extracts only the test split, in fp32, for the probabilities it records: a new entry where
    training runs in bf16, rows added to rank's own entry where training runs in fp32 (a CPU without native bf16:
    ``train.precision=auto`` is fp32 there). Both precisions are pinned, so the test means the same on every CPU."""
    import dataclasses

    from headstart import runner

    cfg = dataclasses.replace(
        tiny_config,
        model=dataclasses.replace(tiny_config.model, backbone="mobilenet_v2"),
        strategy=dataclasses.replace(tiny_config.strategy, name="linear-probe"),
        train=dataclasses.replace(tiny_config.train, precision=train_precision),
    )
    data = prepare_data(cfg)
    rank_backbones(cfg, parse_candidates("mobilenet_v2", "image"), data)
    before = set((cache_dir() / "features").glob("*.safetensors"))
    ranked = {f: _done_rows(f) for f in before}
    summary = runner.train(cfg, cache_dir().parent / "probe", data)
    after = set((cache_dir() / "features").glob("*.safetensors"))
    assert summary.feature_cache_hit is False  # the test features were new
    if train_precision == "bf16":
        (test_file,) = after - before  # one new entry: the test split's fp32 features
        np.testing.assert_array_equal(_done_rows(test_file), data[1]["test"])
        return
    assert after == before  # fp32 fitting features: the test rows join rank's entry
    grown = {f: rows for f in after if len(rows := _done_rows(f)) > len(ranked[f])}
    ((entry, rows),) = grown.items()  # exactly one entry grew
    np.testing.assert_array_equal(np.setdiff1d(rows, ranked[entry]), np.sort(data[1]["test"]))


def test_score_features_for_regression_and_multilabel_targets() -> None:
    """Other tasks: LogME, kNN and the probe in the task's terms; H-score, LEEP and NCE None even with a source
    head; the source head's confidence is still reported."""
    x, y = _blobs(6.0)
    splits = {"train": np.arange(0, 40), "val": np.arange(40, 60), "test": np.arange(0)}
    valid = np.ones(60, dtype=bool)
    proba = np.eye(3)[y] * 0.9 + 0.1 / 3
    values = (y + 0.1 * np.random.default_rng(1).normal(size=60)).astype(np.float32)  # a real value per class
    multi_hot = np.eye(3, dtype=np.float32)[y]
    multi_hot[::4, 0] = 1.0  # a second label on some rows
    for task, targets, best in (("regression", values, 0.9), ("multilabel", multi_hot, 0.9)):
        scores = score_features(CandidateFeatures(x, valid, proba, False, 0.0), targets, splits, 3, [0.1, 1.0], task)
        assert scores["hscore"] is None and scores["leep"] is None and scores["nce"] is None
        assert scores["source_confidence"] == pytest.approx(0.9 + 0.1 / 3)
        probe, knn, logme = (float(scores[k] or 0.0) for k in ("probe_score", "knn_score", "logme"))
        assert probe > best and knn > best  # R2, mean average precision
        noise = CandidateFeatures(_blobs(0.0)[0], valid, None, False, 0.0)
        noisy = score_features(noise, targets, splits, 3, [0.1, 1.0], task)
        assert float(noisy["logme"] or 0.0) < logme and float(noisy["probe_score"] or 0.0) < probe


def test_rank_rows_name_the_tasks_metric() -> None:
    row = RankRow("b", True, 8, -1.2, None, None, None, 0.3, 0.41, 0.52, 1.0, False, task="regression")
    data = row.to_dict()
    assert data["metric"] == "r2" and data["probe_r2"] == 0.52 and data["knn_r2"] == 0.41
    assert data["hscore"] is None and row.probe_accuracy is None
    assert rank_columns("regression")[6:8] == ["kNN R2", "probe R2"]
    assert rank_columns("multilabel")[6:8] == ["kNN mAP", "probe mAP"]
    assert rank_table_rows([row])[0][3] == "-"
    classes = RankRow("b", True, 8, -1.2, 0.5, None, None, None, 0.8, 0.9, 1.0, False)
    assert classes.probe_accuracy == 0.9 and classes.to_dict()["probe_accuracy"] == 0.9
    assert RANK_COLUMNS == rank_columns("classification")
    with pytest.raises(HeadstartError, match="rank has no estimators for --task ordinal; it scores classification"):
        scoring_for("ordinal")
