"""``README.md``: the model card of a run folder, in Markdown that reads as plain text.

:func:`card_markdown` builds it from a run's manifest (``headstart.json``) and test metrics (``metrics.json``), so
:func:`~headstart.artifacts.run_files.run_files` writes it with the other files and :func:`model_card` renders
the same text from a written folder; its sections come in the order of :data:`SECTIONS`. Nothing branches on a
task's or modality's name: the targets are read from the data summary the task recorded (class counts, label
counts, a value range), ``predict``'s fields from the task plug-in, example inputs from :data:`EXAMPLE_INPUTS`.

Example:
    >>> model_card(Path("runs/elpv/linear-probe")).splitlines()[0]  # doctest: +SKIP
    '# linear-probe: classification model'
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from headstart.artifacts.names import MANIFEST, METRICS, MODEL_CARD, PLAN, PREDICTIONS, REPORT, SPLITS, WEIGHTS
from headstart.report.layout import fmt_num
from headstart.report.metric_keys import metric_name, summary_keys
from headstart.report.plan_table import plan_markdown
from headstart.report.tables import format_cell
from headstart.report.verdict import SCRATCH

__all__ = ["EXAMPLE_INPUTS", "SECTIONS", "card_markdown", "card_file", "model_card"]

logger = logging.getLogger(__name__)

EXAMPLE_INPUTS = {  # modality -> predict's inputs: (CLI arguments, Python list, what else the Python API takes)
    "image": ("photo1.png 'photos/*.jpg'", '["photo1.png", "photo2.jpg"]', "PIL images, (H, W, C) arrays"),
    "text": ('--text "the first text" --text "another one"', '["the first text", "another one"]', "strings"),
    "audio": ("clip1.wav 'clips/*.flac'", '["clip1.wav", "clip2.flac"]', "(waveform, sample_rate) pairs"),
}
USAGE = """Command line (this run's folder is `{path}`):

```bash
headstart predict {run} {cli} --format json
headstart evaluate {run}  # the test split again: the numbers above
headstart evaluate {run} NEW_DATA  # labelled data laid out like {source}
{shift}  # how far NEW_DATA is from the training data
```

Python:

```python
import headstart as hs

"""  # then the load and predict lines of the run (see _how_to_use)
PER_ITEM = ("precision", "recall", "f1", "average_precision", "roc_auc", "support", "threshold")  # per class/label
WIDE_CI = 0.2  # a 95% interval of the task's primary metric wider than this is a warning
LISTED = 8  # names and list values shown before "… (N in all)"
WORDED = {"source", "fingerprint", "n", "split_sizes", "skipped_unreadable", "class_counts", "label_counts"}
WORDED |= {"without_label", "target", "identity"}  # words itself or leaves out (identity: hashes for --resume)


@dataclass(frozen=True)
class CardInput:
    """What the card is built from: a run's manifest and test metrics, and the path its commands name."""

    manifest: Mapping[str, Any]  # headstart.json (format_version and unknown keys are ignored)
    metrics: Mapping[str, Any]  # metrics.json: the test split's metrics
    path: Path  # the run folder, as the commands in "How to use" name it

    def get(self, *keys: str) -> Any:
        """A nested manifest value (``get("config", "train", "epochs")``); None where any key is missing."""
        value: Any = self.manifest
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        return value

    @property
    def data(self) -> Mapping[str, Any]:
        return self.get("data") or {}

    @property
    def labels(self) -> list[str]:
        return [str(label) for label in self.metrics.get("labels") or self.manifest.get("labels") or []]

    @property
    def targets(self) -> str:
        """``classes``, ``labels`` or ``value``: what the task's recorded data summary counts; '' when unknown."""
        kinds = (("classes", "class_counts"), ("labels", "label_counts"), ("value", "target"))
        return next((word for word, key in kinds if key in self.data), "")

    @property
    def source(self) -> str:
        return str(self.data.get("source") or self.get("config", "data", "source") or "?")

    @property
    def modality(self) -> str:
        return str(self.get("recipe", "modality") or "")

    def task(self) -> Any:
        """The run's bound task plug-in (see :func:`headstart.tasks.task_of_manifest`)."""
        from headstart.tasks import task_of_manifest

        return task_of_manifest(dict(self.manifest))


def _listed(values: Sequence[Any]) -> str:
    """``a, b, c`` or ``a, b, … (12 in all)``; ``none`` for an empty list."""
    shown = ", ".join(fmt_num(v) for v in values[:LISTED])
    return (shown + f", … ({len(values)} in all)" if len(values) > LISTED else shown) or "none"


def _fact(value: Any) -> str:
    """A recorded value in words: dicts as ``key value; ...``, lists via :func:`_listed`, None as ``none``."""
    if isinstance(value, Mapping):
        return "; ".join(f"{k} {_fact(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return _listed(value)
    return "none" if value is None else fmt_num(value)


def _with_ci(key: str, metrics: Mapping[str, Any]) -> str:
    """``0.873 [0.851, 0.894]`` (the comparison tables' cell), ``n/a`` when undefined."""
    ci95 = {k: v for k, v in (metrics.get("ci95") or {}).items() if v and None not in v}
    return format_cell(key, {key: metrics.get(key), "ci95": ci95})


def _what(card: CardInput) -> str:
    """What the model predicts for one input."""
    labels, n = card.labels, len(card.labels)
    name = labels[0] if len(labels) == 1 and labels[0] != "label" else "target"
    return {
        "classes": f"one of {n} classes ({_listed(labels)})",
        "labels": f"any subset of {n} labels ({_listed(labels)})",
        "value": f"a number (the {name} value)",
    }.get(card.targets, f"{card.get('task') or 'task'} outputs over {_listed(labels)}")


def _pretraining(card: CardInput) -> str:
    """Where the backbone's weights came from: the checkpoint's source, or none (a baseline, ``scratch``)."""
    source = card.get("backbone", "source") or "not recorded"
    if card.get("baseline"):
        return "none: a baseline fitted on this data alone"
    if card.get("strategy") == SCRATCH:
        return f"none: random initial weights (the checkpoint, {source}, was not loaded)"
    return str(source)


def _summary(card: CardInput) -> list[str]:
    primary = card.task().primary
    return [
        f"`{card.get('strategy')}` on `{card.get('backbone', 'name')}` (pretraining: {_pretraining(card)}): predicts "
        f"{_what(card)} for {card.modality or 'its'} inputs like those of `{card.source}`.",
        "",
        f"Test {metric_name(primary)}: {_with_ci(primary, card.metrics)} (95% CI) on {fmt_num(card.metrics.get('n'))} "
        f"held-out examples; {len(card.metrics.get('warnings') or [])} warning(s) from the metrics, see Warnings.",
        "",
        f"Written by headstart {card.get('versions', 'headstart') or '?'} on {card.get('created') or '?'}. "
        f"Beside this card: {WEIGHTS} (the weights), {MANIFEST} (recipe, configuration, data facts), {METRICS}, "
        f"{PREDICTIONS} (test-split predictions), {SPLITS}, {PLAN} and {REPORT} (figures).",
    ]


def _intended_use(card: CardInput) -> list[str]:
    return [
        f"- Predicting {_what(card)} for {card.modality or 'its'} inputs like those of `{card.source}`: the same "
        "kind of source, preprocessing and label definitions as the training data.",
        "- A measured starting point: its test numbers, with their intervals, are the bar a new strategy, backbone "
        "or more data has to clear (`headstart compare`).",
        "- Out of scope: inputs of another kind or from another source before it has been evaluated there "
        "(`headstart evaluate` on labelled examples from that source), and decisions nobody reviews.",
    ]


def _targets(card: CardInput) -> str:
    """The recorded targets in words: class counts, label counts, or the value range."""
    info = card.data
    counts = info.get("class_counts") or info.get("label_counts") or {}
    text = ", ".join(f"{k} {fmt_num(v)}" for k, v in counts.items())
    if info.get("without_label"):
        text += f"; {fmt_num(info['without_label'])} without a label"
    target = info.get("target") or {}
    if target:
        text = f"target from {fmt_num(target.get('min'))} to {fmt_num(target.get('max'))}, "
        text += f"mean {fmt_num(target.get('mean'))}, std {fmt_num(target.get('std'))}"
        text += f", {int(target['distinct'])} distinct values" if "distinct" in target else ""
    return text or "not recorded"


def _data(card: CardInput) -> list[str]:
    info = card.data
    sizes = ", ".join(f"{k} {fmt_num(v)}" for k, v in (info.get("split_sizes") or {}).items()) or "not recorded"
    seed = card.get("config", "data", "seed")
    lines = [
        f"- Source: `{card.source}` (fingerprint {info.get('fingerprint') or 'not recorded'})",
        f"- Examples: {fmt_num(info.get('n'))} ({_targets(card)})",
        f"- Splits: {sizes} (seed {fmt_num(seed)}; the ids are in {SPLITS}). Validation chose the epoch, the "
        "regularization and any threshold; the test split only scored the final model.",
        f"- Unreadable examples skipped: {len(info.get('skipped_unreadable') or [])}",
    ]
    return lines + [f"- {key.replace('_', ' ')}: {_fact(v)}" for key, v in info.items() if key not in WORDED]


def _model(card: CardInput) -> list[str]:
    plan = card.get("plan") or []
    total = sum(int(r.get("params") or 0) for r in plan)
    trainable = fmt_num(card.get("trainable_params")) + (f" of {total:,}" if total else "")
    seconds, best, epochs = card.get("seconds"), card.get("best_epoch"), card.get("config", "train", "epochs")
    fitted = f"- Best epoch (on the validation split): {fmt_num(best)} of {fmt_num(epochs)}"
    if card.get("baseline") or (plan and all(row.get("lr") is None for row in plan)):  # no group had an LR
        fitted = "- Fitted in closed form (no epochs): the head's regularization chosen on the validation split"
    lines = [
        f"- Backbone: `{card.get('backbone', 'name')}` (architecture `{card.get('backbone', 'architecture')}`)"
        + (f": {card.get('backbone', 'source')}" if card.get("baseline") else ""),
        f"- Pretraining: {_pretraining(card)}",
        f"- Strategy: `{card.get('strategy')}`" + (f" ({card.get('baseline')})" if card.get("baseline") else ""),
        f"- Trainable parameters: {trainable}",
        fitted,
        f"- Training time: {seconds:.1f} s" if isinstance(seconds, int | float) else "- Training time: not recorded",
    ]
    if plan:
        lines += ["", "Layer groups, from input to head (also in plan.md):", "", plan_markdown(plan).rstrip("\n")]
    return lines


def _recipe(card: CardInput) -> list[str]:
    recipe, checkpoint = card.get("recipe") or {}, card.get("checkpoint_recipe") or {}
    lines = [
        f"Saved with the weights ({MANIFEST}, `recipe`): `headstart predict` and `hs.load(...)` apply it, so pass "
        "raw inputs, not preprocessed ones.",
        "",
        *(f"- {key}: {_fact(value)}" for key, value in recipe.items()),
    ]
    changed = [k for k in recipe if k in checkpoint and checkpoint[k] != recipe[k]]
    if changed:
        lines += ["", "Changed from the checkpoint's recipe: "]
        lines[-1] += "; ".join(f"{k} {_fact(checkpoint[k])} → {_fact(recipe[k])}" for k in changed)
    return lines


def _metric_table(card: CardInput) -> list[str]:
    m, summary = card.metrics, card.task().summary
    keys = [k for k in summary_keys(card.task().name) if k in summary or m.get(k) is not None]
    lines = ["| metric | value [95% CI] |", "|---|---:|"]
    lines += [f"| {metric_name(k)} | {_with_ci(k, m)} |" for k in keys if k in m]
    top_k = sorted((m.get("top_k_accuracy") or {}).items(), key=lambda kv: int(kv[0]))
    return lines + [f"| top-{k} accuracy | {fmt_num(v)} |" for k, v in top_k]


def _per_item_table(card: CardInput) -> list[str]:
    """Per-class (classification) or per-label (multi-label) precision, recall, F1, ...; [] without either."""
    kind = "class" if card.metrics.get("per_class") else "label"
    per: Mapping[str, Any] = card.metrics.get(f"per_{kind}") or {}
    if not per:
        return []
    names = [label for label in card.labels if label in per] or list(per)
    columns = [c for c in PER_ITEM if any(c in (per[n] or {}) for n in names)]
    lines = [f"Per {kind}:", "", "| " + " | ".join([kind, *map(metric_name, columns)]) + " |"]
    lines.append("|---|" + "---:|" * len(columns))
    rows = [[n, *((per[n] or {}).get(c) for c in columns)] for n in names]
    lines += ["| " + " | ".join(fmt_num(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return ["", *lines]


def _decision(card: CardInput) -> str:
    """How scores become the answer: argmax, a tuned binary threshold, per-label thresholds."""
    threshold, objective = card.get("threshold"), card.get("config", "eval", "threshold") or "F1"
    tuned = f"tuned on the validation split for {objective}"
    if isinstance(threshold, int | float) and len(card.labels) == 2:
        return f"Decision: `{card.labels[1]}` when its probability is at least {fmt_num(float(threshold))} ({tuned})."
    if isinstance(threshold, list):
        return f"Decision: each label whose probability reaches its own threshold ({tuned})."
    return "Decision: the most probable class (no threshold tuned)." if card.targets == "classes" else ""


def _evaluation(card: CardInput) -> list[str]:
    m, n_boot = card.metrics, card.get("config", "eval", "n_boot")
    lines = [
        f"Test split: {fmt_num(m.get('n'))} examples, never used for training or model selection. Intervals: 95% "
        f"percentile bootstrap over the test examples ({fmt_num(n_boot)} resamples).",
        "",
        *_metric_table(card),
        *_per_item_table(card),
        "",
    ]
    if m.get("ece") is not None:
        bins = max(len((m.get("reliability") or {}).get("bin_edges") or []) - 1, 0)
        lines.append(
            f"Calibration: expected calibration error (ECE) {fmt_num(m['ece'])} over {bins} confidence bins "
            "(0: the predicted probabilities match the observed accuracy)"
            + (f"; log loss {fmt_num(m['log_loss'])}." if m.get("log_loss") is not None else ".")
        )
    else:
        lines.append(f"Calibration: not measured for {card.get('task') or 'these'} runs ({METRICS} holds no ECE).")
    decision = _decision(card)
    return lines + (["", decision] if decision else [])


def _shift_command(card: CardInput) -> str:
    backbone = card.get("config", "model", "backbone") or card.get("backbone", "name")
    return f"headstart shift {shlex.quote(card.source)} NEW_DATA --backbone {shlex.quote(str(backbone))}"


def _warnings(card: CardInput) -> list[str]:
    m, primary = card.metrics, card.task().primary
    out = [str(w) for w in m.get("warnings") or []]
    ci = (m.get("ci95") or {}).get(primary)
    if ci and None not in ci and ci[1] - ci[0] > WIDE_CI:
        out.append(
            f"the 95% CI of {metric_name(primary)} spans {fmt_num(ci[0])} to {fmt_num(ci[1])}: the test split is "
            "too small to pin the number down (more labelled test data narrows it)"
        )
    skipped = len(card.data.get("skipped_unreadable") or [])
    if skipped:
        out.append(f"{skipped} example(s) could not be read and were left out ({MANIFEST}: data.skipped_unreadable)")
    out.append(
        "domain shift: not measured; this run records no `headstart shift` result. Before using the model on data "
        f"from another source, measure how far it is from the training data: `{_shift_command(card)}`"
    )
    return [f"- {w}" for w in out]


def _limitations(card: CardInput) -> list[str]:
    target = card.data.get("target") or {}
    answers = {
        "classes": f"It always answers with one of its {len(card.labels)} classes, even for an input that shows none "
        "of them: there is no 'unknown' answer.",
        "labels": f"It only knows its {len(card.labels)} labels; an empty answer means no label reached its threshold.",
        "value": f"It saw targets from {fmt_num(target.get('min'))} to {fmt_num(target.get('max'))}; predictions "
        "outside that range are extrapolations.",
    }
    n_train = (card.data.get("split_sizes") or {}).get("train")
    return [
        f"- {answers.get(card.targets, 'Its answers are limited to what the training targets held.')}",
        f"- Trained on {fmt_num(n_train)} examples from `{card.source}`; cases they did not show are likely to be "
        "handled poorly.",
        f"- The test numbers hold for data like its {fmt_num(card.metrics.get('n'))} test examples. On other "
        "sources (devices, sites, periods, populations) it may do worse, by an amount only labelled data from there "
        "can measure.",
        "- Not validated for decisions about people or for safety-critical use without human review.",
    ]


def _record_fields(card: CardInput) -> str:
    """The fields of one ``predict`` record, from the task plug-in and the modality's input field."""
    from headstart.modalities import get_modality

    task, labels = card.task(), card.labels or ["label"]
    fields = list(task.record(np.full(task.num_outputs(labels), 0.5), labels, card.get("threshold")))
    return ", ".join(f"`{f}`" for f in [get_modality(card.modality).input_field, *fields])


def _how_to_use(card: CardInput) -> list[str]:
    cli, python, also = EXAMPLE_INPUTS.get(card.modality, ("INPUT", '["INPUT"]', ""))
    run, source = shlex.quote(str(card.path)), shlex.quote(card.source)
    usage = USAGE.format(path=card.path, run=run, cli=cli, source=source, shift=_shift_command(card))
    usage += f"model = hs.load({json.dumps(str(card.path))})\nrecords = model.predict({python})"
    usage += (f"  # also {also}" if also else "") + "\n```\n\n"
    return [*usage.splitlines(), f"Each record holds {_record_fields(card)}; an unreadable input gets an `error`."]


SECTIONS: dict[str, Callable[[CardInput], list[str]]] = {  # the card's sections, in order
    "Summary": _summary,
    "Intended use": _intended_use,
    "Data": _data,
    "Model": _model,
    "Preprocessing recipe": _recipe,
    "Evaluation": _evaluation,
    "Warnings": _warnings,
    "Limitations": _limitations,
    "How to use": _how_to_use,
}


def card_markdown(manifest: Mapping[str, Any], metrics: Mapping[str, Any], path: Path) -> str:
    """The model card of the run at ``path`` with this manifest and these test metrics."""
    card = CardInput(manifest, metrics, Path(path))
    lines = [f"# {card.path.name}: {card.get('task') or 'classification'} model"]
    for title, build in SECTIONS.items():
        lines += ["", f"## {title}", "", *build(card)]
    return "\n".join(lines) + "\n"


def card_file(manifest: Mapping[str, Any], metrics: Mapping[str, Any], path: Path) -> dict[str, str]:
    """``{README.md: card}`` for :func:`~headstart.artifacts.run_files.run_files`; empty, with a warning, when
    the card cannot be built (a finished training run is never lost to its card)."""
    try:
        return {MODEL_CARD: card_markdown(manifest, metrics, path)}
    except Exception as exc:  # noqa: BLE001 - the card must not fail a finished training run
        logger.warning("could not write %s/%s (%r); the run itself is complete", path, MODEL_CARD, exc)
        return {}


def model_card(run_dir: Path) -> str:
    """The model card of a written run folder (what its ``README.md`` holds)."""
    from headstart.report.rundata import load_run_data

    data = load_run_data(Path(run_dir))
    return card_markdown(data.manifest, data.metrics, data.run_dir)
