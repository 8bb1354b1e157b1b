"""Stratified train / val / test splits, reproducible from a seed and saved as ``splits.json``."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from headstart.config import DataConfig
from headstart.errors import HeadstartError

__all__ = [
    "stratified_split",
    "duplicate_groups",
    "make_splits",
    "limit_per_class",
    "splits_to_json",
    "splits_from_json",
]

logger = logging.getLogger(__name__)


def stratified_split(targets: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """Split indices class by class: part ``j`` gets ``round(n * fractions[j])`` of each class.

    The remainder goes to the first part (training). Every later part gets at least one example of
    each class that has enough examples to leave one for training, so evaluation sees every class.
    """
    rng = np.random.RandomState(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for k in np.unique(targets):
        idx = np.flatnonzero(targets == k)
        rng.shuffle(idx)
        start = 0
        for j, frac in enumerate(fractions, start=1):
            take = max(1, int(round(len(idx) * frac))) if len(idx) - start > 1 else 0
            parts[j] += idx[start : start + take].tolist()
            start += take
        parts[0] += idx[start:].tolist()
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def duplicate_groups(data: Any) -> np.ndarray | None:
    """A group id per example, shared by identical inputs; None when the data has no cheap identity.

    Texts are identical when equal after collapsing whitespace and case folding (the tweets and news
    sets hold hundreds of such repeats). Images read from files are not compared (that would mean
    hashing every file).
    """
    texts = getattr(data, "texts", None)
    if texts is None:
        return None
    keys: dict[str, int] = {}
    return np.array([keys.setdefault(" ".join(t.split()).casefold(), len(keys)) for t in texts], dtype=np.int64)


def _grouped_split(targets: np.ndarray, groups: np.ndarray | None, fractions: list[float], seed: int) -> list:
    """:func:`stratified_split` over groups of identical inputs: a group's members share one part.

    Each group is placed by its first member's class; with no repeated input this is exactly
    :func:`stratified_split`, so the splits of data without duplicates do not change.
    """
    if groups is None:
        return stratified_split(targets, fractions, seed)
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    parts = stratified_split(targets[first], fractions, seed)
    part_of_group = np.empty(len(first), dtype=np.int64)
    for j, p in enumerate(parts):
        part_of_group[p] = j
    member_part = part_of_group[inverse]
    return [np.flatnonzero(member_part == j) for j in range(len(parts))]


def _at(groups: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if groups is None else groups[index]


def _report_duplicates(data: Any, groups: np.ndarray | None) -> None:
    if groups is None or len(np.unique(groups)) == len(groups):
        return
    repeats = len(groups) - len(np.unique(groups))
    pairs = np.unique(np.stack([groups, np.asarray(data.targets)]), axis=1)
    conflicting = len(pairs[0]) - len(np.unique(pairs[0]))
    logger.warning(
        "%s: %d example(s) repeat an earlier identical input; each repeat is kept in the same split as the "
        "first, so no duplicate crosses from training into evaluation%s",
        data.source,
        repeats,
        f" ({conflicting} repeated input(s) carry more than one label)" if conflicting else "",
    )


def limit_per_class(images: Any, n: int | None, seed: int) -> Any:
    """Keep a random ``n`` examples per class (per given split, when the source defines splits)."""
    if n is None:
        return images
    rng = np.random.RandomState(seed)
    groups = images.given_split if images.given_split is not None else np.zeros(len(images), dtype=int)
    keep: list[int] = []
    for g in np.unique(groups):
        for k in np.unique(images.targets):
            idx = np.flatnonzero((images.targets == k) & (groups == g))
            keep += rng.permutation(idx)[:n].tolist()
    return images.subset(np.sort(np.asarray(keep, dtype=np.int64)))


def make_splits(images: Any, cfg: DataConfig) -> dict[str, np.ndarray]:
    """Indices of train / val / test: the source's own splits where given, stratified ones otherwise.

    Identical inputs (:func:`duplicate_groups`) always land in the same stratified split.
    """
    groups = duplicate_groups(images)
    _report_duplicates(images, groups)
    if images.given_split is None:
        fractions = [cfg.val_fraction, cfg.test_fraction]
        train, val, test = _grouped_split(images.targets, groups, fractions, cfg.seed)
        return {"train": train, "val": val, "test": test}
    given = {s: np.flatnonzero(images.given_split == s) for s in ("train", "val", "test")}
    if len(given["train"]) == 0:
        raise HeadstartError(f"{images.source!r} defines splits but no training images")
    pool = given["train"]
    if len(given["val"]) == 0:  # carve validation out of training, stratified
        frac = cfg.val_fraction / (1 - cfg.test_fraction)
        keep, val = _grouped_split(images.targets[pool], _at(groups, pool), [frac], cfg.seed)
        given["train"], given["val"] = pool[keep], pool[val]
    if len(given["test"]) == 0:
        frac = cfg.test_fraction / (1 - cfg.val_fraction)
        rest = given["train"]
        keep, test = _grouped_split(
            images.targets[rest], None if groups is None else groups[rest], [frac], cfg.seed + 1
        )
        given["test"], given["train"] = given["train"][test], given["train"][keep]
    return given


def splits_to_json(images: Any, splits: dict[str, np.ndarray], seed: int) -> dict:
    return {"source": images.source, "seed": seed, **{k: [images.ids[i] for i in v] for k, v in splits.items()}}


def splits_from_json(images: Any, saved: dict) -> dict[str, np.ndarray]:
    """Map saved ids back to indices of ``images``; ids no longer present are reported as an error."""
    position = {id_: i for i, id_ in enumerate(images.ids)}
    out = {}
    for name in ("train", "val", "test"):
        missing = [i for i in saved.get(name, []) if i not in position]
        if missing:
            raise HeadstartError(
                f"{len(missing)} image(s) of the saved {name} split are no longer in {images.source!r} "
                f"(e.g. {missing[0]!r}); evaluate on the data the run was trained on, or pass --split all"
            )
        out[name] = np.asarray([position[i] for i in saved.get(name, [])], dtype=np.int64)
    return out
