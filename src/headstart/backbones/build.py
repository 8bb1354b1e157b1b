"""Building a catalog entry: the network (timm image models, transformers text encoders) with its
packaged or user weights, and the recipe resolved against the user's overrides.

Heavy (torch, timm, transformers): the static catalog (:mod:`headstart.backbones.catalog`) stays light,
so listing it never builds a model.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from headstart.backbones.catalog import BackboneSpec, encoder_location
from headstart.backbones.loading import load_by_name, load_by_order, read_state_dict
from headstart.backbones.recipe import DEFAULT_RECIPE, ImageRecipe
from headstart.backbones.text import TextClassifier, TextRecipe, load_encoder, read_recipe
from headstart.errors import HeadstartError

__all__ = ["build_architecture", "classifier", "create_image_model", "create_text_model", "torch_load_packaged"]

logger = logging.getLogger(__name__)


def classifier(model: nn.Module) -> nn.Module:
    """The classification head of a timm model (``get_classifier()``)."""
    head = model.get_classifier()  # type: ignore[operator]
    assert isinstance(head, nn.Module)
    return head


def build_architecture(architecture: str, num_classes: int, drop_rate: float = 0.0) -> nn.Module:
    """The bare timm module with random weights (used before loading a saved run)."""
    import timm

    return timm.create_model(architecture, pretrained=False, num_classes=num_classes, drop_rate=drop_rate)


def _timm_recipe(model: nn.Module) -> ImageRecipe:
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    size = cfg.get("input_size", (3, 224, 224))
    return ImageRecipe(
        input_size=int(size[-1]),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
        interpolation=str(cfg.get("interpolation", "bilinear")),
        mean=tuple(cfg.get("mean", DEFAULT_RECIPE.mean)),  # type: ignore[arg-type]
        std=tuple(cfg.get("std", DEFAULT_RECIPE.std)),  # type: ignore[arg-type]
    )


def _hub_model(spec: BackboneSpec) -> nn.Module:
    import timm

    try:
        return timm.create_model(spec.architecture, pretrained=True)
    except Exception as exc:  # noqa: BLE001 - hub/network errors come in many types
        raise HeadstartError(
            f"could not download pretrained weights for {spec.name} from the Hugging Face hub "
            f"({exc.__class__.__name__}: {str(exc)[:200]}); this needs the internet (and HF_HUB_OFFLINE unset). "
            "Offline, pass a local checkpoint with --weights FILE (safetensors or a state dict)"
        ) from exc


def create_text_model(
    spec: BackboneSpec, num_classes: int | None = None, pretrained: bool = True, drop_rate: float = 0.0
) -> tuple[nn.Module, TextRecipe]:
    """A catalog text encoder with a ``num_classes`` head (none when None) and its checkpoint's recipe."""
    location = encoder_location(spec)
    encoder = load_encoder(location, pretrained=pretrained)
    recipe = read_recipe(location, encoder)
    return TextClassifier(encoder, num_classes or 0, recipe.pooling, recipe.normalize), recipe


def create_image_model(
    spec: BackboneSpec, num_classes: int | None = None, pretrained: bool = True, drop_rate: float = 0.0
) -> tuple[nn.Module, ImageRecipe]:
    """Build a catalog image model with its pretrained weights; replace the head when ``num_classes`` is given.

    Returns the model and the checkpoint's preprocessing recipe. ``pretrained=False`` gives the same
    architecture with random weights (the ``scratch`` baseline) and the same recipe.
    """
    import timm

    if not pretrained:
        model = timm.create_model(spec.architecture, pretrained=False, drop_rate=drop_rate)
    elif spec.weights is not None:
        model = timm.create_model(spec.architecture, pretrained=False, drop_rate=drop_rate)
        load_by_order(model, torch_load_packaged(spec), spec.name)
    elif spec.weights_file is not None:
        model = timm.create_model(spec.architecture, pretrained=False, drop_rate=drop_rate)
        head = classifier(model)
        head_names = tuple(n for n, m in model.named_modules() if m is head and n)
        load_by_name(model, read_state_dict(spec.weights_file), spec.weights_file, skip_prefixes=head_names)
    else:
        model = _hub_model(spec)
        model.drop_rate = drop_rate  # type: ignore[assignment]
    recipe = spec.recipe or _timm_recipe(model)
    assert isinstance(recipe, ImageRecipe), f"{spec.name} is not an image backbone"
    if num_classes is not None:
        model.reset_classifier(num_classes)  # type: ignore[operator]
    return model, recipe


def torch_load_packaged(spec: BackboneSpec) -> dict[str, torch.Tensor]:
    assert spec.weights is not None
    path = spec.weights()
    if not path.is_file():
        raise HeadstartError(
            f"{spec.name}: packaged weights file {str(path)!r} is missing; reinstall with `make setup`"
        )
    return torch.load(str(path), map_location="cpu", weights_only=True)
