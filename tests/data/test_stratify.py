import numpy as np
import pytest

from headstart.data.stratify import iterative_split
from headstart.errors import HeadstartError

FRACTIONS = [0.15, 0.15]


def _skewed(n: int, n_labels: int, seed: int) -> np.ndarray:
    """Multi-hot labels with prevalences from very rare to common, some rows without any label."""
    rng = np.random.default_rng(seed)
    prevalence = np.geomspace(0.006, 0.5, n_labels)
    return (rng.random((n, n_labels)) < prevalence).astype(np.int64)


def _deviation(Y: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean absolute gap between each label's share of positives in a part and that part's share of examples."""
    share = np.array([len(p) for p in parts]) / len(Y)
    counts = Y.sum(0)
    gaps = [np.abs(Y[p].sum(0) / np.maximum(counts, 1) - s)[counts > 0] for p, s in zip(parts, share, strict=True)]
    return float(np.mean(gaps))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_index_once_and_sizes_follow_fractions(seed: int) -> None:
    Y = _skewed(1003, 12, seed)
    parts = iterative_split(Y, FRACTIONS, seed)
    assert len(parts) == 3
    assert [len(p) for p in parts] == [1003 - 2 * 150, 150, 150]  # round(1003 * 0.15) = 150
    everything = np.concatenate(parts)
    assert np.array_equal(np.sort(everything), np.arange(1003))
    for p in parts:
        assert p.dtype == np.int64 and np.array_equal(p, np.sort(p))


def test_deterministic_per_seed() -> None:
    Y = _skewed(500, 8, 3)
    a, b, c = iterative_split(Y, FRACTIONS, 7), iterative_split(Y, FRACTIONS, 7), iterative_split(Y, FRACTIONS, 8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("seed", range(5))
def test_every_label_with_enough_positives_lands_in_every_part(seed: int) -> None:
    Y = _skewed(600, 15, seed)
    parts = iterative_split(Y, FRACTIONS, seed)
    enough = Y.sum(0) >= len(FRACTIONS) + 1
    assert enough.sum() >= 12  # the data has rare labels with only a few positives
    for p in parts:
        assert (Y[p].sum(0)[enough] > 0).all()


def test_two_positive_label_leaves_one_for_training() -> None:
    Y = np.zeros((40, 2), dtype=np.int64)
    Y[:2, 0] = 1
    Y[2:20, 1] = 1
    train, val, test = iterative_split(Y, FRACTIONS, 0)
    assert Y[train, 0].sum() == 1 and Y[val, 0].sum() + Y[test, 0].sum() == 1


def test_label_shares_closer_than_a_random_split() -> None:
    ours, random = [], []
    for seed in range(5):
        Y = _skewed(800, 15, seed)
        parts = iterative_split(Y, FRACTIONS, seed)
        perm = np.random.default_rng(seed).permutation(len(Y))
        sizes = np.cumsum([len(p) for p in parts])[:-1]
        ours.append(_deviation(Y, parts))
        random.append(_deviation(Y, np.split(perm, sizes)))
    assert np.mean(ours) < 0.5 * np.mean(random)
    assert np.mean(ours) < 0.03


def test_rows_without_labels_fill_the_parts_by_size() -> None:
    Y = np.zeros((100, 3), dtype=np.int64)
    train, val, test = iterative_split(Y, [0.2, 0.1], 0)
    assert (len(train), len(val), len(test)) == (70, 20, 10)


def test_bad_inputs_say_what_to_pass() -> None:
    with pytest.raises(HeadstartError, match="sum to under 1"):
        iterative_split(np.ones((10, 2), dtype=int), [0.6, 0.5], 0)
    with pytest.raises(HeadstartError, match="0/1"):
        iterative_split(np.full((10, 2), 2), FRACTIONS, 0)
    with pytest.raises(HeadstartError, match="multi-hot matrix"):
        iterative_split(np.ones(10, dtype=int), FRACTIONS, 0)
