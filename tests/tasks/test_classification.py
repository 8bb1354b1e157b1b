"""The classification task plug-in, and the task registry the runner, train loop and predict ask."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch

from headstart.config import RunConfig
from headstart.errors import HeadstartError
from headstart.tasks import get_task, known_tasks
from headstart.tasks.classification import fit_temperature

TASK = get_task("classification")
LABELS = ["ok", "defect"]


def test_unknown_task_is_refused_with_the_known_ones_and_a_suggestion() -> None:
    assert known_tasks()[0] == "classification"
    with pytest.raises(HeadstartError, match=r"unknown task 'clasification'.*did you mean classification\?"):
        get_task("clasification")
    with pytest.raises(HeadstartError, match=r"unknown task 'clasification'"):
        RunConfig.from_dict({"task": {"kind": "clasification"}})


def test_scores_are_softmax_probabilities_and_decisions_follow_the_threshold() -> None:
    proba = TASK.scores(torch.tensor([[2.0, 0.0], [0.0, 0.5]])).numpy()
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert TASK.decide(proba, LABELS, None).tolist() == [0, 1]
    assert TASK.decide(proba, LABELS, 0.05).tolist() == [1, 1]  # p(defect)=0.12 clears a 0.05 threshold
    record = TASK.record(proba[0], LABELS, None)
    assert record["label"] == "ok" and record["probabilities"]["defect"] == pytest.approx(float(proba[0, 1]))
    assert TASK.record(proba[0], LABELS, 0.05)["label"] == "defect"


def test_predictions_csv_has_one_row_per_example_with_the_decision_and_confidence() -> None:
    proba = np.array([[0.9, 0.1], [0.3, 0.7]])
    text = TASK.predictions_csv(["a.png", "b.png"], np.array([0, 0]), proba, LABELS, None)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["id"], r["true"], r["pred"], float(r["confidence"])) for r in rows] == [
        ("a.png", "ok", "ok", 0.9),
        ("b.png", "ok", "defect", 0.7),
    ]
    assert float(rows[1]["p_ok"]) == 0.3


def test_validation_record_and_best_epoch_key() -> None:
    record = TASK.validate(np.array([0, 1, 1]), np.array([[0.8, 0.2], [0.4, 0.6], [0.6, 0.4]]), LABELS)
    assert record["val_accuracy"] == pytest.approx(2 / 3)
    assert record["val_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.6, 0.4])))
    better = {**record, "val_loss": record["val_loss"] - 0.1}
    assert TASK.select(better) > TASK.select(record)  # same accuracy, lower loss wins


def test_a_threshold_on_a_multiclass_run_is_refused_before_any_work() -> None:
    cfg = RunConfig.from_dict({"data": {"source": "x"}, "eval": {"threshold": "f1"}})

    class ThreeClasses:
        labels = ["a", "b", "c"]

    with pytest.raises(HeadstartError, match="tunes a binary decision threshold, but 'x' has 3 classes"):
        TASK.check(cfg, ThreeClasses())


def test_temperature_softens_an_overconfident_head() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    logits = np.stack([np.zeros(400), np.where(rng.random(400) < 0.75, 2 * y - 1, 1 - 2 * y) * 8.0], 1)
    assert fit_temperature(logits, y) > 2.0  # 75% right at +-8 logits: far too sure, so T > 1
