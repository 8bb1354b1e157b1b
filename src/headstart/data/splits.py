"""Stratified train / val / test splits, reproducible from a seed and saved as ``splits.json``."""

from __future__ import annotations

from typing import Any

import numpy as np

from headstart.config import DataConfig
from headstart.errors import HeadstartError

__all__ = ["stratified_split", "make_splits", "limit_per_class", "splits_to_json", "splits_from_json"]


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
    """Indices of train / val / test: the source's own splits where given, stratified ones otherwise."""
    if images.given_split is None:
        train, val, test = stratified_split(images.targets, [cfg.val_fraction, cfg.test_fraction], cfg.seed)
        return {"train": train, "val": val, "test": test}
    given = {s: np.flatnonzero(images.given_split == s) for s in ("train", "val", "test")}
    if len(given["train"]) == 0:
        raise HeadstartError(f"{images.source!r} defines splits but no training images")
    pool = given["train"]
    if len(given["val"]) == 0:  # carve validation out of training, stratified
        frac = cfg.val_fraction / (1 - cfg.test_fraction)
        keep, val = stratified_split(images.targets[pool], [frac], cfg.seed)
        given["train"], given["val"] = pool[keep], pool[val]
    if len(given["test"]) == 0:
        frac = cfg.test_fraction / (1 - cfg.val_fraction)
        keep, test = stratified_split(images.targets[given["train"]], [frac], cfg.seed + 1)
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
