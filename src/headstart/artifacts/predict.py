"""Using a saved run: metrics on another labelled set (``evaluate``) and predictions on files (``predict``).

Both apply the run's saved recipe and the same inference path (``engine.inference``), in the precision
the run recorded for its probabilities (``headstart.json`` ``runtime.precision``: fp32, never this
machine's ``train.precision=auto``), so predicting the test split's files gives the probabilities of
the run's ``predictions.csv`` and ``metrics.json``, on any machine (within 1e-4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart.artifacts.run_dir import LoadedRun
from headstart.backbones.recipe import ImageRecipe
from headstart.data.dataset import Dataset, load_data
from headstart.data.images import UnreadableImage, array_to_tensor
from headstart.data.loader import SkipLog
from headstart.data.memory import MEMORY_SOURCE, describe_input, image_array, is_path
from headstart.data.pipeline import eval_loader
from headstart.data.splits import splits_from_json
from headstart.data.texts import TextSet
from headstart.data.transforms import eval_transform
from headstart.engine.inference import head_logits, pooled_features, run_scores
from headstart.engine.runtime import Runtime, inference_runtime
from headstart.errors import HeadstartError

__all__ = ["Evaluation", "evaluate_run", "predict_files", "predict_texts", "SPLIT_CHOICES"]

SPLIT_CHOICES = ("auto", "all", "train", "val", "test")


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    split: str  # which part of the data was scored
    skipped: list[str]  # unreadable images


def _same_source(run: LoadedRun, source: str) -> bool:
    saved = run.manifest["data"]["source"]
    if source == saved:
        return True
    return not source.startswith("builtin:") and Path(source).resolve() == Path(saved).resolve()


def _labelled(run: LoadedRun, data: str | Dataset | None) -> tuple[Dataset, bool]:
    """The data to score, its labels in the run's terms, and whether it is the run's own (then its saved
    splits apply)."""
    saved = run.manifest["data"]["source"]
    if data is None and saved == MEMORY_SOURCE:
        raise HeadstartError(
            f"{run.path} was trained on in-memory data, which headstart cannot re-read; pass the labelled data "
            "again, e.g. model.evaluate((images, labels))"
        )
    if data is None or isinstance(data, str):
        source = data or saved
        loaded = _aligned(run, load_data(source, run.config.data, run.task.empty_labels))
        return loaded, _same_source(run, source)
    data = _aligned(run, data)
    same = data.source == MEMORY_SOURCE == saved and data.fingerprint() == run.manifest["data"].get("fingerprint")
    return data, same


def _aligned(run: LoadedRun, data: Dataset) -> Dataset:
    """``data`` with its labels as the run's targets (classes in the run's order, values, label sets)."""
    if data.modality != run.modality:
        raise HeadstartError(
            f"{data.source!r} holds {data.modality} data but the run {str(run.path)!r} is a {run.modality} model"
        )
    return replace(data, targets=run.task.align(data, run.labels, run.config), labels=list(run.labels))


def evaluate_run(
    run: LoadedRun, source: str | Dataset | None = None, split: str = "auto", batch_size: int | None = None
) -> Evaluation:
    """Score the run on DATA (default: the run's own data; a path, builtin:NAME or an in-memory set).
    ``split=auto`` uses the saved test split when DATA is the run's data, and every image otherwise."""
    if split not in SPLIT_CHOICES:
        raise HeadstartError(f"--split {split!r}; choose one of {', '.join(SPLIT_CHOICES)}")
    images, same = _labelled(run, source)
    if split == "auto":
        split = "test" if same else "all"
    if split == "all":
        index = np.arange(len(images))
    elif not same:
        raise HeadstartError(
            f"--split {split} needs the run's own data ({run.manifest['data']['source']!r}); use --split all"
        )
    else:
        index = splits_from_json(images, run.splits())[split]
    runtime = _runtime(run)
    model = runtime.model(run.model)
    skips = SkipLog()
    loader = eval_loader(images, index, run.recipe, batch_size or run.config.train.batch_size)
    scores, y, _ = run_scores(model, loader, runtime, run.recipe, skips, "evaluating", run.task)
    if bad := _nonfinite(scores):
        raise _refuse_nonfinite(run, bad)
    cfg = run.config
    metrics = run.task.metrics(y, scores, run.labels, run.manifest.get("threshold"), cfg.eval.n_boot, cfg.train.seed)
    return Evaluation(metrics, split, sorted(skips.items.values()))


def _runtime(run: LoadedRun) -> Runtime:
    """This machine's device, in the precision the run's recorded probabilities were computed in."""
    return inference_runtime(run.config.train, run.manifest.get("runtime"), str(run.path))


def _nonfinite(proba: np.ndarray) -> int:
    """How many rows of ``proba`` (N, K) hold a NaN or inf."""
    return int((~np.isfinite(proba)).any(axis=-1).sum()) if proba.size else 0


def _refuse_nonfinite(run: LoadedRun, bad: int) -> HeadstartError:
    """NaN / inf probabilities mean nothing (and ``NaN`` is not JSON): say why, and the fix."""
    weights = run.model.state_dict().values()
    broken = any(w.is_floating_point() and not bool(torch.isfinite(w).all()) for w in weights)
    why = "its weights hold NaN/inf (training diverged?)" if broken else "its outputs overflowed"
    return HeadstartError(
        f"the model in {run.path} produced NaN/inf probabilities for {bad} input(s): {why}; train it again "
        "with a lower optim.lr (e.g. --set optim.lr=1e-4)"
    )


def predict_files(run: LoadedRun, paths: Sequence[Any], batch_size: int | None = None) -> list[dict[str, Any]]:
    """One record per input, in input order: ``path`` (or ``input``: what an in-memory image is), ``label``,
    ``probabilities`` ({label: p}). Inputs are file paths, PIL images, (H, W[, C]) arrays or (C, H, W)
    tensors, decoded as :func:`headstart.data.memory.image_array` says.

    An unreadable or missing file gets ``label: None`` and an ``error`` field instead of stopping the batch.
    """
    if not isinstance(run.recipe, ImageRecipe):
        raise HeadstartError(f"{str(run.path)!r} is a {run.modality} model; pass it {run.modality} inputs, not images")
    runtime = _runtime(run)
    model = runtime.model(run.model)
    model.eval()
    transform = eval_transform(run.recipe)
    size = batch_size or run.config.train.batch_size
    records: list[dict[str, Any]] = [{"path": str(p)} if is_path(p) else {"input": describe_input(p)} for p in paths]
    checked = False
    bad = 0  # inputs with NaN / inf probabilities
    for start in range(0, len(paths), size):
        chunk, tensors = [], []
        for i in range(start, min(start + size, len(paths))):
            try:
                tensors.append(transform(array_to_tensor(image_array(paths[i]))))
                chunk.append(i)
            except UnreadableImage as exc:
                records[i].update(label=None, probabilities=None, error=str(exc))
        if not chunk:
            continue
        batch = torch.stack(tensors)
        if not checked:  # the same first-batch check as training: warns on a recipe mismatch
            run.recipe.check_batch(batch)
            checked = True
        with torch.inference_mode():
            scores = run.task.scores(head_logits(model, pooled_features(model, batch, runtime))).cpu().numpy()
        bad += _nonfinite(scores)
        for i, row in zip(chunk, scores, strict=True):
            records[i].update(run.task.record(row, run.labels, run.manifest.get("threshold")))
    if bad:
        raise _refuse_nonfinite(run, bad)
    return records


def predict_texts(run: LoadedRun, texts: list[str], batch_size: int | None = None) -> list[dict[str, Any]]:
    """One record per input string, in input order: ``text``, ``label``, ``probabilities`` ({label: p}).

    An empty string gets ``label: None`` and an ``error`` field. Texts go through the run's saved
    recipe (tokenizer, max length, pooling) or its tf-idf vocabulary, like ``evaluate``.
    """
    if run.modality != "text":
        raise HeadstartError(f"{str(run.path)!r} is an image model; pass image files instead of --text")
    records: list[dict[str, Any]] = [{"text": t} for t in texts]
    keep = [i for i, t in enumerate(texts) if t.strip()]
    for i in sorted(set(range(len(texts))) - set(keep)):
        records[i].update(label=None, probabilities=None, error="empty text")
    if not keep:
        return records
    data = TextSet(
        source="predict",
        ids=[str(i) for i in keep],
        targets=np.zeros(len(keep), dtype=np.int64),
        labels=list(run.labels),
        texts=[texts[i].strip() for i in keep],
    )
    runtime = _runtime(run)
    model = runtime.model(run.model)
    size = batch_size or run.config.train.batch_size
    loader = eval_loader(data, np.arange(len(keep)), run.recipe, size)
    scores, _, index = run_scores(model, loader, runtime, run.recipe, SkipLog(), "predicting", run.task)
    if bad := _nonfinite(scores):
        raise _refuse_nonfinite(run, bad)
    for row, pos in zip(scores, index, strict=True):
        records[keep[int(pos)]].update(run.task.record(row, run.labels, run.manifest.get("threshold")))
    return records
