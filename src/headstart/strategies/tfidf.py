"""The text ``scratch`` baseline: TF-IDF + logistic regression, the no-pretraining model users try first.

The vectorizer (word 1-2 grams, sublinear tf, L2 norm) and the L2-regularized logistic regression
come from scikit-learn; C is chosen on validation. The fitted model is then held as a small torch
module (:class:`TfidfClassifier`: idf weights + linear head, vocabulary beside it), so it is saved,
evaluated and used by ``predict`` through the same run directory and inference path as every
other run, without pickling a scikit-learn object.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from torch import nn
from torch.utils.data import DataLoader

from headstart.data.loader import Batch

__all__ = ["TfidfRecipe", "TfidfClassifier", "TfidfFit", "fit_tfidf", "make_tfidf_loader", "VOCABULARY_FILE"]

logger = logging.getLogger(__name__)

VOCABULARY_FILE = "vocabulary.txt"


@dataclass(frozen=True)
class TfidfRecipe:
    """How text becomes a TF-IDF vector (the vocabulary itself is saved beside the run's weights)."""

    modality: ClassVar[str] = "tfidf"
    ngram_max: int = 2  # word n-grams 1 .. ngram_max
    min_df: int = 2  # terms in fewer training texts are dropped
    max_features: int = 50_000  # vocabulary cap (most frequent terms)
    lowercase: bool = True
    vocabulary: tuple[str, ...] = field(default=(), compare=False, repr=False)  # fitted terms, in feature order

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "vocabulary"}  # the terms go to vocabulary.txt
        return {"modality": "tfidf", **d, "vocabulary_size": len(self.vocabulary)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], vocabulary: Sequence[str] = ()) -> TfidfRecipe:
        return cls(
            int(d["ngram_max"]), int(d["min_df"]), int(d["max_features"]), bool(d["lowercase"]), tuple(vocabulary)
        )

    def check_batch(self, x: Any) -> str | None:
        return None

    def counter(self) -> CountVectorizer:
        """Term counts over the fitted vocabulary (same tokenization as the fitted vectorizer)."""
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


@dataclass
class TfidfFit:
    model: TfidfClassifier
    recipe: TfidfRecipe  # with the fitted vocabulary
    C: float  # the inverse regularization strength chosen on validation
    history: list[dict[str, float]]  # val accuracy per C tried


def fit_tfidf(
    train_texts: Sequence[str],
    y_train: np.ndarray,
    val_texts: Sequence[str],
    y_val: np.ndarray,
    num_classes: int,
    cs: Sequence[float] = (0.3, 1.0, 3.0, 10.0, 30.0),
    recipe: TfidfRecipe | None = None,
) -> TfidfFit:
    """Fit the vectorizer on the training texts and pick C on validation (accuracy, then log loss)."""
    recipe = recipe or TfidfRecipe()
    vec = TfidfVectorizer(
        ngram_range=(1, recipe.ngram_max),
        min_df=min(recipe.min_df, max(1, len(train_texts) // 10)),
        max_features=recipe.max_features,
        sublinear_tf=True,
        lowercase=recipe.lowercase,
    )
    x_train = vec.fit_transform(train_texts)
    x_val = vec.transform(val_texts)
    best, history = None, []
    for c in cs:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        acc = float((clf.predict(x_val) == y_val).mean())
        history.append({"C": float(c), "val_accuracy": acc})
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    assert best is not None
    _, c, clf = best
    vocabulary = [t for t, _ in sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])]
    model = TfidfClassifier(vocabulary, num_classes)
    weight, bias = _full_coef(clf, num_classes, len(vocabulary))
    with torch.no_grad():
        model.idf.copy_(torch.from_numpy(vec.idf_.astype(np.float32)))
        model.head.weight.copy_(torch.from_numpy(weight))
        model.head.bias.copy_(torch.from_numpy(bias))
    logger.info("tf-idf: %d terms, C=%g", len(vocabulary), c)
    return TfidfFit(model, replace(recipe, vocabulary=tuple(vocabulary)), float(c), history)


def _full_coef(clf: LogisticRegression, num_classes: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, V) weights and (K,) biases; binary problems become two symmetric rows (same softmax)."""
    coef, intercept = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((num_classes, dim), dtype=np.float32)
    bias = np.full(num_classes, -1e4, dtype=np.float32)  # classes absent from training are never predicted
    weight[clf.classes_] = coef
    bias[clf.classes_] = intercept
    return weight, bias


def make_tfidf_loader(
    texts: Sequence[str],
    targets: np.ndarray,
    index: np.ndarray,
    recipe: TfidfRecipe,
    batch_size: int,
) -> DataLoader:
    """Batches whose ``x`` is the dense (B, V) term-count matrix of the texts at ``index``."""
    counts = sparse.csr_matrix(recipe.counter().transform([texts[i] for i in index]))
    positions = list(range(len(index)))

    def collate(rows: list[int]) -> Batch:
        dense = torch.from_numpy(counts[rows].toarray().astype(np.float32))  # (B, V)
        idx = torch.as_tensor(np.asarray(index)[rows], dtype=torch.long)
        return Batch(dense, torch.as_tensor(np.asarray(targets)[idx.numpy()], dtype=torch.long), idx, [])

    batches = [positions[i : i + batch_size] for i in range(0, len(positions), batch_size)]
    return DataLoader(batches, batch_size=None, collate_fn=collate)  # type: ignore[arg-type]
