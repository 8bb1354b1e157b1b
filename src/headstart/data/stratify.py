"""Splits of multi-label data that keep each label's share in every part: iterative stratification.

The algorithm of Sechidis, Tsoumakas & Vlahavas (2011), "On the Stratification of Multi-Label Data" (as in
scikit-multilearn's ``IterativeStratification``): the label with the fewest examples left is placed first,
each of its examples going to the part that still wants that label most. Two changes keep the contract of
:func:`headstart.data.splits.stratified_split`: every part has an exact size (a full part takes no more
examples), and each evaluation part wants at least one positive of every label that can spare one for
training.
"""

from __future__ import annotations

import numpy as np

from headstart.errors import HeadstartError

__all__ = ["iterative_split"]


def _check(Y: np.ndarray, fractions: list[float]) -> np.ndarray:
    """Y as (n, L) int64 after checking it is multi-hot and that ``fractions`` leave room for training."""
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise HeadstartError(f"targets have shape {Y.shape}; pass an (examples, labels) multi-hot matrix")
    bad = np.setdiff1d(np.unique(Y), [0, 1])
    if len(bad):
        raise HeadstartError(f"multi-label targets must be 0/1 (multi-hot), got {bad[:5].tolist()}")
    if any(not 0.0 <= f < 1.0 for f in fractions) or sum(fractions) >= 1.0:
        raise HeadstartError(
            f"fractions {fractions} must each lie in [0, 1) and sum to under 1, leaving the rest for training; "
            "e.g. [0.15, 0.15]"
        )
    return Y.astype(np.int64)


def _part_sizes(n: int, fractions: list[float]) -> np.ndarray:
    """(parts,) sizes: ``round(n * f)`` for each fraction, the remainder (first) for training."""
    later = [int(round(n * f)) for f in fractions]
    if sum(later) > n:
        raise HeadstartError(f"fractions {fractions} of {n} examples leave nothing for training; use smaller ones")
    return np.array([n - sum(later), *later], dtype=np.int64)


def _label_wants(counts: np.ndarray, fractions: list[float]) -> np.ndarray:
    """(parts, L) how many positives of each label each part should get.

    Part ``j`` wants ``fractions[j - 1]`` of a label's positives, at least one while one is left over for
    training (as :func:`stratified_split` does per class); training wants the rest.
    """
    counts = counts.astype(np.float64)
    wants = np.zeros((len(fractions) + 1, len(counts)))
    left = counts.copy()
    for j, f in enumerate(fractions, start=1):
        if f > 0:
            wants[j] = np.where(left > 1, np.minimum(np.maximum(1.0, f * counts), left - 1), 0.0)
            left -= wants[j]
    wants[0] = left
    return wants


def _place(i: int, label: int, Y: np.ndarray, wants: np.ndarray, room: np.ndarray, rng: np.random.Generator) -> int:
    """The part example ``i`` goes to: the open part wanting ``label`` most, then the one with most room, then
    at random; the wants and room are updated."""
    open_ = room > 0
    most = wants[:, label][open_].max()
    tied = open_ & (wants[:, label] == most)
    tied &= room == room[tied].max()
    candidates = np.flatnonzero(tied)
    part = int(candidates[rng.integers(len(candidates))]) if len(candidates) > 1 else int(candidates[0])
    wants[part] -= Y[i]
    room[part] -= 1
    return part


def iterative_split(Y: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """Split the rows of multi-hot ``Y`` (n, L) into ``[train, *parts]`` keeping each label's share in every part.

    Part ``j`` gets ``round(n * fractions[j - 1])`` examples and training the remainder (the contract of
    :func:`headstart.data.splits.stratified_split`). Labels are placed rarest first; a label with at least
    ``len(fractions) + 1`` positives lands in every part (unless rarer labels it co-occurs with already
    spent its positives). Examples without a label fill the room left. Returns sorted int64 index arrays;
    the same ``seed`` gives the same split.

    Example:
        >>> Y = np.array([[1, 0]] * 10 + [[0, 1]] * 10 + [[0, 0]] * 20)
        >>> train, val, test = iterative_split(Y, [0.2, 0.2], seed=0)
        >>> len(train), len(val), len(test), Y[val].sum(0).tolist(), Y[test].sum(0).tolist()
        (24, 8, 8, [2, 2], [2, 2])
    """
    Y = _check(Y, fractions)
    rng = np.random.default_rng(seed)
    room = _part_sizes(len(Y), fractions)
    wants = _label_wants(Y.sum(0), fractions)
    part_of = np.full(len(Y), -1, dtype=np.int64)
    left = Y.sum(0)  # (L,) positives not yet placed
    while left.any():
        rarest = np.flatnonzero(left == left[left > 0].min())
        label = int(rng.choice(rarest))
        rows = np.flatnonzero((part_of < 0) & (Y[:, label] == 1))
        for i in rng.permutation(rows):
            part_of[i] = _place(int(i), label, Y, wants, room, rng)
            left -= Y[i]
    rest = rng.permutation(np.flatnonzero(part_of < 0))  # examples without a label fill the room left
    part_of[rest] = np.repeat(np.arange(len(room)), room)
    return [np.flatnonzero(part_of == j).astype(np.int64) for j in range(len(room))]
