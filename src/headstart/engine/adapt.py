"""Unsupervised domain adaptation inside the train loop: target batches next to source batches, and the loss
that pulls the two domains' pooled features together.

* **DANN** (Ganin & Lempitsky 2015): a small domain classifier reads the pooled features through a
  gradient-reversal layer; it learns to tell source from target while the backbone, receiving its
  gradient reversed, learns features it cannot tell apart. The reversal weight ramps
  ``w * (2 / (1 + exp(-10 p)) - 1)`` over training progress ``p`` (the paper's schedule), so the
  noisy critic of the first steps does not push the backbone around.
* **CORAL** (Sun & Saenko 2016, Deep CORAL): the squared distance between the two batches' feature means
  and covariances, on features divided by the source batch's scale (so its size does not depend on
  the backbone's feature magnitude).
* **AdaBN** (Li et al. 2016): after training, every BatchNorm layer's running statistics are
  re-estimated on the target's examples; nothing else changes.

Epochs are picked on the source's validation split (target labels are never read for a decision); when
TARGET is labelled, each epoch's record also carries its target scores, which the bench reads as the oracle.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from headstart.backbones.build import classifier
from headstart.config import RunConfig
from headstart.data.loader import SkipLog
from headstart.data.pipeline import eval_loader, train_loader
from headstart.data.target import Target
from headstart.engine import distributed
from headstart.engine.inference import checked_batches, run_scores
from headstart.engine.runtime import Runtime
from headstart.errors import HeadstartError

__all__ = [
    "ADAPT_GROUP",
    "CRITIC",
    "DEFAULT_WEIGHTS",
    "DomainAligner",
    "adabn",
    "batchnorm_layers",
    "coral_loss",
    "dann_ramp",
    "reverse_gradient",
    "score_target",
    "target_record",
]

logger = logging.getLogger(__name__)

CRITIC = "_domain_critic"  # checkpoint key prefix of the domain classifier's weights (never in a saved model)
ADAPT_GROUP = "domain"  # the optimizer group of the domain classifier (trainable from the first step)
DEFAULT_WEIGHTS = {"dann": 1.0, "coral": 0.03}  # strategy.adapt_weight when null (bench/README.md, adaptation)


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coeff * grad, None


def reverse_gradient(x: torch.Tensor, coeff: float) -> torch.Tensor:
    """Identity forward; the gradient flowing back is multiplied by ``-coeff``."""
    out: torch.Tensor = _Reverse.apply(x, coeff)
    return out


def dann_ramp(progress: float) -> float:
    """DANN's reversal schedule over training progress in [0, 1]: 0 at the start, about 1 at the end.

    >>> [round(dann_ramp(p), 3) for p in (0.0, 0.1, 0.5, 1.0)]
    [0.0, 0.462, 0.987, 1.0]
    """
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the two batches' feature means plus that of their covariances, on
    features divided by the source batch's root mean variance. 0 for batches with equal statistics."""
    scale = source.detach().var(0).mean().sqrt() + 1e-6
    s, t = source / scale, target / scale
    mean = (s.mean(0) - t.mean(0)).pow(2).mean()
    cov = (torch.cov(s.T) - torch.cov(t.T)).pow(2).mean()
    return mean + cov


def _domain_classifier(dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 1))


class DomainAligner:
    """The target side of a ``dann`` / ``coral`` step: shuffled TARGET batches (their order follows the run's
    seed and the epoch, so a resumed run draws the same ones) and the alignment loss on pooled features."""

    def __init__(self, method: str, target: Target, model: nn.Module, recipe: Any, cfg: RunConfig, runtime: Runtime):
        if distributed.is_distributed():
            raise HeadstartError(
                f"--strategy {method} does not run under torchrun yet; train it in one process (--nproc 1)"
            )
        self.method, self.runtime, self.seed = method, runtime, cfg.train.seed
        weight = cfg.strategy.adapt_weight
        self.weight = DEFAULT_WEIGHTS[method] if weight is None else weight
        dim = int(classifier(model).in_features)  # type: ignore[arg-type]
        self.critic = _domain_classifier(dim).to(runtime.device) if method == "dann" else None
        self.generator = torch.Generator()
        n, bs = len(target), cfg.train.batch_size
        self.loader = train_loader(
            target.data, np.arange(n), recipe, cfg.preprocess, bs, self.generator, n > bs, cfg.train.num_workers
        )
        self.skips = SkipLog()
        self.batches: Any = iter(())
        self.last: dict[str, float] = {}

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """The domain classifier's optimizer group (none for CORAL)."""
        if self.critic is None:
            return []
        params = list(self.critic.parameters())
        group = {"name": ADAPT_GROUP, "layer_group": ADAPT_GROUP, "params": params, "lr": lr, "base_lr": lr}
        return [{**group, "weight_decay": weight_decay}]

    def start_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)
        self.batches = iter(self.loader)
        if self.critic is not None:
            self.critic.train()

    def _target_batch(self) -> Any:
        for _ in range(2):  # a target set smaller than the source epoch starts over
            for batch in self.batches:
                self.skips.add(batch.skipped)
                if len(batch.y):
                    return batch
            self.batches = iter(self.loader)
        raise HeadstartError("no readable example in --target; check its files")

    def step(self, model: nn.Module, x: Any, progress: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Source logits and the weighted alignment loss of one training step (inside the step's autocast)."""
        xt = self.runtime.batch(self._target_batch().x)
        fs = model.forward_head(model.forward_features(x), pre_logits=True)  # type: ignore[operator]
        ft = model.forward_head(model.forward_features(xt), pre_logits=True)  # type: ignore[operator]
        logits = classifier(model)(fs)
        return logits, self.loss(fs.float(), ft.float(), progress)

    def loss(self, fs: torch.Tensor, ft: torch.Tensor, progress: float) -> torch.Tensor:
        if self.critic is None:
            loss = coral_loss(fs, ft)
            self.last = {"coral": float(loss.detach())}
            return self.weight * loss
        coeff = self.weight * dann_ramp(progress)
        out = self.critic(reverse_gradient(torch.cat([fs, ft]), coeff)).squeeze(1)
        domain = torch.cat([torch.ones(len(fs)), torch.zeros(len(ft))]).to(out.device)
        loss = F.binary_cross_entropy_with_logits(out, domain)
        self.last = {"domain_loss": float(loss.detach()), "reversal": coeff}
        return loss  # the critic minimizes it; the reversal hands the backbone -coeff x its gradient

    def state_dict(self) -> dict[str, Any] | None:
        return self.critic.state_dict() if self.critic is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.critic is not None and state is not None:
            self.critic.load_state_dict(state)


def score_target(
    model: nn.Module, target: Target, recipe: Any, cfg: RunConfig, runtime: Runtime, task: Any, skips: SkipLog
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The task's scores of ``model`` on all of TARGET: ``(scores, targets, index)`` (every rank scores all)."""
    loader = eval_loader(target.data, np.arange(len(target)), recipe, cfg.train.batch_size, cfg.train.num_workers)
    return run_scores(model, loader, runtime, recipe, skips, "scoring --target", task)


def target_record(
    model: nn.Module, target: Target, recipe: Any, cfg: RunConfig, runtime: Runtime, task: Any
) -> dict[str, float]:
    """An epoch's target scores, as its validation fields renamed ``target_*`` (read, never used to pick)."""
    scores, y, _ = score_target(model, target, recipe, cfg, runtime, task, SkipLog())
    return {"target_" + k.removeprefix("val_"): v for k, v in task.validate(y, scores, target.data.labels).items()}


def batchnorm_layers(model: nn.Module, backbone: str) -> list[nn.modules.batchnorm._BatchNorm]:
    """The model's BatchNorm layers; refused (AdaBN has nothing to re-estimate) when there is none."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        raise HeadstartError(
            f"AdaBN re-estimates BatchNorm statistics, and backbone {backbone} has no BatchNorm layer; "
            "drop strategy.adabn (or use --strategy dann or coral to adapt it)"
        )
    return bns


def adabn(model: nn.Module, target: Target, recipe: Any, cfg: RunConfig, runtime: Runtime, skips: SkipLog) -> int:
    """AdaBN: every BatchNorm layer's running mean and variance re-estimated on all of TARGET (a cumulative
    average over its batches); weights and every other buffer stay. Returns the number of layers."""
    bns = batchnorm_layers(model, cfg.model.backbone)
    model.eval()
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every target batch counts alike
        m.train()
    loader = eval_loader(target.data, np.arange(len(target)), recipe, cfg.train.batch_size, cfg.train.num_workers)
    with torch.no_grad(), runtime.inference():
        for batch in checked_batches(loader, recipe, skips, "AdaBN on --target"):
            model(runtime.batch(batch.x))
    for m, momentum in zip(bns, momenta, strict=True):
        m.momentum = momentum
    model.eval()
    logger.info("AdaBN: %d BatchNorm layers re-estimated on %d target examples", len(bns), len(target))
    return len(bns)
