"""MFCC statistics of labelled clips, and their batches, for the audio ``scratch`` baseline
(:class:`~headstart.backbones.mfcc.MfccRecipe`).

Each clip is decoded and resampled to the recipe's rate and centre-cropped / zero-padded to its window
(the same clip a neural backbone sees), then summarised by :func:`~headstart.backbones.mfcc.mfcc_features`.
Unreadable clips are skipped and reported by name (``path: reason``), as the image loaders do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from headstart.backbones.mfcc import MfccRecipe, mfcc_features
from headstart.data.audio import AudioSet, UnreadableAudio, fit_length
from headstart.data.loader import Batch
from headstart.data.targets import target_tensor

__all__ = ["mfcc_matrix", "make_mfcc_loader"]


def _clip_features(data: AudioSet, i: int, recipe: MfccRecipe) -> np.ndarray | str:
    """Example ``i``'s raw features (F,), or the message naming it when it cannot be read."""
    try:
        wave = fit_length(data.load(i, recipe.sample_rate), recipe.clip_samples)  # (clip_samples,)
    except UnreadableAudio as exc:  # undecodable, empty, NaN / infinite samples: "PATH: reason"
        return str(exc)
    return mfcc_features(wave, recipe)


def _rows(data: AudioSet, index: np.ndarray, recipe: MfccRecipe) -> list[np.ndarray | str]:
    return [_clip_features(data, int(i), recipe) for i in np.asarray(index, dtype=np.int64)]


def _stack(rows: Sequence[np.ndarray | str], index: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    kept = [k for k, r in enumerate(rows) if not isinstance(r, str)]
    x = np.stack([rows[k] for k in kept]).astype(np.float32) if kept else np.zeros((0, width), np.float32)
    skipped = [r for r in rows if isinstance(r, str)]
    return x, np.asarray(index, dtype=np.int64)[kept], skipped


def mfcc_matrix(data: AudioSet, index: np.ndarray, recipe: MfccRecipe) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw (unstandardized) MFCC statistics of the examples ``data[index]``.

    Returns ``x`` (n, F) float32, the ``kept`` (n,) positions in ``data`` whose rows these are (``index`` less
    the unreadable clips, in order) and one ``path: reason`` message per skipped clip.
    """
    return _stack(_rows(data, index, recipe), index, recipe.num_features)


def make_mfcc_loader(data: AudioSet, index: np.ndarray, recipe: MfccRecipe, batch_size: int) -> DataLoader:
    """Deterministic batches of ``data[index]`` in order: ``x`` the standardized features (B, F) float32,
    ``y`` the target rows, ``index`` their positions in ``data``; each batch lists the clips it skipped.

    The features of every clip are computed once, when the loader is made."""
    index = np.asarray(index, dtype=np.int64)
    rows = _rows(data, index, recipe)
    targets = np.asarray(data.targets)

    def collate(positions: list[int]) -> Batch:
        raw, kept, skipped = _stack([rows[p] for p in positions], index[positions], recipe.num_features)
        x = torch.from_numpy(recipe.standardize(raw))  # (B, F)
        return Batch(x, target_tensor(list(targets[kept])), torch.from_numpy(kept), skipped)

    batches = [list(range(i, min(i + batch_size, len(index)))) for i in range(0, len(index), batch_size)]
    return DataLoader(batches, batch_size=None, collate_fn=collate)  # type: ignore[arg-type]
