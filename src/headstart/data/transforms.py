"""Transforms built from the resolved recipe with torchvision transforms v2.

Images arrive as uint8 tensors (C, H, W) with C = 1 or 3. Grey images are resized as one channel
(three times cheaper) and repeated to 3 channels before normalization. Augmentation only changes
geometry; normalization is always the recipe's.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2 as T

from headstart.backbones.recipe import ImageRecipe
from headstart.config import PreprocessConfig

__all__ = ["eval_transform", "train_transform", "ToThreeChannels"]


class ToThreeChannels(torch.nn.Module):
    """(1, H, W) -> (3, H, W); RGB passes through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(3, -1, -1) if x.shape[-3] == 1 else x


def _interp(recipe: ImageRecipe) -> T.InterpolationMode:
    return T.InterpolationMode(recipe.interpolation)


def _finish(recipe: ImageRecipe) -> list[torch.nn.Module]:
    return [ToThreeChannels(), T.ToDtype(torch.float32, scale=True), T.Normalize(list(recipe.mean), list(recipe.std))]


def eval_transform(recipe: ImageRecipe) -> T.Compose:
    """Resize the short side to ``input_size / crop_pct``, center crop ``input_size``, normalize."""
    size = recipe.input_size
    resize = (
        [T.Resize(size, _interp(recipe), antialias=True)]
        if recipe.crop_pct >= 1.0
        else [T.Resize(recipe.resize_size, _interp(recipe), antialias=True)]
    )
    return T.Compose([*resize, T.CenterCrop(size), *_finish(recipe)])


def train_transform(recipe: ImageRecipe, cfg: PreprocessConfig) -> T.Compose:
    """Random resized crop + flips when ``cfg.augment``; otherwise the eval transform."""
    if not cfg.augment:
        return eval_transform(recipe)
    steps: list[torch.nn.Module] = [
        T.RandomResizedCrop(
            recipe.input_size, scale=(cfg.min_scale, 1.0), interpolation=_interp(recipe), antialias=True
        ),
        T.RandomHorizontalFlip(),
    ]
    if cfg.vflip:
        steps.append(T.RandomVerticalFlip())
    return T.Compose([*steps, *_finish(recipe)])
