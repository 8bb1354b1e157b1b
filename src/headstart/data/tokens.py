"""Text batches: tokenized once per loader, dynamically padded, grouped by length.

CPU fine-tuning of a transformer costs time per token, padding included. Texts are tokenized once
(truncated to the recipe's ``max_length``), each batch is padded only to its longest text, and
training batches are drawn from length buckets: shuffle, cut into chunks of ``BUCKET`` batches,
sort each chunk by length, then shuffle the batches. Every draw comes from the loader's generator,
so a resumed run sees the same batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from headstart.backbones.recipe import Recipe
from headstart.backbones.text import TextRecipe, load_tokenizer
from headstart.data.loader import Batch
from headstart.data.targets import target_tensor

__all__ = ["TokenizedTexts", "tokenize", "text_stats", "LengthBuckets", "make_text_loader", "BUCKET"]

logger = logging.getLogger(__name__)

BUCKET = 50  # batches per length-sorted chunk of a training epoch


@dataclass
class TokenizedTexts:
    ids: list[list[int]]  # token ids per text, special tokens included, truncated to max_length
    truncated: int  # how many texts were longer than max_length
    pad_id: int  # the tokenizer's padding id

    def lengths(self) -> np.ndarray:
        return np.asarray([len(i) for i in self.ids], dtype=np.int64)


def tokenize(texts: Sequence[str], recipe: TextRecipe) -> TokenizedTexts:
    """Token ids of every text; texts longer than ``recipe.max_length`` tokens are truncated and counted."""
    tok = load_tokenizer(recipe.tokenizer)
    limit = recipe.max_length
    probe = tok(list(texts), truncation=True, max_length=limit + 1)["input_ids"]  # one extra: detects overflow
    over = [i for i, ids in enumerate(probe) if len(ids) > limit]
    if over:
        redo = tok([texts[i] for i in over], truncation=True, max_length=limit)["input_ids"]
        for i, ids in zip(over, redo, strict=True):
            probe[i] = ids
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    return TokenizedTexts([list(map(int, ids)) for ids in probe], len(over), int(pad))


class _TokenDataset(Dataset):
    def __init__(self, tokens: TokenizedTexts, targets: np.ndarray, index: np.ndarray):
        self.tokens, self.targets, self.index = tokens, targets, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[list[int], int, int]:
        return self.tokens.ids[i], self.targets[i], int(self.index[i])


def _collate(pad_id: int):  # type: ignore[no-untyped-def]
    def collate(items: list[tuple[list[int], int, int]]) -> Batch:
        width = max(len(ids) for ids, _, _ in items)
        input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(items), width), dtype=torch.long)  # (B, T)
        for row, (ids, _, _) in enumerate(items):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
        return Batch(
            {"input_ids": input_ids, "attention_mask": mask},
            target_tensor([t for _, t, _ in items]),
            torch.tensor([j for _, _, j in items], dtype=torch.long),
            [],
        )

    return collate


class LengthBuckets(Sampler[list[int]]):
    """Batches of positions with similar lengths.

    ``shuffle=False``: sorted by length (evaluation; results are re-ordered by index afterwards).
    ``shuffle=True``: random order, sorted within chunks of ``BUCKET`` batches, batches shuffled.
    ``drop_last`` drops the ragged remainder, so there are exactly ``n // batch_size`` batches.
    ``weights`` (training only) draws the examples with replacement in proportion to them.
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator,
        drop_last: bool = False,
        weights: np.ndarray | None = None,
    ):
        self.lengths, self.batch_size, self.shuffle = lengths, batch_size, shuffle
        self.generator, self.drop_last, self.weights = generator, drop_last, weights

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n, size = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            yield from (order[i : i + size].tolist() for i in range(0, n, size))
            return
        if self.weights is not None:  # balanced: draw with replacement, classes equally often
            w = torch.as_tensor(self.weights, dtype=torch.float64)
            order = torch.multinomial(w, n, replacement=True, generator=self.generator).numpy()
        else:
            order = torch.randperm(n, generator=self.generator).numpy()
        if self.drop_last:
            order = order[: (n // size) * size]
        batches = []
        for start in range(0, len(order), size * BUCKET):
            chunk = order[start : start + size * BUCKET]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + size].tolist() for i in range(0, len(chunk), size)]
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]


def make_text_loader(
    texts: Sequence[str],
    targets: np.ndarray,
    index: np.ndarray,
    recipe: TextRecipe,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    weights: np.ndarray | None = None,
) -> DataLoader:
    """A loader of :class:`Batch` es whose ``x`` is ``{"input_ids", "attention_mask"}`` (B, T)."""
    index = np.asarray(index, dtype=np.int64)
    tokens = tokenize([texts[i] for i in index], recipe)
    if tokens.truncated:
        logger.info(
            "%d of %d texts are longer than max_length=%d tokens and were truncated",
            tokens.truncated,
            len(index),
            recipe.max_length,
        )
    sampler = LengthBuckets(
        tokens.lengths(),
        batch_size,
        shuffle,
        generator if generator is not None else torch.Generator().manual_seed(0),
        drop_last,
        weights,
    )
    return DataLoader(
        _TokenDataset(tokens, np.asarray(targets)[index], index),
        batch_sampler=sampler,
        collate_fn=_collate(tokens.pad_id),
    )


def text_stats(data: Any, recipe: Recipe) -> dict[str, Any]:
    """What a run records about text data (``headstart.json`` ``data``): the rows skipped while loading and,
    for an encoder's recipe, how many texts the tokenizer truncated (a warning says how to keep more)."""
    stats: dict[str, Any] = {"skipped_rows": list(data.skipped)}
    if isinstance(recipe, TextRecipe):
        stats["truncated"] = tokenize(data.texts, recipe).truncated
        stats["max_length"] = recipe.max_length
        if stats["truncated"]:
            logger.warning(
                "%d of %d texts are longer than max_length=%d tokens and were truncated "
                "(raise preprocess.max_length to keep more, at a cost in speed)",
                stats["truncated"],
                len(data),
                recipe.max_length,
            )
    return stats
