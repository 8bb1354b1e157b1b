"""Backbones: the catalog (static: listing it builds nothing), building a model with its weights
(:mod:`headstart.backbones.build`), and the preprocessing recipe that travels with the weights.

Only light names are re-exported here, so ``headstart backbones`` never imports torch; take
``create_model`` and friends from :mod:`headstart.backbones.build`.
"""

from headstart.backbones.catalog import BackboneSpec, backbone_identity, describe, get_backbone, list_backbones
from headstart.backbones.recipe import MISMATCH, ImageRecipe, check_input_stats, resolve_recipe

__all__ = [
    "BackboneSpec",
    "ImageRecipe",
    "backbone_identity",
    "MISMATCH",
    "check_input_stats",
    "describe",
    "get_backbone",
    "list_backbones",
    "resolve_recipe",
]
