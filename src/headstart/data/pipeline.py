"""One entry point for loaders, whatever the modality: the recipe decides how examples become batches.

* image :class:`~headstart.backbones.recipe.Recipe`: decoded images -> torchvision transforms -> (B, 3, H, W)
* :class:`~headstart.backbones.text.TextRecipe`: tokenized once -> dynamically padded, length-bucketed batches
* :class:`~headstart.backbones.tfidf.TfidfRecipe`: term counts over the run's vocabulary

The train loop, feature extraction, evaluate and predict call only these two functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from headstart.backbones.recipe import Recipe
from headstart.backbones.text import TextRecipe
from headstart.config import PreprocessConfig
from headstart.data.balance import sample_weights
from headstart.data.loader import make_loader
from headstart.data.tokens import make_text_loader
from headstart.data.transforms import eval_transform, train_transform
from headstart.errors import HeadstartError

__all__ = ["eval_loader", "train_loader", "check_modality"]


def check_modality(data: Any, recipe: Any, backbone: str) -> None:
    """Image data needs an image backbone and text data a text backbone; say which to pick otherwise."""
    data_kind = data.modality
    model_kind = "image" if isinstance(recipe, Recipe) else "text"
    if data_kind != model_kind:
        hint = "minilm, mpnet or hf:<encoder>" if data_kind == "text" else "efficientnet_lite0 or timm:<model>"
        raise HeadstartError(
            f"{data.source!r} holds {data_kind} data but backbone {backbone!r} is {_article(model_kind)} model; "
            f"pass --backbone {hint}"
        )


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def eval_loader(
    data: Any,
    index: np.ndarray,
    recipe: Any,
    batch_size: int,
    num_workers: int = 0,
) -> DataLoader:
    """Batches of ``data[index]`` in a deterministic order, preprocessed as the recipe says."""
    if isinstance(recipe, Recipe):
        return make_loader(data, index, eval_transform(recipe), batch_size, num_workers=num_workers)
    if isinstance(recipe, TextRecipe):
        return make_text_loader(data.texts, data.targets, index, recipe, batch_size)
    from headstart.backbones.tfidf import TfidfRecipe
    from headstart.data.tfidf import make_tfidf_loader

    assert isinstance(recipe, TfidfRecipe)
    return make_tfidf_loader(data.texts, data.targets, index, recipe, batch_size)


def train_loader(
    data: Any,
    index: np.ndarray,
    recipe: Recipe | TextRecipe,
    preprocess: PreprocessConfig,
    batch_size: int,
    generator: torch.Generator,
    drop_last: bool,
    num_workers: int = 0,
    balanced: bool = False,
) -> DataLoader:
    """Shuffled training batches (augmented images; length-bucketed text), driven by ``generator``.

    ``balanced`` draws examples with replacement so that every class is drawn equally often."""
    weights = sample_weights(data.targets[index], len(data.labels)) if balanced else None
    if isinstance(recipe, TextRecipe):
        return make_text_loader(
            data.texts,
            data.targets,
            index,
            recipe,
            batch_size,
            shuffle=True,
            generator=generator,
            drop_last=drop_last,
            weights=weights,
        )
    return make_loader(
        data,
        index,
        train_transform(recipe, preprocess),
        batch_size,
        shuffle=True,
        generator=generator,
        num_workers=num_workers,
        drop_last=drop_last,
        weights=weights,
    )
