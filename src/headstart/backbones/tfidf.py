"""The TF-IDF "backbone" of the text ``scratch`` baseline: its recipe (how text becomes a TF-IDF vector)
and its model (idf weights + linear head, a torch module so it is saved, loaded and used for ``predict``
like every other run). It is fitted by :func:`headstart.strategies.tfidf.fit_tfidf`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import CountVectorizer

__all__ = ["TfidfRecipe", "TfidfClassifier"]


@dataclass(frozen=True)
class TfidfRecipe:
    """How text becomes a TF-IDF vector (the vocabulary itself is saved beside the run's weights)."""

    kind: ClassVar[str] = "tfidf"
    modality: ClassVar[str] = "text"  # it reads texts
    ngram_max: int = 2  # word n-grams 1 .. ngram_max
    min_df: int = 2  # terms in fewer training texts are dropped
    max_features: int = 50_000  # vocabulary cap (most frequent terms)
    lowercase: bool = True
    vocabulary: tuple[str, ...] = field(default=(), compare=False, repr=False)  # fitted terms, in feature order

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "vocabulary"}  # the terms go to vocabulary.txt
        return {"kind": self.kind, "modality": self.modality, **d, "vocabulary_size": len(self.vocabulary)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], vocabulary: Sequence[str] = ()) -> TfidfRecipe:
        return cls(
            int(d["ngram_max"]), int(d["min_df"]), int(d["max_features"]), bool(d["lowercase"]), tuple(vocabulary)
        )

    def check_batch(self, x: Any) -> str | None:
        return None

    def counter(self) -> CountVectorizer:
        """Term counts over the fitted vocabulary (same tokenization as the fitted vectorizer)."""
        from sklearn.feature_extraction.text import CountVectorizer

        return CountVectorizer(
            vocabulary={t: i for i, t in enumerate(self.vocabulary)},
            ngram_range=(1, self.ngram_max),
            lowercase=self.lowercase,
        )


class TfidfClassifier(nn.Module):
    """Term counts (B, V) -> sublinear tf x idf, L2-normalized (B, V) -> linear head (B, K)."""

    def __init__(self, vocabulary: Sequence[str], num_classes: int):
        super().__init__()
        self.vocabulary = list(vocabulary)
        self.idf: torch.Tensor
        self.register_buffer("idf", torch.ones(len(self.vocabulary)))
        self.head = nn.Linear(len(self.vocabulary), num_classes)
        self.num_features = len(self.vocabulary)

    def forward_features(self, counts: torch.Tensor) -> torch.Tensor:
        counts = counts.float()
        tf = torch.where(counts > 0, 1.0 + torch.log(counts.clamp(min=1.0)), torch.zeros_like(counts))
        return F.normalize(tf * self.idf, dim=-1)

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return feats if pre_logits else self.head(feats)

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(counts))

    def get_classifier(self) -> nn.Module:
        return self.head
