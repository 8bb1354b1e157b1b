"""The gradient train loop: AdamW over named parameter groups, warmup + cosine, best epoch on val."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from headstart.backbones.recipe import Recipe
from headstart.config import RunConfig
from headstart.data.images import ImageSet
from headstart.data.loader import Batch, SkipLog, make_loader
from headstart.data.transforms import eval_transform, train_transform
from headstart.engine.inference import checked_batches, run_probabilities
from headstart.engine.runtime import Runtime
from headstart.engine.schedule import warmup_cosine
from headstart.metrics.classification import log_loss_from_proba
from headstart.strategies.base import Strategy
from headstart.strategies.param_groups import build_param_groups, count_trainable

__all__ = ["TrainResult", "train_gradient"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one record per epoch
    best_epoch: int = 0  # 1-based epoch whose weights were kept
    seconds: float = 0.0


def _validate(
    model: nn.Module,
    images: ImageSet,
    index: np.ndarray,
    recipe: Recipe,
    cfg: RunConfig,
    runtime: Runtime,
    skips: SkipLog,
) -> dict[str, float]:
    loader = make_loader(images, index, eval_transform(recipe), cfg.train.batch_size, num_workers=cfg.train.num_workers)
    proba, y, _ = run_probabilities(model, loader, runtime, recipe, skips, "validating")
    pred = proba.argmax(1)
    labels = np.arange(len(images.labels))
    return {
        "val_loss": log_loss_from_proba(y, proba),
        "val_accuracy": float((pred == y).mean()),
        "val_macro_f1": float(f1_score(y, pred, average="macro", labels=labels, zero_division=0)),
    }


def _train_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: nn.Module,
    runtime: Runtime,
) -> list[float]:
    """One pass of optimizer steps (forward under the runtime's autocast, loss in fp32)."""
    losses = []
    for batch in batches:
        with runtime.autocast():
            logits = model(runtime.batch(batch.x))
        loss = loss_fn(logits.float(), batch.y.to(runtime.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def train_gradient(
    model: nn.Module,
    strategy: Strategy,
    images: ImageSet,
    splits: dict[str, np.ndarray],
    recipe: Recipe,
    cfg: RunConfig,
    runtime: Runtime,
    skips: SkipLog,
) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch."""
    start = time.perf_counter()
    torch.manual_seed(cfg.train.seed)
    model = runtime.model(model)
    strategy.setup(model)
    groups = build_param_groups(model, cfg.optim.lr, strategy.backbone_lr_factor(), cfg.optim.weight_decay)
    optimizer = torch.optim.AdamW([g for g in groups if any(p.requires_grad for p in g["params"])])
    loader = make_loader(
        images,
        splits["train"],
        train_transform(recipe, cfg.preprocess),
        cfg.train.batch_size,
        shuffle=True,
        seed=cfg.train.seed,
        num_workers=cfg.train.num_workers,
        drop_last=len(splits["train"]) > cfg.train.batch_size,
    )
    total = cfg.train.epochs * len(loader)
    warmup = int(round(cfg.optim.warmup_fraction * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, total, warmup))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)
    result, best_key, best_state = TrainResult(), None, None
    for epoch in range(1, cfg.train.epochs + 1):
        events = strategy.on_epoch_begin(model, epoch)
        strategy.train_mode(model)
        batches = checked_batches(loader, recipe, skips, f"epoch {epoch}/{cfg.train.epochs}")
        losses = _train_epoch(model, batches, optimizer, scheduler, loss_fn, runtime)
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            **_validate(model, images, splits["val"], recipe, cfg, runtime, skips),
            "lr": {g["name"]: g["lr"] for g in optimizer.param_groups},
            "trainable_params": count_trainable(model),
            "events": events,
        }
        result.history.append(record)
        logger.info("epoch %d: %s", epoch, {k: v for k, v in record.items() if k.startswith(("train", "val"))})
        key = (record["val_accuracy"], -record["val_loss"])
        if best_key is None or key > best_key:
            best_key, best_state, result.best_epoch = key, copy.deepcopy(model.state_dict()), epoch
    assert best_state is not None
    model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - start
    return result
