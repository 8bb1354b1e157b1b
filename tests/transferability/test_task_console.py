"""``rank``, ``advise`` and ``shift`` for regression and multi-label data, through the installed console script
on small real subsets: ELPV cells' defect probability (``builtin:elpv-severity``) and Fashion-MNIST items
composed two to four per image (``builtin:fashion-multilabel``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.console import headstart, refused

BACKBONES = "mobilenet_v2,random:mobilenet_v2"
WIDE = "200"  # COLUMNS: rich wraps table cells at the default 80 columns


def _rows(result: subprocess.CompletedProcess) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def _check_rows(rows: list[dict[str, Any]], task: str, metric: str) -> None:
    """The pretrained backbone beats its random-weights control; numbers are typed, undefined estimators None."""
    assert [r["backbone"] for r in rows] == ["mobilenet_v2", "random:mobilenet_v2"]  # best LogME first
    pre, rnd = rows
    assert pre["logme"] > rnd["logme"] and pre["probe_score"] > rnd["probe_score"]
    for r in rows:
        assert r["task"] == task and r["metric"] == metric
        assert r[f"probe_{metric}"] == r["probe_score"] and r[f"knn_{metric}"] == r["knn_score"]
        assert all(type(r[k]) is float for k in ("logme", "knn_score", "probe_score", "seconds")), r
        assert type(r["feature_dim"]) is int and r["feature_dim"] == 1280
        assert r["hscore"] is None and r["leep"] is None and r["nce"] is None  # classes only
        assert r["feature_cache_hit"] is False
    assert type(pre["source_confidence"]) is float and rnd["source_confidence"] is None  # no head on the control


def test_regression_rank_then_advise_on_elpv_severity() -> None:
    data = ["builtin:elpv-severity", "--task", "regression", "--limit-per-class", "100", "--backbones", BACKBONES]
    rows = _rows(headstart("rank", *data, "--format", "json"))
    _check_rows(rows, "regression", "r2")
    assert -1.0 < rows[1]["probe_score"] < rows[0]["probe_score"] <= 1.0  # R2 on validation
    table = headstart("rank", *data, COLUMNS=WIDE)  # every feature from the cache now
    assert table.returncode == 0, table.stderr
    text = " ".join(table.stdout.split())
    assert "kNN R2" in text and "probe R2" in text and "(cached)" in text
    assert "H-score, LEEP and NCE are defined for single-label classes only: - for --task regression" in text
    result = headstart("advise", *data, "--format", "json")
    assert result.returncode == 0, result.stderr
    advice = json.loads(result.stdout)
    assert advice["backbone"] == "mobilenet_v2" and advice["strategy"] != "scratch"
    assert "has the best linear-probe R2 on validation" in " ".join(advice["reasons"])
    facts = advice["facts"]
    assert facts["task"] == "regression" and facts["counted_per"] == "value range" and facts["num_classes"] == 1
    assert type(facts["min_train_per_class"]) is int and facts["min_train_per_class"] > 0
    assert type(facts["n_train"]) is int and type(facts["source_confidence"]) is float


def test_multilabel_rank_then_advise_on_composed_fashion_items() -> None:
    data = ["builtin:fashion-multilabel", "--task", "multilabel", "--limit-per-class", "20", "--backbones", BACKBONES]
    rows = _rows(headstart("rank", *data, "--format", "json"))
    _check_rows(rows, "multilabel", "mean_average_precision")
    assert 0.0 < rows[1]["probe_score"] < rows[0]["probe_score"] <= 1.0
    result = headstart("advise", *data, COLUMNS=WIDE)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "backbone mobilenet_v2, strategy" in text
    assert "has the best linear-probe mean average precision on validation" in text
    assert "run: headstart train builtin:fashion-multilabel --task multilabel --backbone mobilenet_v2" in text


@pytest.mark.parametrize(
    ("args", "task"), [(["--task", "regression"], "regression"), (["--set", "task.kind=multilabel"], "multilabel")]
)
def test_shift_refuses_other_tasks_before_any_work(args: list[str], task: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = headstart("shift", "builtin:elpv-severity", "builtin:elpv", *args, HEADSTART_CACHE_DIR=str(cache))
    refused(result, "headstart shift supports --task classification only", f"not --task {task}")
    assert not cache.exists()  # no feature was extracted
