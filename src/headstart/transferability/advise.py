"""``headstart advise``: recommend a backbone and a strategy, with the reasons in plain words.

The backbone is the pretrained candidate with the best validation score of the linear probe
(accuracy, R2 or mean average precision, by the task; ties: higher LogME), a direct held-out
measurement. On bench/bench_rank.py neither it nor LogME wins everywhere (Kendall tau vs fine-tuned
accuracy: probe 0.40 and 0.74, LogME 0.80 and 0.60 on Fashion-MNIST and ELPV; bench/README.md), and
the backbones it chooses between are mostly within noise of each other, which the reasons say.
The facts come from ``rank`` (LogME, probe score per candidate) and from the data: training examples
per class (regression: per value range, the quantile ranges of the target that splits and
``--limit-per-class`` stratify on; multi-label: per label, its positive examples; :data:`GROUPS`).
The domain distance comes from ``--reference DATA`` (proxy A-distance between a sample of
the pretraining domain and the target) or, for image backbones with an ImageNet head, from how
confident that head is on the target images. :func:`advise` is a pure function of those facts; the
rules, in order (the first that applies picks the strategy), are documented in the README:

1. a random-weights control probes at least as well as every pretrained backbone -> ``scratch``;
2. fewer than 5 training examples in some class (value range, label) -> ``linear-probe``;
3. the probe already reaches >= 0.97 (accuracy, R2, mAP) on a validation split of at least 30
   examples -> ``linear-probe``;
4. at most 20 training examples per class (value range, label; median) -> ``linear-probe``, then
   ``lp-ft``;
5. image data with ``--target`` far from it (proxy A-distance >= 1.0) -> ``adabn``, then ``finetune`` with the
   same ``--target`` to compare (the only adaptation method with a clear gain on bench/bench_adapt.py; text
   and audio have no such measurement, so the rule does not apply to them);
6. text or audio data, or a regression or multi-label task -> ``lp-ft`` (the best fine-tuning strategy measured on
   each in bench/README.md: the modality's or the task's ``fine_tune_advice``), except for a large text encoder where
   bench/bench_lora.py found LoRA within 1.5 macro-F1 points of full fine-tuning (``mpnet``: ``lora``, then
   ``lp-ft``: a fraction of the trainable parameters and 0.72x the time per epoch);
7. far from the pretraining domain (PAD >= 1.5, or mean source confidence < 0.35) with at least
   50 examples per class (value range, label) -> ``finetune`` (every layer must adapt);
8. otherwise -> ``progressive`` (headstart's default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from headstart.config import RunConfig
from headstart.data.dataset import Dataset
from headstart.data.loader import SkipLog
from headstart.engine.runtime import resolve_runtime
from headstart.modalities import get_modality
from headstart.tasks import get_task
from headstart.tasks.base import DEFAULT_TASK
from headstart.tasks.regression import value_bins
from headstart.transferability.features import candidate_features, parse_candidates
from headstart.transferability.rank import RankRow, ranked_examples, scoring_for
from headstart.transferability.shift import proxy_a_distance

__all__ = [
    "Facts",
    "Advice",
    "Groups",
    "GROUPS",
    "advise",
    "gather_facts",
    "FAR_PAD",
    "LOW_CONFIDENCE",
    "ADAPTATION_STRATEGIES",
    "SHIFTED",
]

MIN_PER_CLASS = 5
SEPARATED = 0.97
TRUSTED_VAL = 30  # fewer validation examples cannot tell 0.97 from 0.85
FEW_PER_CLASS = 20
ENOUGH_TO_ADAPT = 50
FAR_PAD = 1.5
LOW_CONFIDENCE = 0.35
CLOSE = 0.01  # probe scores this close are reported as a tie
# text encoders for which bench/bench_lora.py measured LoRA within 1.5 macro-F1 points of full fine-tuning
LORA_BENCH: dict[str, str] = {
    "mpnet": "on builtin:tweets LoRA (rank 4) reached 0.787 macro-F1 against 0.799 for full fine-tuning, training "
    "0.14% of the parameters at 0.72x the time per epoch: the cheaper way to adapt this large encoder "
    "(lp-ft next if the last point matters)",
}
SHIFTED = 1.0  # proxy A-distance between DATA and --target from which adapting to the target is advised
ADAPTATION_STRATEGIES = ("adabn", "dann", "coral")  # strategies that train on --target
# per modality, what bench/bench_adapt.py found best (ELPV mono <-> poly, 3 seeds; bench/README.md)
ADAPT_ADVICE: dict[str, tuple[str, str]] = {
    "image": (
        "adabn",
        "on ELPV mono -> poly it raised target macro-F1 from 0.33 to 0.57, the largest gain of the adaptation "
        "methods measured; poly -> mono it was 0.61 against 0.68 for source-only, within the seeds' noise",
    ),
}


@dataclass(frozen=True)
class Groups:
    """What the per-class facts count for one task (a row of :data:`GROUPS`)."""

    noun: str  # "few examples per <noun>"
    smallest: str  # "only 3 training example(s) <smallest>"
    separated: str  # "the features already <separated> (probe ...)"
    counts: Callable[[np.ndarray, int], np.ndarray]  # (training targets, number of labels) -> examples per group


GROUPS: dict[str, Groups] = {
    "classification": Groups(
        "class", "in the smallest class", "separate the classes", lambda y, k: np.bincount(y, minlength=k)
    ),
    "regression": Groups(
        "value range",
        "in the sparsest range of target values",
        "predict the target",
        lambda y, k: np.unique(value_bins(y), return_counts=True)[1],  # the ranges splits stratify on
    ),
    "multilabel": Groups("label", "with the rarest label", "separate the labels", lambda y, k: y.sum(0)),
}
"""Per task: the groups whose training examples the facts count, and how reasons name them."""


@dataclass
class Facts:
    modality: str  # image | text
    num_classes: int  # classes (labels for multi-label; 1 for regression)
    min_train_per_class: int  # training examples in the smallest class (value range, label: GROUPS)
    median_train_per_class: float
    n_val: int  # validation examples behind the probe score
    ranked: list[RankRow]  # best LogME first (as ``rank`` returns them)
    reference_pad: float | None = None  # proxy A-distance to --reference (None without one)
    source_confidence: float | None = None  # mean max softmax of the source head on the target
    target_pad: float | None = None  # proxy A-distance between DATA and --target (None without one)
    task: str = DEFAULT_TASK  # classification | regression | multilabel
    n_train: int | None = None  # training examples


@dataclass
class Advice:
    backbone: str
    strategy: str
    reasons: list[str]  # plain-words reasons, most important first
    then: str | None = None  # the next strategy to try if time allows
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(row: RankRow) -> tuple[float, float]:
    """How candidates are compared: the probe's validation score (higher is better), then LogME."""
    return (row.probe_score, row.logme)


def _score(row: RankRow) -> str:
    """The probe's score as reasons quote it: "0.912" for accuracy, "R2 0.912", "mAP 0.912"."""
    short = scoring_for(row.task).short
    return f"{row.probe_score:.3f}" if row.metric == "accuracy" else f"{short} {row.probe_score:.3f}"


def _far(facts: Facts) -> str | None:
    """Why the target looks far from the pretraining data, or None."""
    if facts.reference_pad is not None and facts.reference_pad >= FAR_PAD:
        return f"the target is far from the reference data (proxy A-distance {facts.reference_pad:.2f} of 2)"
    if facts.reference_pad is None and facts.source_confidence is not None:
        if facts.source_confidence < LOW_CONFIDENCE:
            return (
                f"the backbone's source classifier is unsure on these images (mean confidence "
                f"{facts.source_confidence:.2f}): they look unlike its pretraining data"
            )
    return None


def _lora(facts: Facts, best: RankRow) -> tuple[str, str | None, str] | None:
    """Rule 6's exception: a text encoder for which the LoRA bench measured LoRA close to full fine-tuning."""
    if facts.modality != "text" or best.backbone not in LORA_BENCH:
        return None
    return "lora", "lp-ft", LORA_BENCH[best.backbone]


def _shifted(facts: Facts) -> tuple[str, str | None, str] | None:
    """Rule 5: image ``--target`` far from DATA -> the adaptation method the bench found best (then source-only
    ``finetune`` to compare on target_metrics.json); None otherwise."""
    if facts.target_pad is None or facts.target_pad < SHIFTED or facts.modality not in ADAPT_ADVICE:
        return None
    method, evidence = ADAPT_ADVICE[facts.modality]
    return (
        method,
        "finetune",
        f"--target looks unlike the training data (proxy A-distance {facts.target_pad:.2f} of 2): adapt to it "
        f"with {method} ({evidence}); train finetune with the same --target too and compare target_metrics.json",
    )


def _strategy(facts: Facts, best: RankRow) -> tuple[str, str | None, str]:
    """(strategy, then, reason) by the rules of the module docstring."""
    groups = GROUPS[facts.task]
    controls = [r for r in facts.ranked if not r.pretrained]
    if controls and max(_key(r) for r in controls) >= _key(best):
        return "scratch", None, "pretrained features score no better than random ones: transfer does not help here"
    if facts.min_train_per_class < MIN_PER_CLASS:
        return (
            "linear-probe",
            None,
            f"only {facts.min_train_per_class} training example(s) {groups.smallest}: too few to fine-tune "
            "without overfitting, so keep the backbone frozen",
        )
    if best.probe_score >= SEPARATED and facts.n_val >= TRUSTED_VAL:
        return (
            "linear-probe",
            None,
            f"the features already {groups.separated} (probe {_score(best)} on validation): "
            "fine-tuning has little left to win",
        )
    if facts.median_train_per_class <= FEW_PER_CLASS:
        return (
            "linear-probe",
            "lp-ft",
            f"few examples per {groups.noun} ({facts.median_train_per_class:g}): start with a linear probe, then "
            "lp-ft if you can afford it (it starts from the probe, so it cannot do much worse)",
        )
    chosen = _shifted(facts) or _lora(facts, best)
    if chosen is not None:
        return chosen
    preferred = get_modality(facts.modality).fine_tune_advice or get_task(facts.task).fine_tune_advice
    if preferred is not None:
        return preferred[0], None, preferred[1]
    far = _far(facts)
    if far and facts.median_train_per_class >= ENOUGH_TO_ADAPT:
        return "finetune", None, f"{far}, and there is enough data to adapt every layer"
    return (
        "progressive",
        None,
        "enough data to fine-tune; progressive unfreezing adapts the top layers first and keeps the general "
        "early features" + (f" ({far})" if far else ""),
    )


def advise(facts: Facts) -> Advice:
    """The recommendation for ``facts`` (pure: the same facts always give the same advice)."""
    pretrained = [r for r in facts.ranked if r.pretrained]
    if not pretrained:
        raise ValueError("advise needs at least one pretrained candidate among the ranked backbones")
    ordered = sorted(pretrained, key=_key, reverse=True)
    best = ordered[0]
    reasons = [
        f"{best.backbone} has the best linear-probe {scoring_for(best.task).name} on validation "
        f"({best.probe_score:.3f}, LogME {best.logme:.3f}) of {len(pretrained)} pretrained candidates"
    ]
    close = [r for r in ordered[1:] if best.probe_score - r.probe_score <= CLOSE]
    if close:
        reasons.append(
            f"{', '.join(r.backbone for r in close)} probe(s) within {CLOSE:.0%} of it: on a small validation "
            "split that is within noise, so prefer the cheaper one if speed matters"
        )
    strategy, then, why = _strategy(facts, best)
    reasons.insert(0, why)
    summary = {k: v for k, v in asdict(facts).items() if k != "ranked"}
    summary["counted_per"] = GROUPS[facts.task].noun  # what min / median_train_per_class count examples of
    return Advice(best.backbone, strategy, reasons, then, summary)


def gather_facts(
    cfg: RunConfig,
    ranked: list[RankRow],
    data: tuple[Dataset, dict[str, np.ndarray]],
    reference: Dataset | None = None,
    target: Dataset | None = None,
) -> Facts:
    """The facts about prepared ``data`` given its rank table; ``reference`` (a dataset sampled from
    the pretraining domain) adds the proxy A-distance between it and the target, through the best
    pretrained backbone's features; ``target`` (unlabelled target-domain data) the one between DATA and it."""
    images, splits = data
    task = cfg.task.kind
    counts = GROUPS[task].counts(np.asarray(images.targets)[splits["train"]], len(images.labels))
    best = max((r for r in ranked if r.pretrained), key=_key)
    return Facts(
        modality=images.modality,
        num_classes=len(images.labels),
        min_train_per_class=int(counts.min()),
        median_train_per_class=float(np.median(counts)),
        n_val=len(splits["val"]),
        ranked=ranked,
        reference_pad=_pad(cfg, best, data, reference),
        source_confidence=best.source_confidence,
        target_pad=_pad(cfg, best, data, target),
        task=task,
        n_train=len(splits["train"]),
    )


def _pad(
    cfg: RunConfig, best: RankRow, data: tuple[Dataset, dict[str, np.ndarray]], other: Dataset | None
) -> float | None:
    """Proxy A-distance between ``other`` and DATA through the best backbone's features (None without other)."""
    if other is None:
        return None
    images, splits = data
    cand = parse_candidates(best.backbone, images.modality)[0]
    runtime = resolve_runtime(cfg.train)
    fo = candidate_features(cand, other, cfg, runtime, SkipLog(), other.fingerprint())
    # the rows rank read, so DATA's features come from the cache
    fd = candidate_features(cand, images, cfg, runtime, SkipLog(), images.fingerprint(), ranked_examples(splits))
    pad, _ = proxy_a_distance(fo.features[fo.valid], fd.features[fd.valid], seed=cfg.data.seed)
    return pad
