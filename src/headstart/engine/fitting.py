"""The steps a strategy composes, for one run: the probe on cached features, the probe's head as a starting
point, the gradient train loop, the modality's no-pretraining baseline; and the test scores of the result.

:class:`RunFitter` implements :class:`headstart.strategies.base.Fitter`. A strategy's ``fit`` calls what it
needs (``linear-probe``: :meth:`~RunFitter.probe`; ``lp-ft``: :meth:`~RunFitter.probe_head` then
:meth:`~RunFitter.train`; ``scratch``: :meth:`~RunFitter.baseline`), so nothing here or in the runner
branches on a strategy, a modality or a task: they are asked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.backbones.build import classifier
from headstart.backbones.catalog import BackboneSpec, backbone_identity
from headstart.backbones.recipe import Recipe
from headstart.config import RunConfig
from headstart.data.loader import SkipLog
from headstart.data.pipeline import eval_loader
from headstart.data.target import Target
from headstart.engine import distributed
from headstart.engine.adapt import adabn, batchnorm_layers
from headstart.engine.checkpoint import Checkpoint
from headstart.engine.features import FeatureSet, extract_features
from headstart.engine.inference import head_logits, run_scores
from headstart.engine.runtime import Runtime
from headstart.engine.train import train_gradient
from headstart.modalities import Built, Modality, build_backbone
from headstart.strategies.base import Strategy
from headstart.strategies.linear_probe import load_probe_into_head
from headstart.strategies.lp_ft import scale_head
from headstart.tasks import ProbeResult, Task

__all__ = ["RunContext", "Scored", "Fitted", "RunFitter"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """What every step of one run reads: config, backbone, plug-ins, data and runtime (resolved once)."""

    cfg: RunConfig
    spec: BackboneSpec
    strategy: Strategy
    modality: Modality
    task: Task
    data: Any  # the labelled set (ImageSet, TextSet, ...)
    splits: dict[str, np.ndarray]
    runtime: Runtime
    skips: SkipLog
    fingerprint: str  # of ``data``: hashing large in-memory sets is not free, so it is computed once
    target: Target | None = None  # --target: the target domain's data (adaptation; target_metrics.json)


@dataclass
class Scored:
    """Predictions on one split: scores (m, K) (class probabilities for classification), targets, dataset rows."""

    scores: np.ndarray
    y: np.ndarray
    index: np.ndarray


@dataclass
class Fitted:
    """A trained model and what the run directory records about its training."""

    model: nn.Module
    checkpoint_recipe: Recipe  # the recipe the weights came with
    recipe: Recipe  # the run's resolved recipe (saved with the weights)
    history: list[dict]  # one record per epoch (or per probe C)
    best_epoch: int
    test: Scored  # test-split scores of ``model``
    cache_hit: bool | None = None  # linear probe: features read from the cache
    extra: dict[str, Any] = field(default_factory=dict)  # further manifest fields (lp-ft temperature, baseline)


class RunFitter:
    """The :class:`~headstart.strategies.base.Fitter` of one run."""

    def __init__(self, run: RunContext, out: Path, resume: Checkpoint | None = None):
        self.run, self.out, self.resume = run, out, resume
        self.extra: dict[str, Any] = {}

    # -- what plug-ins read ----------------------------------------------------------------------
    @property
    def data(self) -> Any:
        return self.run.data

    @property
    def splits(self) -> dict[str, np.ndarray]:
        return self.run.splits

    @cached_property
    def built(self) -> Built:
        """The backbone with a fresh head, built on first use (a TF-IDF baseline never builds one)."""
        run = self.run
        torch.manual_seed(run.cfg.train.seed)  # the fresh head's init (and scratch's whole network) follow the seed
        outputs = run.task.num_outputs(run.data.labels)
        pretrained, drop = run.strategy.pretrained, run.cfg.model.drop_rate if run.task.head_dropout else 0.0
        if drop != run.cfg.model.drop_rate:
            logger.info("--task %s trains without dropout before the head (model.drop_rate unused)", run.task.name)
        return build_backbone(run.spec, outputs, run.cfg.preprocess, pretrained=pretrained, drop_rate=drop)

    def fitted(
        self,
        model: nn.Module,
        checkpoint_recipe: Recipe,
        recipe: Recipe,
        history: list[dict],
        best_epoch: int = 1,
        cache_hit: bool | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Fitted:
        """The result of a step: ``model`` scored on the test split through the run's loaders."""
        test = self.scores(model, recipe, "test")
        return Fitted(
            model, checkpoint_recipe, recipe, history, best_epoch, test, cache_hit, {**self.extra, **(extra or {})}
        )

    # -- the steps -------------------------------------------------------------------------------
    def probe(self) -> Fitted:
        """Frozen backbone, closed-form head on cached features; test scores from cached features too."""
        model = self.built.model
        for p in model.parameters():
            p.requires_grad_(False)
        fs = self._features(("train", "val"), fitting=True)
        fit = self._fit_head(fs)
        head_params = sum(p.numel() for p in classifier(model).parameters())  # fitted by the probe
        history = [
            {"epoch": 1, **h, "lr": {}, "trainable_params": head_params, "events": [f"probe C={h['C']:g}"]}
            for h in fit.history
            if h["C"] == fit.C
        ]
        test = self._features(("test",), fitting=False)
        index = self.splits["test"][test.valid[self.splits["test"]]]
        scores = self.run.task.scores(torch.from_numpy(self._head_logits(test, index))).numpy()
        scored = Scored(scores, self.data.targets[index], index)
        cache_hit = fs.cached and test.cached
        return Fitted(model, self.built.checkpoint_recipe, self.built.recipe, history, 1, scored, cache_hit, self.extra)

    def probe_head(self) -> None:
        """lp-ft's first phase: the probe's head, calibrated on validation (skipped when resuming: the
        checkpoint holds the head)."""
        if self.resume is not None:
            return
        fs = self._features(("train", "val"), fitting=True)
        self._fit_head(fs)
        val = self.splits["val"][fs.valid[self.splits["val"]]]
        temperature = self.run.task.calibrate(self._head_logits(fs, val), self.data.targets[val])
        scale_head(self.built.model, temperature)
        self.extra["lp_ft_temperature"] = temperature

    def train(self) -> Fitted:
        """The gradient train loop from the built network (checkpoints in ``out``; resumes when asked)."""
        run, built = self.run, self.built
        run.strategy.prepare(built.model)
        if run.strategy.adapts_bn():
            batchnorm_layers(built.model, run.cfg.model.backbone)  # refused before training when there is none
        result = train_gradient(
            built.model,
            run.strategy,
            run.data,
            run.splits,
            built.recipe,
            run.cfg,
            run.runtime,
            run.skips,
            self.out,
            self.resume,
            task=run.task,
            target=run.target,
        )
        run.strategy.finish(built.model)
        if run.strategy.adapts_bn():
            assert run.target is not None, "check_target refuses adabn without --target"
            self.extra["adabn_layers"] = adabn(built.model, run.target, built.recipe, run.cfg, run.runtime, run.skips)
        return self.fitted(built.model, built.checkpoint_recipe, built.recipe, result.history, result.best_epoch)

    def baseline(self) -> Fitted:
        """What ``scratch`` trains: the modality's no-pretraining baseline."""
        fitted: Fitted = self.run.modality.baseline(self)
        return fitted

    # -- scoring ---------------------------------------------------------------------------------
    def scores(self, model: nn.Module, recipe: Recipe, split: str) -> Scored:
        """Scores of ``model`` on one split, through the same loaders as evaluate and predict."""
        run = self.run
        index = distributed.shard(run.splits[split])  # each rank scores its share; gathered in split order
        loader = eval_loader(run.data, index, recipe, run.cfg.train.batch_size, run.cfg.train.num_workers)
        part = run_scores(model, loader, run.runtime, recipe, run.skips, split, run.task)
        return Scored(*distributed.gather_rows(part, part[2]))

    def _features(self, splits: tuple[str, ...], fitting: bool) -> FeatureSet:
        """Cached features of the examples in ``splits``. ``fitting``: features a head is fitted on, computed in
        the training precision (bf16 where fast); otherwise the recorded scores' precision (fp32), so the test
        scores are exactly what ``predict`` gives on any machine (bench/README.md, precision)."""
        run = self.run
        return extract_features(
            self.built.model,
            run.data,
            self.built.recipe,
            run.runtime.for_fitting() if fitting else run.runtime,
            backbone_identity(run.spec),
            run.cfg.train.batch_size,
            run.skips,
            num_workers=run.cfg.train.num_workers,
            fingerprint=run.fingerprint,
            rows=np.concatenate([run.splits[s] for s in splits]),
        )

    def _fit_head(self, fs: FeatureSet) -> ProbeResult:
        """The task's probe on cached features (readable rows only), loaded into the model's head."""
        tr, va = (self.splits[s][fs.valid[self.splits[s]]] for s in ("train", "val"))
        x, y = fs.features, self.data.targets
        fit = self.run.task.fit_probe(x[tr], y[tr], x[va], y[va], self.data.labels, self.run.cfg)
        load_probe_into_head(self.built.model, fit)
        return fit

    def _head_logits(self, fs: FeatureSet, index: np.ndarray) -> np.ndarray:
        """The head's logits for cached features of the examples at ``index``."""
        device = self.run.runtime.device
        with torch.inference_mode():
            return head_logits(self.built.model, torch.from_numpy(fs.features[index]).to(device)).cpu().numpy()
