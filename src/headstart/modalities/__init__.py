"""Modality plug-ins (images, texts; audio next) and the functions the pipeline asks them through.

A modality registers itself when its module is imported (:mod:`headstart.modalities.image`,
:mod:`headstart.modalities.text`); adding one means a new module here, not a branch elsewhere.

>>> from headstart.modalities import get_modality
>>> get_modality("text").input_field
'text'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headstart.errors import HeadstartError
from headstart.modalities.base import (
    MODALITIES,
    RECIPE_KINDS,
    Modality,
    RecipeKind,
    get_modality,
    known_recipe_kinds,
    modality_of_source,
    recipe_kind,
    register_modality,
    register_recipe_kind,
    saved_recipe_kind,
)

if TYPE_CHECKING:
    from torch import nn

    from headstart.backbones.catalog import BackboneSpec
    from headstart.backbones.recipe import Recipe
    from headstart.config import PreprocessConfig

__all__ = [
    "MODALITIES",
    "RECIPE_KINDS",
    "Built",
    "Modality",
    "RecipeKind",
    "build_backbone",
    "check_modality",
    "create_model",
    "get_modality",
    "known_recipe_kinds",
    "modality_of_source",
    "recipe_kind",
    "register_modality",
    "register_recipe_kind",
    "resolve_recipe",
    "saved_recipe_kind",
]


@dataclass(frozen=True)
class Built:
    """A catalog backbone, ready for a run: the network, its checkpoint's recipe and the run's resolved recipe."""

    model: nn.Module
    checkpoint_recipe: Recipe
    recipe: Recipe


def create_model(
    spec: BackboneSpec, num_classes: int | None = None, pretrained: bool = True, drop_rate: float = 0.0
) -> tuple[nn.Module, Recipe]:
    """The network of a catalog entry (its modality builds it) with a ``num_classes`` head (none when None),
    and the checkpoint's recipe. ``pretrained=False``: same architecture, random weights."""
    return get_modality(spec.modality).create_model(spec, num_classes, pretrained, drop_rate)


def resolve_recipe(checkpoint: Recipe, overrides: PreprocessConfig) -> Recipe:
    """The run's recipe: ``preprocess.*`` overrides > the checkpoint's recipe (mismatches warn)."""
    return get_modality(checkpoint.modality).resolve_recipe(checkpoint, overrides)


def build_backbone(
    spec: BackboneSpec,
    num_outputs: int | None,
    preprocess: PreprocessConfig,
    pretrained: bool = True,
    drop_rate: float = 0.0,
) -> Built:
    """Build, resolve the recipe, and adapt the network to it: what every run and ranking starts from."""
    modality = get_modality(spec.modality)
    model, checkpoint = modality.create_model(spec, num_outputs, pretrained, drop_rate)
    recipe = modality.resolve_recipe(checkpoint, preprocess)
    modality.prepare(model, recipe)
    return Built(model, checkpoint, recipe)


def check_modality(data: Any, spec: BackboneSpec) -> None:
    """Data and backbone must be of one modality; otherwise say which backbones fit the data."""
    if data.modality == spec.modality:
        return
    hint = get_modality(data.modality).backbone_hint
    article = "an" if spec.modality[0] in "aeiou" else "a"
    raise HeadstartError(
        f"{data.source!r} holds {data.modality} data but backbone {spec.name!r} is {article} {spec.modality} model; "
        f"pass --backbone {hint}"
    )
