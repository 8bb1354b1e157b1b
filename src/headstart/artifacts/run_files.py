"""What a run directory holds besides the weights: test predictions, report, encoder and TensorBoard files.

Helpers of :mod:`headstart.runner` that turn a finished run into files; each returns data for
:class:`~headstart.artifacts.run_dir.RunFiles` (text files or folder writers) or writes after the run
is on disk (the report).
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from headstart.artifacts.names import PREDICTIONS
from headstart.artifacts.run_dir import ENCODER_DIR
from headstart.backbones.text import TextClassifier, load_tokenizer
from headstart.backbones.tfidf import VOCABULARY_FILE, TfidfClassifier
from headstart.config import RunConfig
from headstart.data.dataset import Dataset
from headstart.data.images import UnreadableImage
from headstart.data.texts import TextSet
from headstart.engine.tensorboard import TB_DIR, TensorBoardLog
from headstart.metrics.classification import predict_labels
from headstart.report.html import write_run_report

__all__ = [
    "PREDICTIONS",
    "Scored",
    "examples_of",
    "write_report",
    "model_text_files",
    "model_folders",
    "tensorboard_folder",
]

logger = logging.getLogger(__name__)


@dataclass
class Scored:
    """Test-split predictions: probabilities (m, K), targets (m,) and positions in the dataset (m,)."""

    proba: np.ndarray
    y: np.ndarray
    index: np.ndarray

    def predicted(self, labels: list[str], threshold: float | None = None) -> np.ndarray:
        """Predicted class per row (the one decision rule, :func:`~headstart.metrics.classification.predict_labels`)."""
        return predict_labels(self.proba, labels, threshold)

    def csv(self, data: Dataset, threshold: float | None = None) -> str:
        """``predictions.csv``: one row per test example (id, true and predicted label, confidence, p_<label>).

        ``confidence`` is the probability of the predicted class."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["id", "true", "pred", "confidence", *[f"p_{label}" for label in data.labels]])
        for row, t, i, k in zip(self.proba, self.y, self.index, self.predicted(data.labels, threshold), strict=True):
            cells = [f"{v:.6g}" for v in row]
            writer.writerow([data.ids[int(i)], data.labels[int(t)], data.labels[k], f"{row[k]:.6g}", *cells])
        return buf.getvalue()


def examples_of(data: Dataset) -> Callable[[str], np.ndarray | str | None]:
    """Look up an example by id (for the report's most-confident-mistakes grid): an image array or a text."""
    position = {id_: i for i, id_ in enumerate(data.ids)}

    def get(id_: str) -> np.ndarray | str | None:
        i = position.get(id_)
        if i is None:
            return None
        if isinstance(data, TextSet):
            return data.texts[i]
        try:
            x = data.load(i)  # (C, H, W) uint8
        except UnreadableImage:
            return None
        return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()

    return get


def write_report(run_dir: Path, data: Dataset | None) -> Path | None:
    """``report.html`` for a written run. The run is already safe on disk, so a failure here only warns."""
    try:
        return write_run_report(run_dir, examples_of(data) if data is not None else None)
    except Exception as exc:  # noqa: BLE001 - a plotting problem must not fail a finished training run
        logger.warning(
            "could not write %s/report.html (%s: %s); the run itself is complete", run_dir, type(exc).__name__, exc
        )
        return None


def model_text_files(model: nn.Module) -> dict[str, str]:
    if isinstance(model, TfidfClassifier):
        return {VOCABULARY_FILE: "".join(t + "\n" for t in model.vocabulary)}
    return {}


def model_folders(model: nn.Module, recipe: Any) -> dict[str, Callable[[Path], None]]:
    """Text runs carry the encoder's config and tokenizer files, so the run loads without the package."""
    if not isinstance(model, TextClassifier):
        return {}

    def write(folder: Path) -> None:
        model.encoder.config.save_pretrained(folder)  # type: ignore[union-attr,operator]
        load_tokenizer(recipe.tokenizer).save_pretrained(folder)

    return {ENCODER_DIR: write}


def tensorboard_folder(cfg: RunConfig, out: Path, history: list[dict]) -> dict[str, Callable[[Path], None]]:
    """``tb/``: the train loop's live event files (kept when the run is written), or the history at the end."""
    if cfg.train.log != "tensorboard":
        return {}
    live = out / TB_DIR

    def write(folder: Path) -> None:
        if live.is_dir():
            shutil.copytree(live, folder, dirs_exist_ok=True)
            return
        log = TensorBoardLog(folder)
        for record in history:
            log.log(record)
        log.close()

    return {TB_DIR: write}
