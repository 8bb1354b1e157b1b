"""The task plug-in: what a kind of target (one class per example today; a score or a set of labels next)
brings to the pipeline.

A :class:`Task` says how wide the head is, which loss trains it, how logits become the scores that metrics
and predictions read, how the closed-form probe is fitted on cached features, how a hard decision is made
from scores, which metrics a held-out set gets, and what ``predict`` and ``predictions.csv`` write. The
runner, the train loop, evaluate and predict ask the task instead of assuming softmax and argmax.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from headstart.errors import HeadstartError
from headstart.registry import unknown_choice

if TYPE_CHECKING:
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
    "feature_scale",
]

DEFAULT_TASK = "classification"  # runs saved before tasks were recorded are classification runs


@dataclass
class ProbeResult:
    """A closed-form head fitted on cached features, in raw-feature space (loaded into the network's head)."""

    weight: np.ndarray  # (outputs, D)
    bias: np.ndarray  # (outputs,)
    C: float  # chosen inverse regularization strength
    history: list[dict]  # one record per C tried (train_loss, val_loss, val_* metrics)


def feature_scale(x_train: np.ndarray) -> tuple[np.ndarray, float]:
    """What every probe scales features by before fitting (folded into its weights afterwards): the training
    mean per dimension, and one common scale, the root mean variance over dimensions (+1e-6).

    Not a per-dimension std: pretrained features have near-constant dimensions (ReLU channels that rarely fire;
    ELPV on EfficientNet-Lite0: 29 of 1,280 below 1e-3), and dividing by their std gives them weights in the
    thousands once folded back, a head that fine-tuning from the probe (``lp-ft``, ``plateau``) cannot survive:
    the first backbone step that moves such a dimension swings the logits. One common scale keeps the C grid
    meaningful across backbones and was as accurate or better on validation (bench/README.md, issue 20).

    >>> mu, sd = feature_scale(np.array([[0.0, 1.0], [2.0, 1.0]]))
    >>> mu.tolist(), round(sd, 4)
    ([1.0, 1.0], 0.7071)
    """
    x = np.asarray(x_train, dtype=np.float64)
    return x.mean(0), float(np.sqrt(x.var(0).mean())) + 1e-6


@dataclass(frozen=True)
class Task:
    """One kind of target and everything the pipeline needs to train, score and report it.

    A registered task is a template; a run uses it bound to its training targets (:attr:`bind`: regression
    standardizes targets with the training mean and std), and a saved run restores the bound task from
    ``headstart.json`` (``task_state``)."""

    name: str  # classification | regression | multilabel
    summary: tuple[str, ...]  # the metrics.json keys a run is summed up by (repr, tables), most telling first
    primary: str  # the metric ``compare`` verdicts and ``--seeds`` aggregation rank runs by
    empty_labels: bool  # an example may have no label at all (multi-label: an empty set)
    head_dropout: bool  # dropout before the head suits it (regression: no, it inflates the output's variance)
    lr: float  # the default optim.lr (head LR) of fine-tuning for this task (measured in bench/README.md)
    # -- data ----------------------------------------------------------------------------------------------
    # the readers' labels (class index over label strings) as this task's targets: (data, config) -> data
    encode: Callable[[Any, RunConfig], Any]
    # stratified parts of a split: (targets of the examples to split, fractions, seed) -> [rest, *parts]
    stratify: Callable[[np.ndarray, list[float], int], list[np.ndarray]]
    # one stratum per example, for ``limit_per_class`` and balanced sampling: targets -> (N,) int
    strata: Callable[[np.ndarray], np.ndarray]
    # what ``headstart.json`` records about the targets: (data) -> {"class_counts": ...} or value ranges
    target_summary: Callable[[Any], dict[str, Any]]
    # other labelled data in a saved run's terms (evaluate): (data, the run's labels, its config) -> targets
    align: Callable[[Any, list[str], RunConfig], np.ndarray]
    # -- the head --------------------------------------------------------------------------------------------
    # the head's width for the data's labels
    num_outputs: Callable[[list[str]], int]
    # refuse settings that do not apply to this data, before any work: (config, data) -> None
    check: Callable[[RunConfig, Any], None]
    # this task for one run's training targets (identity where nothing is fitted)
    bind: Callable[[np.ndarray], Task]
    # a bound task back from its ``state`` (what a run saves)
    restore: Callable[[dict[str, Any]], Task]
    # the training loss on logits: (config, data, training rows) -> module(logits, targets)
    loss: Callable[[RunConfig, Any, np.ndarray], nn.Module]
    # logits (B, K) -> the scores metrics and predictions read (class probabilities, values, ...)
    scores: Callable[[torch.Tensor], torch.Tensor]
    # validation record fields of one epoch: (targets, scores, labels) -> {"val_loss": ..., ...}
    validate: Callable[[np.ndarray, np.ndarray, list[str]], dict[str, float]]
    # the best epoch maximizes this key of a validation record; the plateau trigger watches its first value
    select: Callable[[dict[str, Any]], tuple[float, ...]]
    # the probe on cached features: (x_train, y_train, x_val, y_val, labels, config) -> fitted head
    fit_probe: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], RunConfig], ProbeResult]
    # a linear head on sparse TF-IDF rows (text scratch): (x_train, y_train, x_val, y_val, labels) -> head
    sparse_head: Callable[[Any, np.ndarray, Any, np.ndarray, list[str]], ProbeResult]
    # lp-ft: a temperature for the probe's logits, fitted on validation: (logits, targets) -> T (1: none)
    calibrate: Callable[[np.ndarray, np.ndarray], float]
    # -- decisions, metrics, files ---------------------------------------------------------------------------
    # hard predictions from scores: (scores, labels, decision threshold(s) or None) -> classes, values, label rows
    decide: Callable[[np.ndarray, list[str], Any], np.ndarray]
    # the decision rule a run tunes on validation (a binary threshold, per-label thresholds) or None:
    # (config, validation (targets, scores) thunk)
    tune_threshold: Callable[[RunConfig, Callable[[], tuple[np.ndarray, np.ndarray]]], Any]
    # metrics.json of a held-out set: (targets, scores, labels, threshold, n_boot, seed) -> dict
    metrics: Callable[[np.ndarray, np.ndarray, list[str], Any, int, int], dict[str, Any]]
    # predict's record fields for one row of scores: (scores (K,), labels, threshold) -> {"label": ..., ...}
    record: Callable[[np.ndarray, list[str], Any], dict[str, Any]]
    # predictions.csv: (ids, targets, scores, labels, threshold) -> CSV text
    predictions_csv: Callable[[list[str], np.ndarray, np.ndarray, list[str], Any], str]
    # the report's task sections: (RunData, example lookup or None) -> HTML sections
    report: Callable[[Any, Any], Sequence[str]]
    # ``advise``'s fine-tuning strategy for this task where the bench found one best, and why (None: the rules')
    fine_tune_advice: tuple[str, str] | None = None
    state: dict[str, Any] = field(default_factory=dict)  # what :attr:`bind` fitted (saved with the run)


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
    """The bound task a saved run was trained for (``headstart.json`` ``task`` and ``task_state``; runs saved
    before tasks were recorded are classification runs)."""
    task = get_task(str(manifest.get("task") or DEFAULT_TASK))
    return task.restore(manifest.get("task_state") or {})


def table_layout_only(data: Any, task: str, what: str) -> None:
    """Refuse class-folder layouts for tasks whose label is not a class name (``what``: the label cell)."""
    if getattr(data, "layout", "table") == "folders":
        raise HeadstartError(
            f"{data.source!r} is a folder layout (one subfolder per class), but --task {task} reads {what} from a "
            "label column: pass a CSV / TSV with path,label (images) or text,label (texts) rows, or a JSONL file"
        )


def raw_labels(data: Any) -> list[str]:
    """Each example's label string as the reader saw it (readers index the distinct strings)."""
    return [data.labels[int(t)] for t in np.asarray(data.targets)]


def _load_plugins() -> None:
    import headstart.tasks.classification  # noqa: F401
    import headstart.tasks.multilabel  # noqa: F401
    import headstart.tasks.regression  # noqa: F401
