"""``headstart advise``: recommend a backbone and a strategy, with the reasons in plain words.

The backbone is the pretrained candidate with the best validation accuracy of the linear probe
(ties: higher LogME), a direct held-out measurement. On bench/bench_rank.py neither it nor LogME
wins everywhere (Kendall tau vs fine-tuned accuracy: probe 0.40 and 0.74, LogME 0.80 and 0.60 on
Fashion-MNIST and ELPV; bench/README.md), and the backbones it chooses between are mostly within
noise of each other, which the reasons say.
The facts come from ``rank`` (LogME, probe accuracy per candidate) and from the data (examples per
class); the domain distance comes from ``--reference DATA`` (proxy A-distance between a sample of
the pretraining domain and the target) or, for image backbones with an ImageNet head, from how
confident that head is on the target images. :func:`advise` is a pure function of those facts; the
rules, in order (the first that applies picks the strategy), are documented in the README:

1. a random-weights control probes at least as well as every pretrained backbone -> ``scratch``;
2. fewer than 5 training examples in some class -> ``linear-probe``;
3. the probe already reaches >= 0.97 accuracy on a validation split of at least 30 examples
   -> ``linear-probe``;
4. at most 20 training examples per class (median) -> ``linear-probe``, then ``lp-ft``;
5. text data -> ``lp-ft`` (the best text strategy measured in bench/README.md);
6. far from the pretraining domain (PAD >= 1.5, or mean source confidence < 0.35) with at least
   50 examples per class -> ``finetune`` (every layer must adapt);
7. otherwise -> ``progressive`` (headstart's default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from headstart.config import RunConfig
from headstart.data.dataset import Dataset
from headstart.data.loader import SkipLog
from headstart.engine.runtime import resolve_runtime
from headstart.modalities import get_modality
from headstart.transferability.features import candidate_features, parse_candidates
from headstart.transferability.rank import RankRow, ranked_examples
from headstart.transferability.shift import proxy_a_distance

__all__ = ["Facts", "Advice", "advise", "gather_facts", "FAR_PAD", "LOW_CONFIDENCE"]

MIN_PER_CLASS = 5
SEPARATED = 0.97
TRUSTED_VAL = 30  # fewer validation examples cannot tell 0.97 from 0.85
FEW_PER_CLASS = 20
ENOUGH_TO_ADAPT = 50
FAR_PAD = 1.5
LOW_CONFIDENCE = 0.35
CLOSE = 0.01  # probe accuracies this close are reported as a tie


@dataclass
class Facts:
    modality: str  # image | text
    num_classes: int
    min_train_per_class: int  # training examples in the smallest class
    median_train_per_class: float
    n_val: int  # validation examples behind the probe accuracy
    ranked: list[RankRow]  # best LogME first (as ``rank`` returns them)
    reference_pad: float | None = None  # proxy A-distance to --reference (None without one)
    source_confidence: float | None = None  # mean max softmax of the source head on the target


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
    """How candidates are compared: validation probe accuracy, then LogME."""
    return (row.probe_accuracy, row.logme)


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


def _strategy(facts: Facts, best: RankRow) -> tuple[str, str | None, str]:
    """(strategy, then, reason) by the rules of the module docstring."""
    controls = [r for r in facts.ranked if not r.pretrained]
    if controls and max(_key(r) for r in controls) >= _key(best):
        return "scratch", None, "pretrained features score no better than random ones: transfer does not help here"
    if facts.min_train_per_class < MIN_PER_CLASS:
        return (
            "linear-probe",
            None,
            f"only {facts.min_train_per_class} training example(s) in the smallest class: too few to fine-tune "
            "without overfitting, so keep the backbone frozen",
        )
    if best.probe_accuracy >= SEPARATED and facts.n_val >= TRUSTED_VAL:
        return (
            "linear-probe",
            None,
            f"the features already separate the classes (probe {best.probe_accuracy:.3f} on validation): "
            "fine-tuning has little left to win",
        )
    if facts.median_train_per_class <= FEW_PER_CLASS:
        return (
            "linear-probe",
            "lp-ft",
            f"few examples per class ({facts.median_train_per_class:g}): start with a linear probe, then "
            "lp-ft if you can afford it (it starts from the probe, so it cannot do much worse)",
        )
    preferred = get_modality(facts.modality).fine_tune_advice
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
        f"{best.backbone} has the best linear-probe accuracy on validation ({best.probe_accuracy:.3f}, "
        f"LogME {best.logme:.3f}) of {len(pretrained)} pretrained candidates"
    ]
    close = [r for r in ordered[1:] if best.probe_accuracy - r.probe_accuracy <= CLOSE]
    if close:
        reasons.append(
            f"{', '.join(r.backbone for r in close)} probe(s) within {CLOSE:.0%} of it: on a small validation "
            "split that is within noise, so prefer the cheaper one if speed matters"
        )
    strategy, then, why = _strategy(facts, best)
    reasons.insert(0, why)
    summary = {k: v for k, v in asdict(facts).items() if k != "ranked"}
    return Advice(best.backbone, strategy, reasons, then, summary)


def gather_facts(
    cfg: RunConfig,
    ranked: list[RankRow],
    data: tuple[Dataset, dict[str, np.ndarray]],
    reference: Dataset | None = None,
) -> Facts:
    """The facts about prepared ``data`` given its rank table; ``reference`` (a dataset sampled from
    the pretraining domain) adds the proxy A-distance between it and the target, through the best
    pretrained backbone's features."""
    images, splits = data
    counts = np.bincount(images.targets[splits["train"]], minlength=len(images.labels))
    best = max((r for r in ranked if r.pretrained), key=_key)
    pad = None
    if reference is not None:
        cand = parse_candidates(best.backbone, images.modality)[0]
        runtime = resolve_runtime(cfg.train)
        fr = candidate_features(cand, reference, cfg, runtime, SkipLog(), reference.fingerprint())
        # the rows rank read, so the target's features come from the cache
        ft = candidate_features(cand, images, cfg, runtime, SkipLog(), images.fingerprint(), ranked_examples(splits))
        pad, _ = proxy_a_distance(fr.features[fr.valid], ft.features[ft.valid], seed=cfg.data.seed)
    return Facts(
        modality=images.modality,
        num_classes=len(images.labels),
        min_train_per_class=int(counts.min()),
        median_train_per_class=float(np.median(counts)),
        n_val=len(splits["val"]),
        ranked=ranked,
        reference_pad=pad,
        source_confidence=best.source_confidence,
    )
