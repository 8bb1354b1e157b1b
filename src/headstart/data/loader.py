"""Datasets and loaders that skip unreadable examples (images, audio files), reporting each by path, instead of
crashing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from headstart.data.images import ImageSet, UnreadableImage
from headstart.data.targets import target_tensor

__all__ = ["ImageDataset", "Batch", "make_loader", "batch_loader", "SkipLog"]

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    x: Any  # (B, 3, H, W) normalized float images, (B, V) term counts, or {"input_ids", "attention_mask"} (B, T)
    y: torch.Tensor  # (B,) int64 targets
    index: torch.Tensor  # (B,) positions in the ImageSet
    skipped: list[str]  # unreadable images dropped from this batch (path: reason)


@dataclass
class SkipLog:
    """Collects unreadable images once each, across epochs."""

    items: dict[str, str] = field(default_factory=dict)

    def add(self, messages: Sequence[str]) -> None:
        for m in messages:
            key = m.split(": ", 1)[0]
            if key not in self.items:
                logger.warning("skipping unreadable file %s", m)
                self.items[key] = m


class ImageDataset(Dataset):
    """Items ``(tensor, target, index)`` or ``(None, message, index)`` for an unreadable image."""

    def __init__(self, images: ImageSet, index: np.ndarray, transform: Callable[[torch.Tensor], torch.Tensor]):
        self.images, self.index, self.transform = images, np.asarray(index, dtype=np.int64), transform

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
        j = int(self.index[i])
        try:
            return self.transform(self.images.load(j)), self.images.targets[j], j
        except UnreadableImage as exc:
            return None, str(exc), j


def _collate(items: list) -> Batch:  # type: ignore[type-arg]
    good = [it for it in items if it[0] is not None]
    skipped = [it[1] for it in items if it[0] is None]
    if not good:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), skipped)
    return Batch(
        torch.stack([it[0] for it in good]),
        target_tensor([it[1] for it in good]),
        torch.tensor([it[2] for it in good], dtype=torch.long),
        skipped,
    )


def make_loader(
    images: ImageSet,
    index: np.ndarray,
    transform: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    weights: np.ndarray | None = None,
) -> DataLoader:
    """A loader that skips unreadable images; ``generator`` (or ``seed``) drives the shuffling.

    ``weights`` (one per position of ``index``) draws each epoch's examples with replacement in
    proportion to them (the balanced sampler) instead of shuffling.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(seed)
    dataset = ImageDataset(images, index, transform)
    return batch_loader(dataset, batch_size, shuffle, generator, num_workers, drop_last, weights)


def batch_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator,
    num_workers: int = 0,
    drop_last: bool = False,
    weights: np.ndarray | None = None,
) -> DataLoader:
    """:class:`Batch` es of a dataset whose items are ``(x, target, index)``, or ``(None, message, index)`` for
    an example that cannot be read (skipped and reported); ``weights`` as in :func:`make_loader`."""
    sampler = None
    if weights is not None:
        sampler = WeightedRandomSampler(weights.tolist(), len(dataset), replacement=True, generator=generator)  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=num_workers,
        collate_fn=_collate,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
    )
