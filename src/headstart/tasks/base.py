"""The task plug-in: what a kind of target (one class per example today; a score or a set of labels next)
brings to the pipeline.

A :class:`Task` says how wide the head is, which loss trains it, how logits become the scores that metrics
and predictions read, how the closed-form probe is fitted on cached features, how a hard decision is made
from scores, which metrics a held-out set gets, and what ``predict`` and ``predictions.csv`` write. The
runner, the train loop, evaluate and predict ask the task instead of assuming softmax and argmax.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headstart.registry import unknown_choice

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from headstart.config import RunConfig

__all__ = [
    "Task",
    "ProbeResult",
    "TASKS",
    "register_task",
    "get_task",
    "known_tasks",
    "task_of_manifest",
    "DEFAULT_TASK",
]

DEFAULT_TASK = "classification"  # runs saved before tasks were recorded are classification runs


@dataclass
class ProbeResult:
    """A closed-form head fitted on cached features, in raw-feature space (loaded into the network's head)."""

    weight: np.ndarray  # (outputs, D)
    bias: np.ndarray  # (outputs,)
    C: float  # chosen inverse regularization strength
    history: list[dict]  # one record per C tried (train_loss, val_loss, val_* metrics)


@dataclass(frozen=True)
class Task:
    """One kind of target and everything the pipeline needs to train, score and report it."""

    name: str  # classification | ...
    summary: tuple[str, ...]  # the metrics.json keys a run is summed up by (repr, tables), most telling first
    # the head's width for the data's labels
    num_outputs: Callable[[list[str]], int]
    # refuse settings that do not apply to this data, before any work: (config, data) -> None
    check: Callable[[RunConfig, Any], None]
    # the training loss on logits: (config, data, training rows) -> module(logits, targets)
    loss: Callable[[RunConfig, Any, np.ndarray], nn.Module]
    # logits (B, K) -> the scores metrics and predictions read (class probabilities, ...)
    scores: Callable[[torch.Tensor], torch.Tensor]
    # validation record fields of one epoch: (targets, scores, labels) -> {"val_loss": ..., ...}
    validate: Callable[[np.ndarray, np.ndarray, list[str]], dict[str, float]]
    # the best epoch maximizes this key of a validation record; the plateau trigger watches its first value
    select: Callable[[dict[str, Any]], tuple[float, ...]]
    # the probe on cached features: (x_train, y_train, x_val, y_val, labels, config) -> fitted head
    fit_probe: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], RunConfig], ProbeResult]
    # lp-ft: a temperature for the probe's logits, fitted on validation: (logits, targets) -> T
    calibrate: Callable[[np.ndarray, np.ndarray], float]
    # hard predictions from scores: (scores, labels, decision threshold or None) -> per-row decisions
    decide: Callable[[np.ndarray, list[str], float | None], np.ndarray]
    # the decision threshold a run tunes on validation, or None: (config, validation scores thunk)
    tune_threshold: Callable[[RunConfig, Callable[[], tuple[np.ndarray, np.ndarray]]], float | None]
    # metrics.json of a held-out set: (targets, scores, labels, threshold, n_boot, seed) -> dict
    metrics: Callable[[np.ndarray, np.ndarray, list[str], float | None, int, int], dict[str, Any]]
    # predict's record fields for one row of scores: (scores (K,), labels, threshold) -> {"label": ..., ...}
    record: Callable[[np.ndarray, list[str], float | None], dict[str, Any]]
    # predictions.csv: (ids, targets, scores, labels, threshold) -> CSV text
    predictions_csv: Callable[[list[str], np.ndarray, np.ndarray, list[str], float | None], str]


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task (a plug-in module calls this when it is imported)."""
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The registered task ``name``; an unknown name lists the known ones."""
    _load_plugins()
    if name not in TASKS:
        raise unknown_choice("task", name, TASKS)
    return TASKS[name]


def known_tasks() -> list[str]:
    """Every registered task, in registration order."""
    _load_plugins()
    return list(TASKS)


def task_of_manifest(manifest: dict[str, Any]) -> Task:
    """The task a saved run was trained for (``headstart.json`` ``task``; classification before it was written)."""
    return get_task(str(manifest.get("task") or DEFAULT_TASK))


def _load_plugins() -> None:
    import headstart.tasks.classification  # noqa: F401
