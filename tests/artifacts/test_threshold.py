import csv
import dataclasses
import json
from pathlib import Path

import pytest

from headstart import runner
from headstart.artifacts import evaluate_run, load_run
from headstart.config import RunConfig
from headstart.errors import HeadstartError


def test_tuned_threshold_is_saved_used_for_metrics_and_predictions(tiny_config: RunConfig, tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        tiny_config,
        strategy=dataclasses.replace(tiny_config.strategy, name="linear-probe"),
        eval=dataclasses.replace(tiny_config.eval, threshold="recall:1.0"),
    )
    summary = runner.train(cfg, tmp_path / "t")
    manifest = json.loads((summary.out / "headstart.json").read_text())
    t = manifest["threshold"]
    assert t is not None and summary.metrics["threshold"] == t
    rows = list(csv.DictReader((summary.out / "predictions.csv").open()))
    labels = manifest["labels"]
    for r in rows:  # the saved predictions follow the threshold, not the argmax
        assert r["pred"] == (labels[1] if float(r[f"p_{labels[1]}"]) >= t else labels[0])
    run = load_run(summary.out)
    assert evaluate_run(run).metrics["confusion_matrix"] == summary.metrics["confusion_matrix"]


def test_threshold_needs_a_binary_task(text_config: RunConfig, tmp_path: Path) -> None:
    cfg = dataclasses.replace(text_config, eval=dataclasses.replace(text_config.eval, threshold="f1"))
    with pytest.raises(HeadstartError, match="binary decision threshold.*3 classes"):
        runner.train(cfg, tmp_path / "x")
