"""Using a saved run: metrics on another labelled set (``evaluate``) and predictions on files (``predict``).

Both apply the run's saved recipe and the same inference path (``engine.inference``), so predicting
the test split's files gives exactly the probabilities that ``evaluate`` scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart.artifacts.run_dir import LoadedRun
from headstart.data.dataset import Dataset, load_data
from headstart.data.images import UnreadableImage, read_image
from headstart.data.loader import SkipLog
from headstart.data.pipeline import eval_loader
from headstart.data.splits import splits_from_json
from headstart.data.texts import TextSet
from headstart.data.transforms import eval_transform
from headstart.engine.inference import head_logits, pooled_features, run_probabilities
from headstart.engine.runtime import resolve_runtime
from headstart.errors import HeadstartError
from headstart.metrics.classification import compute_metrics

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


def _align_labels(run: LoadedRun, images: Dataset) -> np.ndarray:
    """Targets of ``images`` re-indexed into the run's label order; unknown labels are an error."""
    unknown = [label for label in images.labels if label not in run.labels]
    if unknown:
        raise HeadstartError(
            f"labels {', '.join(map(repr, unknown))} in {images.source!r} are not among the run's labels "
            f"({', '.join(run.labels)}); evaluate on data with the same classes"
        )
    mapping = np.asarray([run.labels.index(label) for label in images.labels], dtype=np.int64)
    return mapping[images.targets]


def evaluate_run(
    run: LoadedRun, source: str | None = None, split: str = "auto", batch_size: int | None = None
) -> Evaluation:
    """Score the run on DATA (default: the run's own data). ``split=auto`` uses the saved test split
    when DATA is the run's data, and every image otherwise."""
    if split not in SPLIT_CHOICES:
        raise HeadstartError(f"--split {split!r}; choose one of {', '.join(SPLIT_CHOICES)}")
    source = source or run.manifest["data"]["source"]
    images = load_data(source, run.config.data)
    if images.modality != run.modality:
        raise HeadstartError(
            f"{source!r} holds {images.modality} data but the run {str(run.path)!r} is a {run.modality} model"
        )
    same = _same_source(run, source)
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
    images.targets = _align_labels(run, images)
    images.labels = list(run.labels)
    runtime = resolve_runtime(run.config.train)
    model = runtime.model(run.model)
    skips = SkipLog()
    loader = eval_loader(images, index, run.recipe, batch_size or run.config.train.batch_size)
    proba, y, _ = run_probabilities(model, loader, runtime, run.recipe, skips, "evaluating")
    if bad := _nonfinite(proba):
        raise _refuse_nonfinite(run, bad)
    metrics = compute_metrics(
        y, proba, run.labels, threshold=run.manifest.get("threshold"), n_boot=run.config.eval.n_boot
    )
    return Evaluation(metrics, split, sorted(skips.items.values()))


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


def _decide(proba: np.ndarray, run: LoadedRun) -> int:
    """The predicted class: argmax, or with the run's tuned binary threshold, class 1 when p1 >= threshold."""
    threshold = run.manifest.get("threshold")
    if threshold is not None:
        return int(proba[1] >= threshold)
    return int(proba.argmax())


def predict_files(run: LoadedRun, paths: list[str], batch_size: int | None = None) -> list[dict[str, Any]]:
    """One record per input path, in input order: ``path``, ``label``, ``probabilities`` ({label: p}).

    An unreadable or missing file gets ``label: None`` and an ``error`` field instead of stopping the batch.
    """
    runtime = resolve_runtime(run.config.train)
    model = runtime.model(run.model)
    model.eval()
    transform = eval_transform(run.recipe)
    size = batch_size or run.config.train.batch_size
    records: list[dict[str, Any]] = [{"path": p} for p in paths]
    bad = 0  # inputs with NaN / inf probabilities
    for start in range(0, len(paths), size):
        chunk, tensors = [], []
        for i in range(start, min(start + size, len(paths))):
            try:
                if not Path(paths[i]).is_file():
                    raise UnreadableImage(f"{paths[i]}: {_missing(paths[i])}")
                tensors.append(transform(read_image(paths[i])))
                chunk.append(i)
            except UnreadableImage as exc:
                records[i].update(label=None, probabilities=None, error=str(exc))
        if not chunk:
            continue
        with torch.inference_mode():
            proba = head_logits(model, pooled_features(model, torch.stack(tensors), runtime)).softmax(-1).cpu().numpy()
        bad += _nonfinite(proba)
        for i, p in zip(chunk, proba, strict=True):
            records[i].update(
                label=run.labels[_decide(p, run)],
                probabilities={label: float(v) for label, v in zip(run.labels, p, strict=True)},
            )
    if bad:
        raise _refuse_nonfinite(run, bad)
    return records


def _missing(path: str) -> str:
    """Why ``path`` is not an image file: a folder without images, a pattern that matched nothing, or absent."""
    if Path(path).is_dir():
        return "a folder holding no image files"
    if any(c in path for c in "*?["):
        return "no file matches this pattern"
    return "no such file"


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
    runtime = resolve_runtime(run.config.train)
    model = runtime.model(run.model)
    size = batch_size or run.config.train.batch_size
    loader = eval_loader(data, np.arange(len(keep)), run.recipe, size)
    proba, _, index = run_probabilities(model, loader, runtime, run.recipe, SkipLog(), "predicting")
    if bad := _nonfinite(proba):
        raise _refuse_nonfinite(run, bad)
    for row, pos in zip(proba, index, strict=True):
        records[keep[int(pos)]].update(
            label=run.labels[_decide(row, run)],
            probabilities={label: float(v) for label, v in zip(run.labels, row, strict=True)},
        )
    return records
