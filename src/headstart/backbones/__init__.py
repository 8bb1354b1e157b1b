"""Backbones: the catalog, weight loading and the preprocessing recipe that travels with weights."""

from headstart.backbones.catalog import (
    BackboneSpec,
    backbone_identity,
    build_architecture,
    create_model,
    get_backbone,
    list_backbones,
)
from headstart.backbones.recipe import MISMATCH, Recipe, check_input_stats, resolve_recipe

__all__ = [
    "BackboneSpec",
    "Recipe",
    "backbone_identity",
    "MISMATCH",
    "build_architecture",
    "check_input_stats",
    "create_model",
    "get_backbone",
    "list_backbones",
    "resolve_recipe",
]
