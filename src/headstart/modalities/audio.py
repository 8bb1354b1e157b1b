"""The audio modality: folders and tables of sound files and ``builtin:drums``; sound-effect (``aisfx``),
speech (``resemblyzer``) and transformers (``hf:<folder>``) encoders whose front end runs inside the network;
and, for ``scratch``, MFCC statistics + a linear head (the no-pretraining baseline of audio work).

Registered on import (see :mod:`headstart.modalities.base`), with two recipe kinds: ``audio`` (rate, clip
length, front end) and ``mfcc`` (the baseline's features and their training-split standardization).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from headstart.artifacts.names import ENCODER_DIR
from headstart.backbones.audio_recipe import AudioRecipe, resolve_audio_recipe
from headstart.backbones.recipe import Recipe
from headstart.config import DataConfig, PreprocessConfig
from headstart.errors import HeadstartError
from headstart.modalities.base import Modality, RecipeKind, expand_files, register_modality, register_recipe_kind

__all__ = ["AUDIO", "expand_audio_inputs"]

logger = logging.getLogger(__name__)
PATH_COLUMN = "path"  # tables of audio files name them in this column, like image tables


def _claims(source: str, cfg: DataConfig) -> bool:
    from headstart.data.audio_sources import is_audio_source

    return is_audio_source(source, PATH_COLUMN)


def _load(source: str, cfg: DataConfig, empty_labels: bool) -> Any:
    from headstart.data.audio_sources import load_audio

    return load_audio(source, PATH_COLUMN, cfg.label_column, empty_labels)


def _create(spec: Any, outputs: int | None, pretrained: bool, drop_rate: float) -> tuple[nn.Module, Recipe]:
    from headstart.backbones.audio import create_audio_model

    return create_audio_model(spec, outputs, pretrained, drop_rate)


def _resolve(checkpoint: Recipe, overrides: PreprocessConfig) -> Recipe:
    assert isinstance(checkpoint, AudioRecipe)
    return resolve_audio_recipe(checkpoint, overrides)


def _prepare(model: nn.Module, recipe: Recipe) -> None:
    """The network's front end computes what the resolved recipe says (rate, mels, FFT after overrides)."""
    from headstart.backbones.audio import AudioClassifier

    assert isinstance(model, AudioClassifier) and isinstance(recipe, AudioRecipe)
    model.apply_recipe(recipe)


def _eval_loader(data: Any, index: np.ndarray, recipe: Recipe, batch_size: int, num_workers: int) -> DataLoader:
    from headstart.data.waves import make_audio_loader

    return make_audio_loader(data, index, recipe, batch_size, num_workers=num_workers)  # type: ignore[arg-type]


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
    from headstart.data.waves import make_audio_loader

    return make_audio_loader(
        data,
        index,
        recipe,  # type: ignore[arg-type]
        batch_size,
        shuffle=True,
        generator=generator,
        num_workers=num_workers,
        drop_last=drop_last,
        weights=weights,
    )


def _rebuild(path: Path, manifest: dict[str, Any], recipe: Recipe, outputs: int) -> nn.Module:
    """The run's network with random weights (its weights are loaded next); hf: encoders from ``encoder/``."""
    from headstart.backbones.audio import rebuild_audio_model

    assert isinstance(recipe, AudioRecipe)
    return rebuild_audio_model(manifest["backbone"]["architecture"], recipe, outputs, path / ENCODER_DIR)


def _encoder_files(model: nn.Module, recipe: Recipe) -> tuple[dict[str, str], dict[str, Callable[[Path], None]]]:
    """hf: audio runs carry the encoder's config and feature extractor, so the run loads without the hub."""
    from headstart.backbones.audio import save_encoder_config

    if getattr(model, "architecture", None) != "hf-audio":
        return {}, {}
    return {}, {ENCODER_DIR: lambda folder: save_encoder_config(model, folder)}


def _data_facts(data: Any, recipe: Recipe) -> dict[str, Any]:
    """Clip durations, how many clips were resampled, and how many are longer than the recipe's window."""
    from headstart.data.audio import resample_notice

    rate, clip_seconds = recipe.sample_rate, recipe.clip_samples / recipe.sample_rate  # type: ignore[attr-defined]
    seconds = data.durations()  # audio and MFCC recipes both cut clip_samples at sample_rate
    notice = resample_notice(data, rate)
    if notice:
        logger.warning("%s (the recipe's rate)", notice)  # once per run, with the count
    facts: dict[str, Any] = {
        "audio": {
            "seconds": {"min": float(seconds.min()), "median": float(np.median(seconds)), "max": float(seconds.max())},
            "cropped": int((seconds > clip_seconds + 1e-9).sum()),
            "padded": int((seconds < clip_seconds - 1e-9).sum()),
            "resampled": notice,
        }
    }
    return facts


def _mfcc_baseline(fitter: Any) -> Any:
    """Audio ``scratch``: MFCC (+ delta) statistics + the task's linear head, C chosen on validation, on the
    same clip window (rate, length) as the run's backbone recipe."""
    from headstart.strategies.mfcc import fit_mfcc

    data, splits, run = fitter.data, fitter.splits, fitter.run
    task = run.task
    # MFCC statistics are dense rows: the task's probe (its wide penalty grid), as on backbone features
    head = lambda *a: task.fit_probe(*a, data.labels, run.cfg)  # noqa: E731
    fit = fit_mfcc(data, splits["train"], splits["val"], fitter.built.recipe, task.num_outputs(data.labels), head)
    run.skips.add(fit.skipped)
    params = fit.model.head.weight.numel() + fit.model.head.bias.numel()
    history = [
        {"epoch": 1, **h, "lr": {}, "trainable_params": params, "events": [f"mfcc C={h['C']:g}"]}
        for h in fit.history
        if h["C"] == fit.C
    ]
    identity = {"name": "mfcc", "architecture": "mfcc", "source": "librosa MFCC statistics (no pretraining)"}
    extra = {"backbone": identity, "baseline": "mfcc statistics + linear head (no pretraining)", "mfcc_C": fit.C}
    return fitter.fitted(fit.model, fit.recipe, fit.recipe, history, extra=extra)


def expand_audio_inputs(items: list[str]) -> list[str]:
    """Audio inputs as files: folders become their audio files, glob patterns their matches."""
    from headstart.data.audio import AUDIO_EXTENSIONS

    return expand_files(items, AUDIO_EXTENSIONS)


def _cli_inputs(files: list[str], texts: list[str]) -> list[Any]:
    if texts:
        raise HeadstartError("--text is for text runs; this run classifies audio (pass audio files)")
    if not files:
        raise HeadstartError("pass one or more audio files (.wav, .flac, .ogg, .mp3), folders or glob patterns")
    return list(expand_audio_inputs(files))


def _predict(run: Any, inputs: Sequence[Any], batch_size: int | None) -> list[dict[str, Any]]:
    from headstart.artifacts.predict_audio import predict_audio

    return predict_audio(run, inputs, batch_size)


def _transform(recipe: Recipe) -> Callable[..., Any]:
    from headstart.data.waves import clip_transform

    return clip_transform(recipe)  # type: ignore[arg-type]


def _read_mfcc(d: dict[str, Any], path: Path) -> Recipe:
    from headstart.backbones.mfcc import MfccRecipe

    return MfccRecipe.from_dict(d)


def _mfcc_loader(data: Any, index: np.ndarray, recipe: Recipe, batch_size: int, num_workers: int) -> DataLoader:
    from headstart.data.mfcc import make_mfcc_loader

    return make_mfcc_loader(data, index, recipe, batch_size)  # type: ignore[arg-type]


def _no_gradient_training(*args: Any) -> DataLoader:
    raise HeadstartError("an MFCC model is fitted in closed form (the audio scratch baseline), never by gradients")


def _rebuild_mfcc(path: Path, manifest: dict[str, Any], recipe: Recipe, outputs: int) -> nn.Module:
    from headstart.backbones.mfcc import MfccClassifier

    return MfccClassifier(recipe.num_features, outputs)  # type: ignore[attr-defined]


def _mfcc_transform(recipe: Recipe) -> Callable[..., Any]:
    """``(wave, sample_rate) -> (F,)`` standardized MFCC statistics of the clip's centre window."""
    from headstart.backbones.mfcc import MfccRecipe, mfcc_features
    from headstart.data.waves import clip_transform

    assert isinstance(recipe, MfccRecipe)
    clip = clip_transform(recipe)  # type: ignore[arg-type]  # it reads sample_rate and clip_samples only
    return lambda wave, rate: recipe.standardize(mfcc_features(clip(wave, rate).numpy(), recipe))


register_recipe_kind(
    RecipeKind(
        name=AudioRecipe.kind,
        read=lambda d, path: AudioRecipe.from_dict(d),
        rebuild=_rebuild,
        eval_loader=_eval_loader,
        train_loader=_train_loader,
        run_files=_encoder_files,
        transform=_transform,
    )
)
register_recipe_kind(
    RecipeKind(
        name="mfcc",
        read=_read_mfcc,
        rebuild=_rebuild_mfcc,
        eval_loader=_mfcc_loader,
        train_loader=_no_gradient_training,
        run_files=lambda model, recipe: ({}, {}),
        transform=_mfcc_transform,
    )
)

AUDIO = register_modality(
    Modality(
        name="audio",
        backbone_hint="aisfx (sounds), resemblyzer (speech) or hf:<wav2vec2-like folder>",
        input_field="path",
        claims=_claims,
        load=_load,
        create_model=_create,
        resolve_recipe=_resolve,
        prepare=_prepare,
        baseline=_mfcc_baseline,
        data_facts=_data_facts,
        predict=_predict,
        cli_inputs=_cli_inputs,
        fine_tune_advice=(
            "lp-ft",
            "audio encoders fine-tune best from a fitted head (lp-ft led both drums benches; from a random head the "
            "speech encoder diverged)",
        ),
        claim_order=10,  # before text, which claims any JSONL: audio claims a table only when it names sound files
    )
)
