"""One training run end to end: data -> backbone + recipe -> strategy -> metrics -> run directory.

This module only wires the rooms together; each step lives in its own package.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.artifacts.names import PLAN
from headstart.artifacts.out_dir import check_out, claim_out
from headstart.artifacts.run_dir import RunFiles, package_versions, write_run
from headstart.artifacts.run_files import (
    PREDICTIONS,
    Scored,
    model_folders,
    model_text_files,
    tensorboard_folder,
    write_report,
)
from headstart.backbones.build import classifier, create_model, resolve_any_recipe
from headstart.backbones.catalog import BackboneSpec, backbone_identity, get_backbone
from headstart.backbones.text import TextClassifier, TextRecipe
from headstart.backbones.tfidf import TfidfRecipe
from headstart.config import RunConfig
from headstart.data.balance import class_weights
from headstart.data.dataset import Dataset, load_data
from headstart.data.loader import SkipLog
from headstart.data.pipeline import check_modality, eval_loader
from headstart.data.splits import limit_per_class, make_splits, splits_to_json
from headstart.data.tokens import text_stats
from headstart.engine import distributed
from headstart.engine.checkpoint import Checkpoint, interrupted_message, load_checkpoint
from headstart.engine.features import FeatureSet, extract_features
from headstart.engine.inference import head_logits, run_probabilities
from headstart.engine.runtime import Runtime, resolve_runtime
from headstart.engine.train import steps_per_epoch, train_gradient
from headstart.errors import HeadstartError, RunInterrupted
from headstart.metrics.classification import compute_metrics
from headstart.metrics.threshold import tune_threshold
from headstart.strategies.base import Strategy, get_strategy
from headstart.strategies.linear_probe import ProbeFit, fit_probe, load_probe_into_head
from headstart.strategies.lp_ft import fit_temperature, scale_head
from headstart.strategies.plan import plan_markdown, plan_rows
from headstart.strategies.tfidf import fit_tfidf

__all__ = ["RunSummary", "prepare_data", "resolve_config", "train", "resume"]

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


def prepare_data(cfg: RunConfig, dataset: Dataset | None = None) -> tuple[Dataset, dict[str, np.ndarray]]:
    """Load DATA (or take the in-memory ``dataset``), apply ``limit_per_class`` and make the splits
    (before any model is built)."""
    loaded = dataset if dataset is not None else load_data(cfg.data.source, cfg.data)
    images = limit_per_class(loaded, cfg.data.limit_per_class, cfg.data.seed)
    splits = make_splits(images, cfg.data)
    for name, idx in splits.items():
        if len(idx) == 0:
            raise HeadstartError(
                f"the {name} split of {cfg.data.source!r} is empty; add examples or raise data.{name}_fraction"
            )
    return images, splits


def resolve_config(cfg: RunConfig, spec: BackboneSpec) -> RunConfig:
    """Fill the settings whose default depends on the backbone (``strategy.backbone_lr_factor``)."""
    if cfg.strategy.backbone_lr_factor is not None:
        return cfg
    return replace(cfg, strategy=replace(cfg.strategy, backbone_lr_factor=spec.backbone_lr_factor))


@dataclass(frozen=True)
class _Run:
    """What every step of one run reads: the data, the recipe and the runtime (built once in :func:`train`)."""

    cfg: RunConfig
    spec: BackboneSpec
    images: Dataset
    splits: dict[str, np.ndarray]
    recipe: Any  # image Recipe or TextRecipe
    runtime: Runtime
    skips: SkipLog
    fingerprint: str  # of ``images``: hashing large in-memory sets is not free, so it is computed once


def _features(model: nn.Module, run: _Run, splits: tuple[str, ...], fitting: bool) -> FeatureSet:
    """Cached features of the examples in ``splits``. ``fitting``: features a head is fitted on, computed in
    the training precision (bf16 where fast); otherwise the recorded probabilities' precision (fp32), so
    the test scores are exactly what ``predict`` gives on any machine (bench/README.md, precision)."""
    runtime = run.runtime.for_fitting() if fitting else run.runtime
    return extract_features(
        model,
        run.images,
        run.recipe,
        runtime,
        backbone_identity(run.spec),
        run.cfg.train.batch_size,
        run.skips,
        num_workers=run.cfg.train.num_workers,
        fingerprint=run.fingerprint,
        rows=np.concatenate([run.splits[s] for s in splits]),
    )


def _fit_head(model: nn.Module, fs: FeatureSet, run: _Run) -> tuple[ProbeFit, dict[str, np.ndarray]]:
    """Fit the linear probe on cached features and load it into the model's head."""
    part = {k: v[fs.valid[v]] for k, v in run.splits.items()}
    targets = run.images.targets
    fit = fit_probe(
        fs.features[part["train"]],
        targets[part["train"]],
        fs.features[part["val"]],
        targets[part["val"]],
        len(run.images.labels),
        run.cfg.strategy.probe_cs,
        class_weight=class_weights(targets[part["train"]], len(run.images.labels))
        if run.cfg.optim.class_weights == "auto"
        else None,
    )
    load_probe_into_head(model, fit)
    return fit, part


def _head_logits_on(model: nn.Module, fs: FeatureSet, index: np.ndarray, run: _Run) -> np.ndarray:
    """The head's logits for cached features of the images at ``index``."""
    with torch.inference_mode():
        return head_logits(model, torch.from_numpy(fs.features[index]).to(run.runtime.device)).cpu().numpy()


def _probe(model: nn.Module, run: _Run) -> tuple[list[dict], Scored, bool]:
    for p in model.parameters():
        p.requires_grad_(False)
    fs = _features(model, run, ("train", "val"), fitting=True)
    fit, part = _fit_head(model, fs, run)
    head_params = sum(p.numel() for p in classifier(model).parameters())  # fitted by the probe
    history = [
        {"epoch": 1, **h, "lr": {}, "trainable_params": head_params, "events": [f"probe C={h['C']:g}"]}
        for h in fit.history
        if h["C"] == fit.C
    ]
    test = _features(model, run, ("test",), fitting=False)
    index = run.splits["test"][test.valid[run.splits["test"]]]
    proba = torch.from_numpy(_head_logits_on(model, test, index, run)).softmax(-1).numpy()
    return history, Scored(proba, run.images.targets[index], index), fs.cached and test.cached


def _lp_ft_head(model: nn.Module, run: _Run) -> float:
    """lp-ft's first phase: the probe's head, temperature-scaled on validation. Returns the temperature."""
    fs = _features(model, run, ("train", "val"), fitting=True)
    _, part = _fit_head(model, fs, run)
    temperature = fit_temperature(_head_logits_on(model, fs, part["val"], run), run.images.targets[part["val"]])
    scale_head(model, temperature)
    return temperature


def _test_metrics(model: nn.Module, run: _Run) -> Scored:
    return _scores(model, run, "test")


def _scores(model: nn.Module, run: _Run, split: str) -> Scored:
    """Probabilities of the model on one split, through the same loaders as evaluate and predict."""
    cfg = run.cfg
    index = distributed.shard(run.splits[split])  # each rank scores its share; gathered in split order
    loader = eval_loader(run.images, index, run.recipe, cfg.train.batch_size, cfg.train.num_workers)
    part = run_probabilities(model, loader, run.runtime, run.recipe, run.skips, split)
    return Scored(*distributed.gather_rows(part, part[2]))


def train(
    cfg: RunConfig,
    out: str | Path,
    data: tuple[Dataset, dict[str, np.ndarray]] | None = None,
    resume: Checkpoint | None = None,
) -> RunSummary:
    """Train one strategy and write its run directory. ``data`` reuses an already prepared split;
    ``resume`` continues from an interrupted run's checkpoint (see :func:`resume`).

    ``out`` is checked before any work (:func:`~headstart.artifacts.out_dir.check_out`: never a folder
    headstart did not write) and locked until the run is written. Ctrl-C raises :class:`RunInterrupted`
    saying where the checkpoint is and how to continue."""
    out = Path(out)
    distributed.setup(cfg.train.device)  # joins torchrun's process group when started by torchrun
    # every rank refuses an unsafe --out alike, before any work; the lock is rank 0's (it writes the folder)
    check_out(out, cfg.data.source, resuming=resume is not None, check_lock=distributed.is_main())
    if not distributed.is_main():
        return _train(cfg, out, data, resume)
    with claim_out(out, cfg.data.source, resuming=resume is not None):
        try:
            return _train(cfg, out, data, resume)
        except KeyboardInterrupt as exc:
            if isinstance(exc, RunInterrupted):
                raise
            raise RunInterrupted(interrupted_message(out)) from None


def _train(
    cfg: RunConfig, out: Path, data: tuple[Dataset, dict[str, np.ndarray]] | None, resume: Checkpoint | None
) -> RunSummary:
    spec = get_backbone(cfg.model.backbone, cfg.model.weights)
    cfg = resolve_config(cfg, spec)
    strategy: Strategy = get_strategy(cfg)
    images, splits = data if data is not None else prepare_data(cfg)
    if cfg.eval.threshold and len(images.labels) != 2:
        raise HeadstartError(
            f"eval.threshold={cfg.eval.threshold} tunes a binary decision threshold, but {cfg.data.source!r} has "
            f"{len(images.labels)} classes; drop eval.threshold"
        )
    runtime = resolve_runtime(cfg.train)
    start = time.perf_counter()
    torch.manual_seed(cfg.train.seed)  # the fresh head's init (and scratch's whole network) follow the seed
    if spec.modality == "text" and not strategy.pretrained:
        check_modality(images, TfidfRecipe(), spec.name)
        model, run, fitted = _tfidf(_Run(cfg, spec, images, splits, TfidfRecipe(), runtime, SkipLog(), ""))
        ckpt_recipe = run.recipe
    else:
        model, ckpt_recipe = create_model(
            spec, len(images.labels), pretrained=strategy.pretrained, drop_rate=cfg.model.drop_rate
        )
        recipe = resolve_any_recipe(ckpt_recipe, cfg.preprocess)
        check_modality(images, recipe, spec.name)
        if isinstance(model, TextClassifier) and isinstance(recipe, TextRecipe):
            model.apply_recipe(recipe)
        run = _Run(cfg, spec, images, splits, recipe, runtime, SkipLog(), images.fingerprint())
        fitted = _fit(model, strategy, run, out, resume)
    seconds = time.perf_counter() - start + (resume.state["seconds"] if resume else 0.0)
    return _finish(model, strategy, run, fitted, ckpt_recipe, seconds, out, resumed=resume is not None)


def _finish(
    model: nn.Module,
    strategy: Strategy,
    run: _Run,
    fitted: Fitted,
    ckpt_recipe: Any,
    seconds: float,
    out: Path,
    resumed: bool,
) -> RunSummary:
    """Score the test split (with the tuned threshold, if any) and write the run directory (rank 0)."""
    cfg, images = run.cfg, run.images
    history, _, scored, cache_hit, _ = fitted
    threshold = _tune_threshold(model, run) if cfg.eval.threshold else None
    metrics = compute_metrics(
        scored.y, scored.proba, images.labels, threshold=threshold, n_boot=cfg.eval.n_boot, seed=cfg.train.seed
    )
    trainable = max((h["trainable_params"] for h in history), default=0)
    summary = RunSummary(out, cfg.strategy.name, metrics, seconds, trainable, len(run.skips.items), cache_hit)
    if distributed.is_main():  # one writer; the other ranks only wait for the run directory
        _write(model, strategy, run, fitted, ckpt_recipe, threshold, summary, resumed)
    distributed.barrier()
    return summary


def _write(
    model: nn.Module,
    strategy: Strategy,
    run: _Run,
    fitted: Fitted,
    ckpt_recipe: Any,
    threshold: float | None,
    summary: RunSummary,
    resumed: bool,
) -> None:
    """The run directory of ``summary``: manifest, weights, metrics, history, splits, plan, predictions, report."""
    cfg, images, out, metrics = run.cfg, run.images, summary.out, summary.metrics
    history, best_epoch, scored, _, extra = fitted
    plan = plan_rows(model, strategy, cfg, steps_per_epoch(len(run.splits["train"]), cfg.train.batch_size))
    manifest = _manifest(run, ckpt_recipe, metrics)
    manifest.update(
        best_epoch=best_epoch,
        seconds=summary.seconds,
        trainable_params=summary.trainable_params,
        feature_cache_hit=summary.feature_cache_hit,
        plan=plan,
        resumed=resumed,
        threshold=threshold,
        **extra,
    )
    model = model.cpu().to(memory_format=torch.contiguous_format)
    files = RunFiles(
        model,
        manifest,
        metrics,
        history,
        splits_to_json(images, run.splits, cfg.data.seed),
        extra={PLAN: plan_markdown(plan), PREDICTIONS: scored.csv(images, threshold), **model_text_files(model)},
        folders={**model_folders(model, run.recipe), **tensorboard_folder(cfg, out, history)},
    )
    write_run(out, files)
    write_report(out, images)


def _tune_threshold(model: nn.Module, run: _Run) -> float:
    """The binary decision threshold that best meets ``eval.threshold`` on the validation split."""
    assert run.cfg.eval.threshold is not None
    scored = _scores(model, run, "val")
    t = tune_threshold(scored.y, scored.proba[:, 1], run.cfg.eval.threshold)
    logger.info("decision threshold %.4f tuned on validation for %s", t, run.cfg.eval.threshold)
    return t


Fitted = tuple[list[dict], int, Scored, bool | None, dict[str, Any]]
# ^ history, best epoch, test predictions, feature-cache hit, extra manifest fields


def _fit(model: nn.Module, strategy: Strategy, run: _Run, out: Path, resume: Checkpoint | None) -> Fitted:
    """Train ``model`` with a pretrained backbone (probe or gradient strategies) and score the test split."""
    extra: dict[str, Any] = {}
    if strategy.kind == "probe":
        history, scored, cache_hit = _probe(model, run)
        return history, 1, scored, cache_hit, extra
    if strategy.probe_first and resume is None:
        extra["lp_ft_temperature"] = _lp_ft_head(model, run)
    result = train_gradient(
        model, strategy, run.images, run.splits, run.recipe, run.cfg, run.runtime, run.skips, out, resume
    )
    return result.history, result.best_epoch, _test_metrics(model, run), None, extra


def _tfidf(run: _Run) -> tuple[nn.Module, _Run, Fitted]:
    """Text ``scratch``: TF-IDF + logistic regression (no pretraining), C chosen on validation.

    Returns the model, the run with the fitted recipe (vocabulary) and the fit's results."""
    texts, y = run.images.texts, run.images.targets  # type: ignore[union-attr]
    tr, va = run.splits["train"], run.splits["val"]
    fit = fit_tfidf([texts[i] for i in tr], y[tr], [texts[i] for i in va], y[va], len(run.images.labels))
    history = [
        {"epoch": 1, **h, "lr": {}, "trainable_params": fit.model.head.weight.numel() + fit.model.head.bias.numel()}
        | {"events": [f"tf-idf C={h['C']:g}"]}
        for h in fit.history
        if h["C"] == fit.C
    ]
    run = replace(run, recipe=fit.recipe, fingerprint=run.images.fingerprint())
    scored = _test_metrics(fit.model, run)
    extra = {"baseline": "tf-idf + logistic regression (no pretraining)", "tfidf_C": fit.C}
    return fit.model, run, (history, 1, scored, None, extra)


def _manifest(run: _Run, ckpt_recipe: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    images = run.images
    tfidf = {"name": "tfidf", "architecture": "tfidf", "source": "scikit-learn TfidfVectorizer (no pretraining)"}
    return {
        "backbone": tfidf if isinstance(run.recipe, TfidfRecipe) else backbone_identity(run.spec),
        "recipe": run.recipe.to_dict(),
        "checkpoint_recipe": ckpt_recipe.to_dict(),
        "labels": images.labels,
        "strategy": run.cfg.strategy.name,
        "config": run.cfg.to_dict(),
        "metrics": metrics,
        "runtime": run.runtime.describe(),
        "versions": package_versions(),
        "data": {
            "source": images.source,
            "fingerprint": run.fingerprint,
            "n": len(images),
            "class_counts": images.class_counts(),
            "split_sizes": {k: len(v) for k, v in run.splits.items()},
            "skipped_unreadable": sorted(run.skips.items.values()),
            **text_stats(run.images, run.recipe),
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
