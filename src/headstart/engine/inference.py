"""Forward passes for features and the task's scores (class probabilities), shared by training, evaluate and predict.

Every pass here is a kept one (features, validation and test scores, evaluate, predict): the
backbone runs in the runtime's inference precision (``Runtime.inference``: fp32, whatever
``train.precision`` the training steps used), and the head always runs in fp32 on the pooled
features. So probabilities computed from cached features and from images are identical, and the
ones a run records are what ``evaluate`` and ``predict`` give on any machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from headstart.backbones.build import classifier
from headstart.backbones.recipe import Recipe
from headstart.data.loader import Batch, SkipLog
from headstart.engine.progress import progress
from headstart.engine.runtime import Runtime
from headstart.tasks import Task

if TYPE_CHECKING:
    from headstart.engine.frozen import FrozenPrefix

__all__ = ["pooled_features", "head_logits", "checked_batches", "run_features", "run_scores"]


def pooled_features(model: nn.Module, x: Any, runtime: Runtime) -> torch.Tensor:
    """(B, 3, H, W) images or a dict of (B, T) token tensors -> (B, D) float32 pre-logits features,
    computed in ``runtime.precision`` (not the training steps' autocast)."""
    with runtime.inference():
        feats = model.forward_head(model.forward_features(runtime.batch(x)), pre_logits=True)  # type: ignore[operator]
    return feats.float()


def head_logits(model: nn.Module, feats: torch.Tensor) -> torch.Tensor:
    """(B, D) -> (B, K) logits, in fp32."""
    return classifier(model)(feats.float())


def checked_batches(loader: DataLoader, recipe: Recipe, skips: SkipLog, desc: str) -> Iterator[Batch]:
    """Non-empty batches of a loader, with a progress bar; unreadable images go to ``skips``.

    The first batch is checked against the recipe (``recipe.check_batch``: pixel statistics for
    images, token ids within the encoder's vocabulary for text).
    """
    checked = False
    for batch in progress(loader, total=len(loader), description=desc):
        skips.add(batch.skipped)
        if len(batch.y) == 0:
            continue
        if not checked:
            recipe.check_batch(batch.x)
            checked = True
        yield batch


def run_features(
    model: nn.Module, loader: DataLoader, n: int, runtime: Runtime, recipe: Recipe, skips: SkipLog, desc: str
) -> tuple[np.ndarray, np.ndarray]:
    """Features for every item of the loader's dataset, in dataset order: ``(features (n, D), valid (n,))``.

    ``n`` is the size of the underlying ImageSet; rows of unreadable images stay zero and invalid.
    """
    model.eval()
    feats: np.ndarray | None = None
    valid = np.zeros(n, dtype=bool)
    with torch.inference_mode():
        for batch in checked_batches(loader, recipe, skips, desc):
            f = pooled_features(model, batch.x, runtime).cpu().numpy()
            if feats is None:
                feats = np.zeros((n, f.shape[1]), dtype=np.float32)
            idx = batch.index.numpy()
            feats[idx], valid[idx] = f, True
    if feats is None:
        feats = np.zeros((n, 0), dtype=np.float32)
    return feats, valid


def run_scores(
    model: nn.Module,
    loader: DataLoader,
    runtime: Runtime,
    recipe: Recipe,
    skips: SkipLog,
    desc: str,
    task: Task,
    frozen: FrozenPrefix | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The task's scores over a loader (class probabilities for classification):
    ``(scores (m, K), targets (m,), index (m,))``, unreadable examples skipped. ``frozen``: a training run's
    frozen-prefix cache, which then serves the prefix's output (computed in this pass's precision)."""
    model.eval()
    scores, targets, index = [], [], []
    with torch.inference_mode():
        for batch in checked_batches(loader, recipe, skips, desc):
            x = runtime.batch(batch.x)
            serving = frozen.serving(x, batch.index, "eval", runtime.inference) if frozen else nullcontext()
            with serving:
                logits = head_logits(model, pooled_features(model, x, runtime))
            scores.append(task.scores(logits).cpu().numpy())
            targets.append(batch.y.numpy())
            index.append(batch.index.numpy())
    if not scores:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(scores), np.concatenate(targets), np.concatenate(index)
