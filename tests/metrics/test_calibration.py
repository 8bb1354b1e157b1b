import doctest

import numpy as np
import pytest

import headstart.metrics.calibration as calibration
from headstart.errors import HeadstartError
from headstart.metrics import compute_metrics, expected_calibration_error

# Five examples, three classes; 15 bins of width 1/15 (edges ..., 0.4, 0.4667, 0.5333, ..., 0.8, 0.8667, 0.9333, 1):
#   conf 0.90 correct -> bin 13 | conf 0.85 correct -> bin 12 | conf 0.88 wrong -> bin 13
#   conf 0.50 correct -> bin 7  | conf 0.45 wrong   -> bin 6
# bin 13: 2 examples, mean conf 0.89, acc 0.5 -> |gap| 0.39, weight 2/5 -> 0.156
# bin 12: 1 example,  conf 0.85, acc 1 -> 0.15 * 1/5 = 0.03
# bin 7:  conf 0.50, acc 1 -> 0.5 * 1/5 = 0.10 ;  bin 6: conf 0.45, acc 0 -> 0.45 * 1/5 = 0.09
# ECE = 0.156 + 0.03 + 0.10 + 0.09 = 0.376
Y = np.array([0, 1, 2, 0, 1])
PROBA = np.array(
    [
        [0.90, 0.05, 0.05],
        [0.10, 0.85, 0.05],
        [0.10, 0.88, 0.02],
        [0.50, 0.30, 0.20],
        [0.45, 0.35, 0.20],
    ]
)


def test_hand_computed_ece_and_reliability_table() -> None:
    ece, table = expected_calibration_error(Y, PROBA)
    assert ece == pytest.approx(0.376)
    assert table["bin_edges"] == pytest.approx(np.linspace(0, 1, 16).tolist())
    assert len(table["bin_edges"]) == 16
    assert table["bin_index"] == [6, 7, 12, 13]
    assert table["count"] == [1, 1, 1, 2]
    assert table["confidence"] == pytest.approx([0.45, 0.50, 0.85, 0.89])
    assert table["accuracy"] == pytest.approx([0.0, 1.0, 1.0, 0.5])


def test_compute_metrics_reports_the_same_ece() -> None:
    m = compute_metrics(Y, PROBA, ["a", "b", "c"], n_boot=0)
    assert m["ece"] == pytest.approx(0.376)
    assert m["reliability"]["bin_index"] == [6, 7, 12, 13]


def test_confident_and_right_is_calibrated_confident_and_wrong_is_not() -> None:
    y = np.array([0, 1, 1, 0])
    ece, table = expected_calibration_error(y, np.eye(2)[y])
    assert ece == 0.0
    assert table["bin_index"] == [14]  # a confidence of exactly 1 sits in the last, right-closed bin
    ece, _ = expected_calibration_error(y, np.eye(2)[1 - y])
    assert ece == 1.0


def test_bin_edges_are_right_closed() -> None:
    # confidence 0.5 with 2 bins belongs to (0, 0.5], 0.75 to (0.5, 1]
    _, table = expected_calibration_error(np.array([0, 0]), np.array([[0.5, 0.5], [0.75, 0.25]]), n_bins=2)
    assert table["bin_index"] == [0, 1]
    assert table["count"] == [1, 1]


def test_ece_equals_weighted_gap_on_random_data() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=500)
    y = rng.integers(0, 4, 500)
    ece, table = expected_calibration_error(y, proba)
    gaps = np.abs(np.array(table["accuracy"]) - np.array(table["confidence"]))
    assert ece == pytest.approx(float((gaps * np.array(table["count"])).sum() / 500))
    assert sum(table["count"]) == 500


def test_empty_set_and_bad_bin_count() -> None:
    ece, table = expected_calibration_error(np.zeros(0, dtype=int), np.zeros((0, 3)))
    assert np.isnan(ece) and table["count"] == [] and len(table["bin_edges"]) == 16
    with pytest.raises(HeadstartError, match="n_bins=0"):
        expected_calibration_error(Y, PROBA, n_bins=0)


def test_docstring_examples() -> None:
    assert doctest.testmod(calibration).failed == 0
