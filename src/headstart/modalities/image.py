"""The image modality: folders, CSVs and builtins of images; timm backbones; torchvision transforms.

Registered on import (see :mod:`headstart.modalities.base`). Images are the fallback modality: a DATA
argument no other modality claims is read as images (and refused there with what layouts work).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from headstart.backbones.build import build_architecture, create_image_model
from headstart.backbones.recipe import ImageRecipe, Recipe, resolve_recipe
from headstart.config import DataConfig, PreprocessConfig
from headstart.errors import HeadstartError
from headstart.modalities.base import Modality, RecipeKind, expand_files, register_modality, register_recipe_kind

__all__ = ["IMAGE", "expand_image_inputs"]


def _load(source: str, cfg: DataConfig, empty_labels: bool) -> Any:
    from headstart.data.sources import load_images

    return load_images(source, empty_labels)


def _resolve(checkpoint: Recipe, overrides: PreprocessConfig) -> Recipe:
    assert isinstance(checkpoint, ImageRecipe)
    return resolve_recipe(checkpoint, overrides)


def _eval_loader(data: Any, index: np.ndarray, recipe: Recipe, batch_size: int, num_workers: int) -> DataLoader:
    from headstart.data.loader import make_loader
    from headstart.data.transforms import eval_transform

    return make_loader(data, index, eval_transform(recipe), batch_size, num_workers=num_workers)  # type: ignore[arg-type]


def _train_loader(
    data: Any,
    index: np.ndarray,
    recipe: Recipe,
    preprocess: PreprocessConfig,
    batch_size: int,
    generator: torch.Generator,
    drop_last: bool,
    num_workers: int,
    weights: np.ndarray | None,
) -> DataLoader:
    from headstart.data.loader import make_loader
    from headstart.data.transforms import train_transform

    transform = train_transform(recipe, preprocess)  # type: ignore[arg-type]
    return make_loader(
        data,
        index,
        transform,
        batch_size,
        shuffle=True,
        generator=generator,
        num_workers=num_workers,
        drop_last=drop_last,
        weights=weights,
    )


def _rebuild(path: Path, manifest: dict[str, Any], recipe: Recipe, outputs: int) -> nn.Module:
    """The timm network named in the manifest, with random weights (the run's weights are loaded next)."""
    from headstart.artifacts.run_dir import package_versions

    architecture = manifest["backbone"]["architecture"]
    try:
        return build_architecture(architecture, num_classes=outputs)
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        trained_with = manifest.get("versions", {}).get("timm", "unknown")
        raise HeadstartError(
            f"{path / 'headstart.json'} names backbone.architecture={architecture!r}, which this timm "
            f"({package_versions().get('timm', '?')}) cannot build ({exc}); the run was trained with timm "
            f"{trained_with}: install that version (pip install timm=={trained_with})"
        ) from exc


def _predict(run: Any, inputs: Sequence[Any], batch_size: int | None) -> list[dict[str, Any]]:
    from headstart.artifacts.predict import predict_files

    return predict_files(run, inputs, batch_size)


def expand_image_inputs(items: list[str]) -> list[str]:
    """Image inputs as files: folders become their image files, glob patterns their matches."""
    from headstart.data.sources import IMAGE_EXTENSIONS

    return expand_files(items, IMAGE_EXTENSIONS)


def _cli_inputs(files: list[str], texts: list[str]) -> list[Any]:
    if texts:
        raise HeadstartError("--text is for text runs; this run classifies images (pass image files)")
    if not files:
        raise HeadstartError("pass one or more image files, folders or glob patterns to predict")
    return list(expand_image_inputs(files))


def _transform(recipe: Recipe) -> Callable[..., Any]:
    from headstart.data.transforms import eval_transform

    return eval_transform(recipe)  # type: ignore[arg-type]


register_recipe_kind(
    RecipeKind(
        name=ImageRecipe.kind,
        read=lambda d, path: ImageRecipe.from_dict(d),
        rebuild=_rebuild,
        eval_loader=_eval_loader,
        train_loader=_train_loader,
        run_files=lambda model, recipe: ({}, {}),
        transform=_transform,
    )
)

IMAGE = register_modality(
    Modality(
        name="image",
        backbone_hint="efficientnet_lite0 or timm:<model>",
        input_field="path",
        claims=lambda source, cfg: True,
        load=_load,
        create_model=create_image_model,
        resolve_recipe=_resolve,
        prepare=lambda model, recipe: None,
        baseline=lambda fitter: fitter.train(),  # scratch: the same network from random weights, trained end to end
        data_facts=lambda data, recipe: {},
        predict=_predict,
        cli_inputs=_cli_inputs,
        fallback=True,
    )
)
