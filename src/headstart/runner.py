"""One training run end to end: data -> backbone + recipe -> strategy -> metrics -> run directory.

This module only wires the rooms together; each step lives in its own package.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.artifacts.run_dir import RunFiles, package_versions, write_run
from headstart.backbones.catalog import BackboneSpec, classifier, create_model, get_backbone
from headstart.backbones.recipe import Recipe, resolve_recipe
from headstart.config import RunConfig
from headstart.data.images import ImageSet
from headstart.data.loader import SkipLog, make_loader
from headstart.data.sources import load_images
from headstart.data.splits import limit_per_class, make_splits, splits_to_json
from headstart.data.transforms import eval_transform
from headstart.engine.checkpoint import CHECKPOINT_DIR, Checkpoint, load_checkpoint
from headstart.engine.features import FeatureSet, extract_features
from headstart.engine.inference import head_logits, run_probabilities
from headstart.engine.runtime import Runtime, resolve_runtime
from headstart.engine.train import train_gradient
from headstart.errors import HeadstartError
from headstart.metrics.classification import compute_metrics
from headstart.strategies.base import Strategy, get_strategy
from headstart.strategies.linear_probe import ProbeFit, fit_probe, load_probe_into_head
from headstart.strategies.lp_ft import fit_temperature, scale_head
from headstart.strategies.plan import plan_markdown, plan_rows

__all__ = ["RunSummary", "prepare_data", "train", "resume", "backbone_identity"]

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    out: Path  # the run directory
    strategy: str
    metrics: dict[str, Any]  # test-split metrics
    seconds: float  # wall time of the run (data loading excluded)
    trainable_params: int
    skipped: int  # unreadable images skipped
    feature_cache_hit: bool | None  # linear-probe only


def prepare_data(cfg: RunConfig) -> tuple[ImageSet, dict[str, np.ndarray]]:
    """Load DATA, apply ``limit_per_class`` and make the splits (before any model is built)."""
    images = limit_per_class(load_images(cfg.data.source), cfg.data.limit_per_class, cfg.data.seed)
    splits = make_splits(images, cfg.data)
    for name, idx in splits.items():
        if len(idx) == 0:
            raise HeadstartError(
                f"the {name} split of {cfg.data.source!r} is empty; add examples or raise data.{name}_fraction"
            )
    return images, splits


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


def _probe_features(
    model: nn.Module,
    images: ImageSet,
    recipe: Recipe,
    cfg: RunConfig,
    runtime: Runtime,
    spec: BackboneSpec,
    skips: SkipLog,
) -> FeatureSet:
    return extract_features(
        model,
        images,
        recipe,
        runtime,
        backbone_identity(spec),
        cfg.train.batch_size,
        skips,
        num_workers=cfg.train.num_workers,
    )


def _fit_head(
    model: nn.Module, fs: FeatureSet, images: ImageSet, splits: dict[str, np.ndarray], cfg: RunConfig
) -> tuple[ProbeFit, dict[str, np.ndarray]]:
    """Fit the linear probe on cached features and load it into the model's head."""
    part = {k: v[fs.valid[v]] for k, v in splits.items()}
    fit = fit_probe(
        fs.features[part["train"]],
        images.targets[part["train"]],
        fs.features[part["val"]],
        images.targets[part["val"]],
        len(images.labels),
        cfg.strategy.probe_cs,
    )
    load_probe_into_head(model, fit)
    return fit, part


def _probe(
    model: nn.Module,
    images: ImageSet,
    splits: dict[str, np.ndarray],
    recipe: Recipe,
    cfg: RunConfig,
    runtime: Runtime,
    spec: BackboneSpec,
    skips: SkipLog,
) -> tuple[list[dict], np.ndarray, np.ndarray, bool]:
    for p in model.parameters():
        p.requires_grad_(False)
    fs = _probe_features(model, images, recipe, cfg, runtime, spec, skips)
    fit, part = _fit_head(model, fs, images, splits, cfg)
    head_params = sum(p.numel() for p in classifier(model).parameters())  # fitted by the probe
    history = [
        {"epoch": 1, **h, "lr": {}, "trainable_params": head_params, "events": [f"probe C={h['C']:g}"]}
        for h in fit.history
        if h["C"] == fit.C
    ]
    with torch.inference_mode():
        logits = head_logits(model, torch.from_numpy(fs.features[part["test"]]).to(runtime.device))
    return history, logits.softmax(-1).cpu().numpy(), images.targets[part["test"]], fs.cached


def _lp_ft_head(
    model: nn.Module,
    images: ImageSet,
    splits: dict[str, np.ndarray],
    recipe: Recipe,
    cfg: RunConfig,
    runtime: Runtime,
    spec: BackboneSpec,
    skips: SkipLog,
) -> float:
    """lp-ft's first phase: the probe's head, temperature-scaled on validation. Returns the temperature."""
    fs = _probe_features(model, images, recipe, cfg, runtime, spec, skips)
    _, part = _fit_head(model, fs, images, splits, cfg)
    with torch.inference_mode():
        logits = head_logits(model, torch.from_numpy(fs.features[part["val"]]).to(runtime.device)).cpu().numpy()
    temperature = fit_temperature(logits, images.targets[part["val"]])
    scale_head(model, temperature)
    return temperature


def _test_metrics(
    model: nn.Module,
    images: ImageSet,
    idx: np.ndarray,
    recipe: Recipe,
    cfg: RunConfig,
    runtime: Runtime,
    skips: SkipLog,
) -> tuple[np.ndarray, np.ndarray]:
    loader = make_loader(images, idx, eval_transform(recipe), cfg.train.batch_size, num_workers=cfg.train.num_workers)
    proba, y, _ = run_probabilities(model, loader, runtime, recipe, skips, "testing")
    return proba, y


def _check_out(out: Path, resuming: bool) -> None:
    if not resuming and (out / CHECKPOINT_DIR).is_dir():
        raise HeadstartError(
            f"{str(out)!r} holds an interrupted run; continue it with `headstart train --resume {out}` "
            "or choose another --out (nothing was overwritten)"
        )


def train(
    cfg: RunConfig,
    out: str | Path,
    data: tuple[ImageSet, dict[str, np.ndarray]] | None = None,
    resume: Checkpoint | None = None,
) -> RunSummary:
    """Train one strategy and write its run directory. ``data`` reuses an already prepared split;
    ``resume`` continues from an interrupted run's checkpoint (see :func:`resume`)."""
    out = Path(out)
    _check_out(out, resume is not None)
    strategy: Strategy = get_strategy(cfg)
    spec = get_backbone(cfg.model.backbone, cfg.model.weights)
    images, splits = data if data is not None else prepare_data(cfg)
    runtime = resolve_runtime(cfg.train)
    start = time.perf_counter()
    torch.manual_seed(cfg.train.seed)  # the fresh head's init (and scratch's whole network) follow the seed
    model, ckpt_recipe = create_model(
        spec, len(images.labels), pretrained=strategy.pretrained, drop_rate=cfg.model.drop_rate
    )
    recipe = resolve_recipe(ckpt_recipe, cfg.preprocess)
    skips = SkipLog()
    cache_hit, extra = None, {}
    if strategy.kind == "probe":
        history, proba, y, cache_hit = _probe(model, images, splits, recipe, cfg, runtime, spec, skips)
        best_epoch = 1
    else:
        if strategy.probe_first and resume is None:
            extra["lp_ft_temperature"] = _lp_ft_head(model, images, splits, recipe, cfg, runtime, spec, skips)
        result = train_gradient(model, strategy, images, splits, recipe, cfg, runtime, skips, out, resume)
        history, best_epoch = result.history, result.best_epoch
        proba, y = _test_metrics(model, images, splits["test"], recipe, cfg, runtime, skips)
    plan = plan_rows(model, strategy, cfg, _steps_per_epoch(len(splits["train"]), cfg.train.batch_size))
    metrics = compute_metrics(y, proba, images.labels)
    seconds = time.perf_counter() - start + (resume.state["seconds"] if resume else 0.0)
    trainable = max((h["trainable_params"] for h in history), default=0)
    manifest = _manifest(cfg, spec, recipe, ckpt_recipe, images, splits, metrics, runtime, skips)
    manifest.update(
        best_epoch=best_epoch,
        seconds=seconds,
        trainable_params=trainable,
        feature_cache_hit=cache_hit,
        plan=plan,
        resumed=resume is not None,
        **extra,
    )
    model = model.cpu().to(memory_format=torch.contiguous_format)
    files = RunFiles(
        model,
        manifest,
        metrics,
        history,
        splits_to_json(images, splits, cfg.data.seed),
        extra={"plan.md": plan_markdown(plan)},
    )
    path = write_run(out, files)
    return RunSummary(path, cfg.strategy.name, metrics, seconds, trainable, len(skips.items), cache_hit)


def _steps_per_epoch(n_train: int, batch_size: int) -> int:
    return max(1, n_train // batch_size) if n_train > batch_size else 1


def _manifest(
    cfg: RunConfig,
    spec: BackboneSpec,
    recipe: Recipe,
    ckpt_recipe: Recipe,
    images: ImageSet,
    splits: dict[str, np.ndarray],
    metrics: dict[str, Any],
    runtime: Runtime,
    skips: SkipLog,
) -> dict[str, Any]:
    return {
        "backbone": backbone_identity(spec),
        "recipe": recipe.to_dict(),
        "checkpoint_recipe": ckpt_recipe.to_dict(),
        "labels": images.labels,
        "strategy": cfg.strategy.name,
        "config": cfg.to_dict(),
        "metrics": metrics,
        "runtime": runtime.describe(),
        "versions": package_versions(),
        "data": {
            "source": images.source,
            "fingerprint": images.fingerprint(),
            "n": len(images),
            "class_counts": images.class_counts(),
            "split_sizes": {k: len(v) for k, v in splits.items()},
            "skipped_unreadable": sorted(skips.items.values()),
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def resume(out: str | Path) -> RunSummary:
    """Continue an interrupted ``train`` from the checkpoint in ``out`` with the config saved there."""
    ckpt = load_checkpoint(Path(out))
    cfg = RunConfig.from_dict(ckpt.state["config"])
    data = prepare_data(cfg)
    logger.info("resuming %s after epoch %d of %d", out, ckpt.state["epoch"], cfg.train.epochs)
    return train(cfg, out, data, resume=ckpt)
