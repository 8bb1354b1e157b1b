"""Audio batches: each clip decoded, mixed to mono, resampled to the recipe's rate and cut to its length.

The network's own front end (inside the model) does the rest, so a batch is just ``(B, clip_samples)``
float32 waveforms. Evaluation takes the centre window of a longer clip; training takes a random window
when the recipe says ``random_crop`` (``preprocess.augment=true``), drawn from the loader's generator so a
resumed run sees the same crops. Unreadable files are skipped and reported by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from headstart.backbones.audio_recipe import AudioRecipe
from headstart.data.audio import AudioSet, UnreadableAudio, fit_length, resample
from headstart.data.loader import batch_loader

__all__ = ["AudioDataset", "make_audio_loader", "clip_transform"]


class AudioDataset(Dataset):
    """Items ``(waveform (clip_samples,), target, index)`` or ``(None, message, index)`` for an unreadable file."""

    def __init__(self, data: AudioSet, index: np.ndarray, recipe: AudioRecipe, crops: torch.Generator | None = None):
        self.data, self.index, self.recipe = data, np.asarray(index, dtype=np.int64), recipe
        self.crops = crops  # random training windows when set (and the recipe asks for them)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
        j = int(self.index[i])
        try:
            wave = self.data.load(j, self.recipe.sample_rate)
        except UnreadableAudio as exc:
            return None, str(exc), j
        n = self.recipe.clip_samples
        offset = None
        if self.crops is not None and self.recipe.random_crop and len(wave) > n:
            offset = int(torch.randint(0, len(wave) - n + 1, (1,), generator=self.crops))
        clip = np.ascontiguousarray(fit_length(wave, n, offset), dtype=np.float32)
        return torch.from_numpy(clip), self.data.targets[j], j


def make_audio_loader(
    data: AudioSet,
    index: np.ndarray,
    recipe: AudioRecipe,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    num_workers: int = 0,
    drop_last: bool = False,
    weights: np.ndarray | None = None,
) -> DataLoader:
    """Deterministic batches (``shuffle=False``: centre windows) or shuffled training batches (random windows
    when ``recipe.random_crop``, drawn from ``generator`` after the epoch's order, so a run restored to the
    generator's state replays both)."""
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    dataset = AudioDataset(data, index, recipe, generator if shuffle else None)
    return batch_loader(dataset, batch_size, shuffle, generator, num_workers, drop_last, weights)


def clip_transform(recipe: AudioRecipe) -> Callable[..., Any]:
    """``(wave, sample_rate) -> (clip_samples,)`` float32 tensor: mono mix-down of a (samples,) or
    (samples, channels) array, resampling and the centre window, as evaluation prepares a clip."""

    def transform(wave: Any, sample_rate: int) -> torch.Tensor:
        x = np.asarray(wave, dtype=np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1 if x.shape[1] <= x.shape[0] else 0)
        x = resample(x, int(sample_rate), recipe.sample_rate)
        return torch.from_numpy(np.ascontiguousarray(fit_length(x, recipe.clip_samples), dtype=np.float32))

    return transform
