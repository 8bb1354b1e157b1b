"""Unsupervised domain adaptation strategies: fine-tuning on the labelled source while reading unlabelled
``--target`` data (:mod:`headstart.engine.adapt` has the losses and AdaBN).

* ``adabn``: ``finetune``, then BatchNorm statistics re-estimated on the target (``strategy.adabn=true``
  adds the same step to any gradient strategy);
* ``dann``: ``finetune`` with a domain classifier behind a gradient-reversal layer;
* ``coral``: ``finetune`` with the CORAL loss between source and target feature statistics.

``strategy.adapt_weight`` scales the domain loss (DANN: the reversal weight at the end of its ramp).
"""

from __future__ import annotations

from headstart.strategies.base import register
from headstart.strategies.finetune import Finetune

__all__ = ["AdaBN", "Coral", "Dann"]


@register
class AdaBN(Finetune):
    """Fine-tune on the source, then re-estimate BatchNorm statistics on the target (Li et al. 2016).

    AdaBN swaps the source domain's statistics for the target's, so the network trains with BatchNorm
    statistics updated on the source (``bn=train``), not ImageNet's frozen ones: with frozen statistics
    the swap would replace ImageNet's statistics, which the trained layers were fitted to (measured:
    bench/README.md, "Domain adaptation")."""

    name = "adabn"

    def adapts_bn(self) -> bool:
        return True

    def bn_policy(self) -> str:
        return "train"


@register
class Dann(Finetune):
    """Domain-adversarial fine-tuning (Ganin & Lempitsky 2015)."""

    name = "dann"
    domain_loss = "dann"


@register
class Coral(Finetune):
    """Fine-tuning with Deep CORAL's second-order alignment (Sun & Saenko 2016)."""

    name = "coral"
    domain_loss = "coral"
