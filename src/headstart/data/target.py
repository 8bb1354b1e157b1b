"""``--target``: the target domain's data, read next to the labelled source.

TARGET is any data source headstart reads (a class folder, a CSV, ``builtin:NAME``), or a folder of images
without class subfolders (unlabelled). Adaptation strategies (``dann``, ``coral``, ``adabn``) train on its
examples without reading their labels. When its labels are the run's (the same classes, or a subset), the
run also scores all of TARGET: ``target_metrics.json`` and a ``target_*`` field in every epoch's record
(for reading only: epochs are still picked on the source's validation split).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from headstart.config import RunConfig
from headstart.errors import HeadstartError

__all__ = ["Target", "load_target", "read_target", "check_target", "UNLABELLED"]

logger = logging.getLogger(__name__)

UNLABELLED = "(unlabelled)"  # the one label of a folder of images without class subfolders


@dataclass(frozen=True)
class Target:
    data: Any  # ImageSet, TextSet, ...: targets in the run's terms when ``labelled``
    labelled: bool

    def __len__(self) -> int:
        return len(self.data)

    def describe(self) -> dict[str, Any]:
        """What ``headstart.json`` records about TARGET."""
        return {"source": self.data.source, "n": len(self.data), "labelled": self.labelled}


def _unlabelled_images(source: str) -> Any | None:
    """A folder holding images directly (no class subfolders) as an unlabelled ImageSet; None otherwise."""
    from headstart.data.images import ImageSet
    from headstart.data.sources import IMAGE_EXTENSIONS

    root = Path(source)
    if not root.is_dir() or any(p.is_dir() for p in root.iterdir()):
        return None
    paths = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        return None
    return ImageSet(
        source=source,
        ids=[p.name for p in paths],
        targets=np.zeros(len(paths), dtype=np.int64),
        labels=[UNLABELLED],
        paths=paths,
        layout="folders",
    )


def read_target(name: str, cfg: RunConfig, empty_labels: bool = False) -> Any:
    """TARGET as headstart reads any DATA, or, for a folder of images without class subfolders, unlabelled."""
    from headstart.data.dataset import load_data

    try:
        return load_data(name, cfg.data, empty_labels)
    except HeadstartError:
        loaded = _unlabelled_images(name)
        if loaded is None:
            raise
        return loaded


def load_target(cfg: RunConfig, source: Any, task: Any) -> Target | None:
    """``data.target`` read for a run on ``source`` (None when the run has no target): refused when its
    modality differs from the source's; labelled when the task can put its labels in the run's terms."""
    name = cfg.data.target
    if name is None:
        return None
    loaded = read_target(name, cfg, task.empty_labels)
    if loaded.modality != source.modality:
        raise HeadstartError(
            f"--target {name!r} holds {loaded.modality} data but the training data {source.source!r} holds "
            f"{source.modality}; pass target data of the same kind"
        )
    if loaded.labels == [UNLABELLED]:
        return Target(loaded, labelled=False)
    try:
        targets = task.align(loaded, source.labels, cfg)
    except HeadstartError as exc:
        logger.info("--target %s is read without its labels (%s); no target_metrics.json", name, exc)
        return Target(loaded, labelled=False)
    return Target(replace(loaded, targets=targets, labels=list(source.labels)), labelled=True)


def check_target(cfg: RunConfig, strategy: Any) -> None:
    """Refuse, before any work, a strategy that needs target data without it, or AdaBN where no step runs it."""
    if (strategy.domain_loss is not None or strategy.adapts_bn()) and cfg.data.target is None:
        what = "strategy.adabn=true" if cfg.strategy.adabn else f"--strategy {cfg.strategy.name}"
        raise HeadstartError(
            f"{what} adapts to a target domain; pass its data with --target TARGET "
            "(a folder of images, a CSV or builtin:NAME; labels are not read)"
        )
    if cfg.strategy.adabn and not strategy.gradients:
        raise HeadstartError(
            f"strategy.adabn=true re-estimates BatchNorm statistics after gradient training, which "
            f"--strategy {cfg.strategy.name} does not run; use finetune, partial, progressive, plateau or lp-ft"
        )
