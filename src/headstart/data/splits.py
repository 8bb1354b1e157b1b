"""Stratified train / val / test splits, reproducible from a seed and saved as ``splits.json``."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
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

HEAD_BYTES = 1 << 16  # equal-size files are first told apart by a hash of this many leading bytes


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
    """A group id per example, shared by identical inputs, numbered in order of first appearance.

    Texts are identical when equal after collapsing whitespace and case folding (the tweets and news
    sets hold hundreds of such repeats). In-memory images are identical when their pixels are; image
    files when they are the same file (same resolved path) or hold the same bytes (only files whose
    size another file shares are read). None when the data has none of texts, arrays or paths.
    """
    texts = getattr(data, "texts", None)
    if texts is not None:
        return _first_seen([" ".join(t.split()).casefold() for t in texts])
    arrays = getattr(data, "arrays", None)
    if arrays is not None:
        return _first_seen([hashlib.blake2b(np.ascontiguousarray(a).data, digest_size=16).digest() for a in arrays])
    paths = getattr(data, "paths", None)
    if paths is not None:
        return _first_seen(_file_keys(paths))
    return None


def _first_seen(keys: Sequence[Hashable]) -> np.ndarray:
    """(N,) int64: equal keys share an id; ids count up in order of first appearance (no repeat: 0..N-1)."""
    ids: dict[Hashable, int] = {}
    return np.array([ids.setdefault(k, len(ids)) for k in keys], dtype=np.int64)


def _file_keys(paths: Sequence[Path]) -> list[Hashable]:
    """One key per path, equal for the same file or the same bytes; a file no other file matches in size is not read."""
    resolved = [Path(p).resolve() for p in paths]
    sizes = {f: _size(f) for f in dict.fromkeys(resolved)}
    shared = Counter(sizes.values())
    heads = {f: ("head", size, _digest(f, HEAD_BYTES)) for f, size in sizes.items() if shared[size] > 1}
    shared_heads = Counter(heads.values())
    full = {f: ("full", sizes[f], _digest(f, None)) for f, head in heads.items() if shared_heads[head] > 1}
    return [full.get(f) or heads.get(f) or f for f in resolved]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1  # vanished or unreadable: the loader reports it; here it only shares a key with itself


def _digest(path: Path, limit: int | None) -> bytes | Path:
    """blake2b of the first ``limit`` bytes (all when None); the path itself when the file cannot be read."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with path.open("rb") as f:
            if limit is not None:
                h.update(f.read(limit))
            else:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    except OSError:
        return path
    return h.digest()


Stratify = Callable[[np.ndarray, list[float], int], list[np.ndarray]]  # (targets, fractions, seed) -> parts


def _grouped_split(
    targets: np.ndarray, groups: np.ndarray | None, fractions: list[float], seed: int, stratify: Stratify
) -> list:
    """``stratify`` (the task's: per class, per value range, iterative over labels) over groups of identical
    inputs: a group's members share one part.

    Each group is placed by its first member's target; with no repeated input this is exactly ``stratify``,
    so the splits of data without duplicates do not change.
    """
    if groups is None:
        return stratify(targets, fractions, seed)
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    parts = stratify(targets[first], fractions, seed)
    part_of_group = np.empty(len(first), dtype=np.int64)
    for j, p in enumerate(parts):
        part_of_group[p] = j
    member_part = part_of_group[inverse]
    return [np.flatnonzero(member_part == j) for j in range(len(parts))]


def _at(groups: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if groups is None else groups[index]


def _report_duplicates(data: Any, groups: np.ndarray | None, splits: dict[str, np.ndarray]) -> None:
    """Warn how many examples repeat an earlier input, how many repeated inputs carry two labels, and how many
    val/test examples repeat a training input (possible only where the source gives the splits)."""
    if groups is None or len(np.unique(groups)) == len(groups):
        return
    repeats = len(groups) - len(np.unique(groups))
    counts = np.bincount(groups)
    first_copy = np.flatnonzero(groups == groups[np.argmax(counts[groups] > 1)])
    message = f"{repeats} example(s) repeat an earlier identical input, e.g. {_named(data, first_copy[:2])}"
    message += _conflicts(data, groups)
    test = np.concatenate([splits["val"], splits["test"]])
    crossing = int(np.isin(groups[test], groups[splits["train"]]).sum())
    if crossing:
        message += (
            f"; {crossing} val/test example(s) repeat a training input in the splits the source gives: "
            "remove them from val/test, or the scores overstate how well the model generalizes"
        )
    else:
        message += "; each repeat is kept in the split of its first copy, so none crosses from training into evaluation"
    logger.warning("%s: %s", data.source, message)


def _conflicts(data: Any, groups: np.ndarray) -> str:
    """``"; N repeated input(s) carry more than one label, e.g. ..."`` or ``""``."""
    targets = np.asarray(data.targets).reshape(len(groups), -1)  # (N, 1) classes or values, (N, L) label sets
    pairs = np.unique(np.column_stack([groups, targets]), axis=0)  # distinct (group, target...) rows
    values, per_group = np.unique(pairs[:, 0], return_counts=True)
    mixed = values[per_group > 1]
    if len(mixed) == 0:
        return ""
    members = np.flatnonzero(groups == mixed[0])
    other = members[np.argmax((targets[members] != targets[members[0]]).any(axis=1))]
    return (
        f"; {len(mixed)} repeated input(s) carry more than one label, e.g. {_named(data, [members[0], other])}: "
        "correct the label or remove the wrong copy"
    )


def _named(data: Any, index: Sequence[int] | np.ndarray) -> str:
    """``'a.png' (cat) and 'b.png' (dog)``: ids with their labels."""
    return " and ".join(f"{data.ids[i]!r} ({_target_text(data, i)})" for i in index)


def _target_text(data: Any, i: int) -> str:
    """Example ``i``'s target as text: its class name, its value, or its labels joined by ``|``."""
    target = np.asarray(data.targets[i])
    if target.ndim == 1:
        return "|".join(data.labels[j] for j in np.flatnonzero(target)) or "no label"
    if np.issubdtype(target.dtype, np.floating):
        return f"{float(target):g}"
    return str(data.labels[int(target)])


def limit_per_class(images: Any, n: int | None, seed: int, strata: np.ndarray | None = None) -> Any:
    """Keep a random ``n`` examples per class (per given split, when the source defines splits). ``strata``
    (one int per example; default: the class index) is what counts as a class (the task's strata: value
    ranges, rarest label)."""
    if n is None:
        return images
    strata = np.asarray(images.targets if strata is None else strata)
    rng = np.random.RandomState(seed)
    groups = images.given_split if images.given_split is not None else np.zeros(len(images), dtype=int)
    keep: list[int] = []
    for g in np.unique(groups):
        for k in np.unique(strata):
            idx = np.flatnonzero((strata == k) & (groups == g))
            keep += rng.permutation(idx)[:n].tolist()
    return images.subset(np.sort(np.asarray(keep, dtype=np.int64)))


def make_splits(images: Any, cfg: DataConfig, stratify: Stratify | None = None) -> dict[str, np.ndarray]:
    """Indices of train / val / test: the source's own splits where given, stratified ones otherwise
    (``stratify``: the task's, per class by default).

    Identical inputs (:func:`duplicate_groups`) always land in the same stratified split.
    """
    stratify = stratify or stratified_split
    groups = duplicate_groups(images)
    if images.given_split is None:
        fractions = [cfg.val_fraction, cfg.test_fraction]
        train, val, test = _grouped_split(images.targets, groups, fractions, cfg.seed, stratify)
        splits = {"train": train, "val": val, "test": test}
    else:
        splits = _complete_given_splits(images, groups, cfg, stratify)
    _report_duplicates(images, groups, splits)
    return splits


def _complete_given_splits(
    images: Any, groups: np.ndarray | None, cfg: DataConfig, stratify: Stratify
) -> dict[str, np.ndarray]:
    """The source's splits; a missing val (or test) part is carved out of train, repeats kept together."""
    given = {s: np.flatnonzero(images.given_split == s) for s in ("train", "val", "test")}
    if len(given["train"]) == 0:
        raise HeadstartError(f"{images.source!r} defines splits but no training images")
    pool = given["train"]
    if len(given["val"]) == 0:  # carve validation out of training, stratified
        frac = cfg.val_fraction / (1 - cfg.test_fraction)
        keep, val = _grouped_split(images.targets[pool], _at(groups, pool), [frac], cfg.seed, stratify)
        given["train"], given["val"] = pool[keep], pool[val]
    if len(given["test"]) == 0:
        frac = cfg.test_fraction / (1 - cfg.val_fraction)
        rest = given["train"]
        keep, test = _grouped_split(images.targets[rest], _at(groups, rest), [frac], cfg.seed + 1, stratify)
        given["test"], given["train"] = given["train"][test], given["train"][keep]
    return given


def splits_to_json(images: Any, splits: dict[str, np.ndarray], seed: int) -> dict:
    """``splits.json``: the ids of each split, which :func:`splits_from_json` maps back to positions."""
    _require_unique_ids(images)
    return {"source": images.source, "seed": seed, **{k: [images.ids[i] for i in v] for k, v in splits.items()}}


def splits_from_json(images: Any, saved: dict) -> dict[str, np.ndarray]:
    """Map saved ids back to indices of ``images``; ids no longer present are reported as an error."""
    _require_unique_ids(images)
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


def _require_unique_ids(images: Any) -> None:
    """Saved splits name examples by id: a repeated id would send two examples to one position."""
    if len(set(images.ids)) == len(images.ids):
        return
    id_, n = Counter(images.ids).most_common(1)[0]
    raise HeadstartError(
        f"the ids of {images.source!r} are not unique ({id_!r} appears {n} times), so saved splits cannot name "
        "their examples; give every example its own id"
    )
