"""The gradient train loop: named parameter groups made once, gated by the strategy's phase.

Every layer group has its optimizer groups from the first step. Freezing sets ``requires_grad``
to False, its LR multiplier to 0 (no autograd graph) and the group to eval mode (:mod:`headstart.engine.frozen`
caches a frozen prefix's output); unfreezing flips all three back, with a short per-group LR warmup. The LR of a
group at a step is ``base_lr x warmup_cosine(step) x gate(group, step)``. A checkpoint follows every epoch.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.backbones.layers import LayerGroup, layer_groups, module_owners
from headstart.backbones.recipe import Recipe
from headstart.config import RunConfig
from headstart.data.loader import Batch, SkipLog
from headstart.data.pipeline import eval_loader, train_loader
from headstart.data.target import Target
from headstart.engine import distributed
from headstart.engine.adapt import ADAPT_GROUP, CRITIC, DomainAligner, target_record
from headstart.engine.checkpoint import (
    CHECKPOINT_DIR,
    Checkpoint,
    capture_rng,
    check_same_data,
    damaged_checkpoint,
    data_identity,
    restore_rng,
    save_checkpoint,
)
from headstart.engine.frozen import FrozenPrefix, cache_off_reason
from headstart.engine.inference import checked_batches, run_scores
from headstart.engine.runtime import Runtime
from headstart.engine.schedule import drops_last, steps_per_epoch, unfreeze_gate, warmup_cosine
from headstart.engine.tensorboard import TB_DIR, TensorBoardLog
from headstart.strategies.base import PlateauTrigger, Strategy, next_frozen, val_per_train
from headstart.strategies.param_groups import build_param_groups, count_trainable
from headstart.tasks import Task, get_task

__all__ = ["TrainResult", "Trainer", "steps_per_epoch", "train_gradient", "unfreeze_gate"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one record per epoch
    best_epoch: int = 0  # 1-based epoch whose weights were kept
    seconds: float = 0.0


class Trainer:
    """Owns the training state: model, optimizer, phase (trainable groups by name), step, history."""

    def __init__(
        self,
        model: nn.Module,
        strategy: Strategy,
        images: Any,
        splits: dict[str, np.ndarray],
        recipe: Recipe,
        cfg: RunConfig,
        runtime: Runtime,
        skips: SkipLog,
        run_dir: Path | None = None,
        task: Task | None = None,
        target: Target | None = None,
    ):
        self.task = task or get_task(cfg.task.kind)
        self.model, self.strategy, self.images, self.splits = runtime.model(model), strategy, images, splits
        self.recipe, self.cfg, self.runtime, self.skips, self.run_dir = recipe, cfg, runtime, skips, run_dir
        self.data_id = data_identity(images, splits)  # recorded in checkpoints, checked on resume
        self.groups: list[LayerGroup] = layer_groups(self.model)
        self.names = [g.name for g in self.groups]
        self.owners = module_owners(self.model, self.groups)  # module -> the layer group that owns all of it
        self.runtime = runtime.folding(self.model, self.owners) if cfg.train.fold_bn else runtime
        self.param_groups = build_param_groups(
            self.model,
            self.groups,
            strategy.head_lr(),
            strategy.backbone_lr_factor(),
            cfg.strategy.layer_decay,
            cfg.optim.weight_decay,
        )
        self.target, self.aligner = target, self._aligner(target)
        extra = self.aligner.param_groups(strategy.head_lr(), cfg.optim.weight_decay) if self.aligner else []
        self.optimizer = torch.optim.AdamW(self.param_groups + extra)
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        self.loader = distributed.shard_loader(self._loader())  # this rank's slice of each global batch
        self._ddp: nn.Module | None = None  # DDP wrapper, rebuilt after each phase change
        self.steps_per_epoch = len(self.loader)
        self.total_steps = cfg.train.epochs * self.steps_per_epoch
        self.warmup_steps = int(round(cfg.optim.warmup_fraction * self.total_steps))
        self.unfreeze_warmup_steps = int(round(cfg.strategy.unfreeze_warmup * self.steps_per_epoch))
        self.trainable = set(strategy.initial_trainable(self.names))
        self.unfrozen_at = dict.fromkeys(self.trainable, 0)
        self.pending = strategy.scheduled_unfreezes(self.names, self.steps_per_epoch, cfg.train.epochs)
        self.rule = strategy.plateau_rule(self.names, self.steps_per_epoch, cfg.train.epochs, val_per_train(splits))
        self.plateau = PlateauTrigger(self.rule.patience, self.rule.min_delta) if self.rule else None
        self.step, self.epoch = 0, 0
        self.early_events: list[str] = []  # events before the first step (a plateau check), for epoch 1's record
        self.result = TrainResult()
        self.best_key: tuple[float, ...] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.loss_fn = self.task.loss(cfg, images, splits["train"]).to(runtime.device)
        writes = cfg.train.log == "tensorboard" and distributed.is_main()
        self.tb = TensorBoardLog(run_dir / TB_DIR) if writes and run_dir is not None else None
        self.frozen = self._frozen_prefix()
        self._apply_requires_grad()

    def _loader(self) -> Any:
        """The shuffled training batches (driven by ``self.generator``)."""
        cfg, train = self.cfg, self.splits["train"]
        return train_loader(
            self.images,
            train,
            self.recipe,
            cfg.preprocess,
            cfg.train.batch_size,
            self.generator,
            drops_last(len(train), cfg.train.batch_size),
            num_workers=cfg.train.num_workers,
            balanced=cfg.data.sampler == "balanced",
        )

    def _aligner(self, target: Target | None) -> DomainAligner | None:
        """The domain loss's target side (``dann``, ``coral`` with ``--target``), else None."""
        method = self.strategy.domain_loss
        if method is None or target is None:
            return None
        return DomainAligner(method, target, self.model, self.recipe, self.cfg, self.runtime)

    def _frozen_prefix(self) -> FrozenPrefix | None:
        """The frozen-prefix activation cache (``train.cache_frozen``), or None with the reason in the log."""
        off = cache_off_reason(self.cfg, self.strategy.domain_loss)
        if off is not None:
            logger.info("frozen-prefix cache off: %s", off)
            return None
        return FrozenPrefix(self.model, self.names, self.owners, int(self.cfg.train.cache_memory_gb * 2**30))

    # -- phase ---------------------------------------------------------------------------------
    def _apply_requires_grad(self) -> None:
        params = dict(self.model.named_parameters())
        for g in self.groups:
            for n in g.params:
                params[n].requires_grad_(g.name in self.trainable and self.strategy.trains_param(n))
        self._ddp = None  # DDP tracks the parameters that required gradients when it was built
        if self.frozen is not None:  # cache the groups before the first trainable one if they stay frozen > an epoch
            first = next((i for i, name in enumerate(self.names) if name in self.trainable), 0)
            lasts = min(self.pending.values(), default=self.total_steps) - self.step > self.steps_per_epoch
            self.frozen.set_frozen(first if lasts else 0)

    def forward_model(self) -> nn.Module:
        """The module to call in a training step: the model, or its DDP wrapper in a distributed run."""
        if not distributed.is_distributed():
            return self.model
        if self._ddp is None:
            from torch.nn.parallel import DistributedDataParallel

            cuda = self.runtime.device.type == "cuda"
            self._ddp = DistributedDataParallel(self.model, device_ids=[self.runtime.device] if cuda else None)
        return self._ddp

    def unfreeze(self, name: str, reason: str) -> str:
        self.trainable.add(name)
        self.unfrozen_at[name] = self.step
        self._apply_requires_grad()
        self.train_mode()
        return f"unfroze {name}" + (f" ({reason})" if reason else "")

    def train_mode(self) -> None:
        """``model.train()``, then the frozen groups' modules back to eval mode (their BatchNorm statistics and
        dropout fixed: a frozen group computes the same output for the same input), and with bn=frozen every
        BatchNorm."""
        self.model.train()
        freeze_all = self.strategy.bn_policy() == "frozen"
        for mname, module in self.model.named_modules():
            group = self.owners.get(mname)
            batchnorm = isinstance(module, nn.modules.batchnorm._BatchNorm)
            if (group is not None and group not in self.trainable) or (batchnorm and (freeze_all or group is None)):
                module.eval()

    def _set_lrs(self) -> None:
        scale = warmup_cosine(self.step, self.total_steps, self.warmup_steps)
        for g in self.optimizer.param_groups:
            name = g["layer_group"]
            trainable = name in self.trainable or name == ADAPT_GROUP  # the domain classifier always trains
            gate = unfreeze_gate(self.step, trainable, self.unfrozen_at.get(name, 0), self.unfreeze_warmup_steps)
            g["lr"] = g["base_lr"] * scale * gate

    # -- loop ----------------------------------------------------------------------------------
    def _scheduled_events(self) -> list[str]:
        due = [n for n, s in self.pending.items() if s <= self.step and n not in self.trainable]
        for n in due:
            del self.pending[n]
        return [self.unfreeze(n, "") for n in sorted(due, key=self.names.index, reverse=True)]

    def _train_epoch(self) -> tuple[list[float], list[str]]:
        losses, events = [], self.early_events
        self.early_events = []
        self.train_mode()
        if self.aligner is not None:
            self.aligner.start_epoch(self.epoch)
        batches = checked_batches(
            self.loader, self.recipe, self.skips, f"epoch {self.epoch + 1}/{self.cfg.train.epochs}"
        )
        for batch in batches:
            events += self._scheduled_events()
            losses.append(self.train_step(batch))
            if self._checks_now():  # plateau: a validation check inside the epoch (its end has its own)
                events += self._on_check(self.task.select(self._validate())[0])
                self.train_mode()
        return losses, events

    def _checks_now(self) -> bool:
        rule = self.rule
        return rule is not None and self.step % rule.eval_every == 0 and self.step % self.steps_per_epoch != 0

    def _on_check(self, value: float) -> list[str]:
        """Feed one validation check to the plateau trigger; on a plateau, unfreeze the next groups (never
        after the run's last step)."""
        if self.plateau is None or self.rule is None or not self.plateau.update(value):
            return []
        if self.step >= self.total_steps:
            return []
        events = []
        for _ in range(self.rule.groups):
            nxt = next_frozen(self.names, self.trainable)
            if nxt is not None:
                events.append(self.unfreeze(nxt, f"plateau at step {self.step}"))
        return events

    def train_step(self, batch: Batch) -> float:
        """One optimizer step at the current phase's learning rates; returns the loss."""
        self._set_lrs()
        align, x = None, self.runtime.train_batch(batch.x)
        with self.runtime.autocast():
            if self.aligner is None:
                frozen = self.frozen.serving(x, batch.index, "train", self.runtime.autocast) if self.frozen else None
                with frozen or contextlib.nullcontext():
                    logits = self.forward_model()(x)
            else:  # source logits and the domain loss (one process: DomainAligner refuses torchrun)
                logits, align = self.aligner.step(self.model, x, self.step / self.total_steps)
        loss = self.loss_fn(logits.float(), batch.y.to(self.runtime.device))
        if align is not None:
            loss = loss + align
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return float(loss.item())

    def _validate(self) -> dict[str, float]:
        loader = eval_loader(
            self.images,
            distributed.shard(self.splits["val"]),
            self.recipe,
            self.cfg.train.batch_size,
            num_workers=self.cfg.train.num_workers,
        )
        runtime = self.runtime.for_fitting()  # choosing the epoch is training: in its precision (bench/README)
        part = run_scores(self.model, loader, runtime, self.recipe, self.skips, "validating", self.task, self.frozen)
        scores, y, _ = distributed.gather_rows(part, part[2])  # every rank sees the same metrics
        return self.task.validate(y, scores, self.images.labels)

    def run_epoch(self) -> dict[str, Any]:
        losses, events = self._train_epoch()
        self.epoch += 1
        record: dict[str, Any] = {
            "epoch": self.epoch,
            # each rank's mean over its slices of the global batches, averaged over ranks
            "train_loss": distributed.mean_across(float(np.mean(losses)) if losses else float("nan")),
            **self._validate(),
            **(self.aligner.last if self.aligner else {}),
        }
        if self.target is not None and self.target.labelled:  # read by the bench as the oracle, never to pick
            record.update(target_record(self.model, self.target, self.recipe, self.cfg, self.runtime, self.task))
        key = self.task.select(record)  # classification: (val accuracy, -val loss)
        if self.best_key is None or key > self.best_key:
            self.best_key, self.best_state = key, copy.deepcopy(self.model.state_dict())
            self.result.best_epoch = self.epoch
        events += self._on_check(key[0])
        record.update(
            lr={g["name"]: g["lr"] for g in self.optimizer.param_groups},
            trainable_params=count_trainable(self.model),
            trainable_groups=[n for n in self.names if n in self.trainable],
            events=events,
        )
        self.result.history.append(record)
        if self.tb is not None:
            self.tb.log(record)
        logger.info("epoch %d: %s", self.epoch, {k: v for k, v in record.items() if k.startswith(("train_", "val"))})
        return record

    def fit(self) -> TrainResult:
        start = time.perf_counter()
        if self.plateau is not None and self.step == 0 and self.plateau.best is None:
            # the starting head's score (the probe's, for plateau): the first epoch's record lists what it did
            self.early_events = self._on_check(self.task.select(self._validate())[0])
        while self.epoch < self.cfg.train.epochs:
            self.run_epoch()
            if self.run_dir is not None:
                # every rank holds the same state; rank 0 writes it
                path = save_checkpoint(self.run_dir, self.checkpoint()) if distributed.is_main() else None
                distributed.barrier()
                self.on_checkpoint(path or self.run_dir / CHECKPOINT_DIR)
        if self.tb is not None:
            self.tb.close()
        if self.frozen is not None:
            self.frozen.close()
        assert self.best_state is not None
        self.model.load_state_dict(self.best_state)
        self.result.seconds += time.perf_counter() - start
        return self.result

    def on_checkpoint(self, path: Path) -> None:
        """Called on every rank after each checkpoint is on disk (a hook for callers and tests)."""

    # -- checkpoint ----------------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "trainable": sorted(self.trainable),
            "unfrozen_at": self.unfrozen_at,
            "pending": self.pending,
            "plateau": self.plateau.state_dict() if self.plateau else None,
            "best_key": list(self.best_key) if self.best_key else None,
            "best_epoch": self.result.best_epoch,
            "history": self.result.history,
            "seconds": self.result.seconds,
            "config": self.cfg.to_dict(),
            "data": self.data_id,
        }
        critic = {f"{CRITIC}.{k}": v for k, v in (self.aligner.state_dict() or {}).items()} if self.aligner else {}
        return Checkpoint(
            {**self.model.state_dict(), **critic},
            self.best_state,
            self.optimizer.state_dict(),
            capture_rng(self.generator),
            state,
        )

    def restore(self, ckpt: Checkpoint) -> None:
        s = ckpt.state
        check_same_data(s.get("data"), self.data_id, self.run_dir)
        prefix = f"{CRITIC}."
        critic = {k.removeprefix(prefix): v for k, v in ckpt.model.items() if k.startswith(prefix)}
        try:
            self.model.load_state_dict({k: v for k, v in ckpt.model.items() if not k.startswith(prefix)})
            self.optimizer.load_state_dict(ckpt.optimizer)
        except (RuntimeError, ValueError, KeyError) as exc:
            where = (self.run_dir or Path(".")) / CHECKPOINT_DIR
            problem = f"its weights or optimizer state do not fit the network ({str(exc).splitlines()[0]})"
            raise damaged_checkpoint(where, problem) from exc
        self.epoch, self.step = s["epoch"], s["step"]
        self.trainable, self.unfrozen_at, self.pending = set(s["trainable"]), s["unfrozen_at"], s["pending"]
        if self.plateau is not None and s["plateau"] is not None:
            self.plateau.load_state_dict(s["plateau"])
        self.best_key = tuple(s["best_key"]) if s["best_key"] else None  # type: ignore[assignment]
        self.best_state = ckpt.best
        self.result = TrainResult(history=s["history"], best_epoch=s["best_epoch"], seconds=s["seconds"])
        self._apply_requires_grad()
        if self.aligner is not None:
            self.aligner.load_state_dict(critic or None)
        restore_rng(ckpt.rng, self.generator)


def train_gradient(
    model: nn.Module,
    strategy: Strategy,
    images: Any,
    splits: dict[str, np.ndarray],
    recipe: Recipe,
    cfg: RunConfig,
    runtime: Runtime,
    skips: SkipLog,
    run_dir: Path | None = None,
    resume: Checkpoint | None = None,
    task: Task | None = None,
    target: Target | None = None,
) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch."""
    if resume is None:
        torch.manual_seed(cfg.train.seed)
    trainer = Trainer(model, strategy, images, splits, recipe, cfg, runtime, skips, run_dir, task, target)
    if resume is not None:
        trainer.restore(resume)
    return trainer.fit()
