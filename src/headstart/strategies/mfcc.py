"""The audio ``scratch`` baseline: MFCC + delta statistics and a linear head, the no-pretraining model to beat.

Each clip (the window a neural backbone sees) becomes the mean and std over time of its MFCCs and their deltas
(:func:`~headstart.backbones.mfcc.mfcc_features`); the features are standardized with the training mean and
std, and the task's linear head (logistic regression, ridge or one-vs-rest, from scikit-learn) is fitted on
them with C chosen on validation. The fitted model is then held as a small torch module
(:class:`~headstart.backbones.mfcc.MfccClassifier`: the linear head; the standardization travels in the
recipe), so it is saved, evaluated and used by ``predict`` through the same run directory and inference path
as every other run, without pickling a scikit-learn object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from headstart.backbones.audio_recipe import AudioRecipe
from headstart.backbones.mfcc import N_MFCC, MfccClassifier, MfccRecipe
from headstart.data.audio import AudioSet
from headstart.data.mfcc import mfcc_matrix
from headstart.errors import HeadstartError
from headstart.tasks.base import ProbeResult
from headstart.tasks.sparse_heads import logistic_head

__all__ = ["MfccFit", "fit_mfcc"]

logger = logging.getLogger(__name__)

HeadFitter = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ProbeResult]  # (x_tr, y_tr, x_val, y_val)


@dataclass
class MfccFit:
    model: MfccClassifier
    recipe: MfccRecipe  # with the training mean and std of every feature
    C: float  # the inverse regularization strength chosen on validation
    history: list[dict[str, float]]  # the validation score per C tried
    skipped: list[str]  # unreadable training / validation clips left out (path: reason)


def _features(
    data: AudioSet, index: np.ndarray, recipe: MfccRecipe, split: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`mfcc_matrix`, refusing a split none of whose clips can be read."""
    x, kept, skipped = mfcc_matrix(data, index, recipe)
    if len(kept) == 0:
        first = f" (first: {skipped[0]})" if skipped else ""
        raise HeadstartError(f"none of the {len(index)} {split} clips could be read{first}; check the audio files")
    return x, kept, skipped


def fit_mfcc(
    data: AudioSet,
    train_index: np.ndarray,
    val_index: np.ndarray,
    audio: AudioRecipe,
    num_outputs: int,
    head: HeadFitter | None = None,
    n_mfcc: int = N_MFCC,
) -> MfccFit:
    """Fit the baseline on ``data[train_index]``, choosing C on ``data[val_index]``.

    ``audio``: the run's backbone recipe; its rate and clip window are used (:meth:`MfccRecipe.from_audio`).
    ``head``: the task's linear head on dense rows (``task.sparse_head`` less its labels argument); default
    multinomial logistic regression over ``num_outputs`` classes. Features constant over the training clips
    keep std 1 (they are only centred).
    """
    base = MfccRecipe.from_audio(audio, n_mfcc)
    x_train, tr, skipped_train = _features(data, train_index, base, "training")
    x_val, va, skipped_val = _features(data, val_index, base, "validation")
    mean, std = x_train.astype(np.float64).mean(0), x_train.astype(np.float64).std(0)
    recipe = base.with_stats(mean, np.where(std > 1e-6, std, 1.0))
    z_train, z_val = recipe.standardize(x_train), recipe.standardize(x_val)  # (n, F) each
    y = np.asarray(data.targets)
    if head is None:
        fit = logistic_head(z_train, y[tr], z_val, y[va], num_outputs)
    else:
        fit = head(z_train, y[tr], z_val, y[va])
    if fit.weight.shape != (num_outputs, recipe.num_features):
        raise HeadstartError(
            f"the head fitter returned weights {fit.weight.shape}, expected ({num_outputs}, {recipe.num_features})"
        )
    model = MfccClassifier(recipe.num_features, num_outputs)
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(fit.weight.astype(np.float32)))
        model.head.bias.copy_(torch.from_numpy(np.asarray(fit.bias).astype(np.float32)))
    logger.info("mfcc: %d features of %d training clips, C=%g", recipe.num_features, len(tr), fit.C)
    return MfccFit(model, recipe, float(fit.C), fit.history, skipped_train + skipped_val)
