import doctest

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score

import headstart.metrics.threshold as threshold
from headstart.errors import HeadstartError
from headstart.metrics import parse_objective, tune_threshold


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("f1", ("f1", None)), (" F1 ", ("f1", None)), ("recall:0.9", ("recall", 0.9)), ("recall:1", ("recall", 1.0))],
)
def test_parse_objective(text: str, parsed: tuple[str, float | None]) -> None:
    assert parse_objective(text) == parsed


@pytest.mark.parametrize("text", ["f2", "recall", "recall:", "recall:0", "recall:1.5", "recall:x", "precision:0.9"])
def test_bad_objective_lists_the_choices(text: str) -> None:
    with pytest.raises(HeadstartError, match=r"unknown threshold objective .*'f1'.*'recall:R' with 0 < R <= 1"):
        parse_objective(text)
    with pytest.raises(HeadstartError, match="unknown threshold objective"):
        tune_threshold(np.array([0, 1]), np.array([0.2, 0.8]), text)


def test_f1_optimum_on_a_constructed_example() -> None:
    # sorted scores with labels: .05(0) .2(0) .3(1) .45(0) .5(0) .6(1) .7(1) .8(0) .9(1)
    # t=.6 -> tp 3 fp 1 fn 1 -> F1 6/8 = .75 ; t=.3 -> tp 4 fp 3 fn 0 -> 8/11 = .727 ; t=.9 -> 2/5 = .4
    y = np.array([0, 0, 1, 0, 0, 1, 1, 0, 1])
    p = np.array([0.05, 0.2, 0.3, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9])
    t = tune_threshold(y, p)
    assert t == 0.6
    assert f1_score(y, p >= t) == pytest.approx(0.75)


def test_f1_optimum_matches_brute_force_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.round(np.clip(0.3 * y + rng.normal(0.35, 0.2, 300), 0, 1), 2)  # many tied scores
    best = max(f1_score(y, p >= c) for c in np.unique(p))
    t = tune_threshold(y, p, "f1")
    assert t in set(np.unique(p).tolist())
    assert f1_score(y, p >= t) == pytest.approx(best)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.95, 1.0])
def test_recall_target_is_met_at_the_highest_threshold(target: float) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.round(np.clip(0.3 * y + rng.normal(0.35, 0.2, 200), 0, 1), 2)
    t = tune_threshold(y, p, f"recall:{target}")
    assert recall_score(y, p >= t) >= target
    higher = np.unique(p)[np.unique(p) > t]
    assert all(recall_score(y, p >= c) < target for c in higher)  # nothing stricter still meets it


def test_rejects_what_it_cannot_tune() -> None:
    with pytest.raises(HeadstartError, match=r"binary labels 0/1, got \[2\]"):
        tune_threshold(np.array([0, 1, 2]), np.array([0.1, 0.5, 0.9]))
    with pytest.raises(HeadstartError, match="at least one example of class 1"):
        tune_threshold(np.array([0, 0]), np.array([0.1, 0.5]))
    with pytest.raises(HeadstartError, match="equal length"):
        tune_threshold(np.array([0, 1]), np.array([0.1, 0.5, 0.9]))


def test_docstring_examples() -> None:
    assert doctest.testmod(threshold).failed == 0
