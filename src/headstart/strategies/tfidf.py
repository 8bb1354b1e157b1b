"""The text ``scratch`` baseline: TF-IDF + logistic regression, the no-pretraining model users try first.

The vectorizer (word 1-2 grams, sublinear tf, L2 norm) and the L2-regularized logistic regression
come from scikit-learn; C is chosen on validation. The fitted model is then held as a small torch
module (:class:`~headstart.backbones.tfidf.TfidfClassifier`: idf weights + linear head, vocabulary
beside it), so it is saved, evaluated and used by ``predict`` through the same run directory and
inference path as every other run, without pickling a scikit-learn object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from headstart.backbones.tfidf import TfidfClassifier, TfidfRecipe
from headstart.tasks.base import ProbeResult
from headstart.tasks.sparse_heads import logistic_head

__all__ = ["TfidfFit", "fit_tfidf"]

logger = logging.getLogger(__name__)


@dataclass
class TfidfFit:
    model: TfidfClassifier
    recipe: TfidfRecipe  # with the fitted vocabulary
    C: float  # the inverse regularization strength chosen on validation
    history: list[dict[str, float]]  # the validation score per C tried


SparseHead = Callable[[Any, np.ndarray, Any, np.ndarray], ProbeResult]  # (x_train, y_train, x_val, y_val) -> head


def fit_tfidf(
    train_texts: Sequence[str],
    y_train: np.ndarray,
    val_texts: Sequence[str],
    y_val: np.ndarray,
    num_outputs: int,
    head: SparseHead | None = None,
    recipe: TfidfRecipe | None = None,
) -> TfidfFit:
    """Fit the vectorizer on the training texts, then the task's linear ``head`` on the sparse TF-IDF rows
    (default: multinomial logistic regression over ``num_outputs`` classes, C chosen on validation)."""
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
    if head is None:
        fit = logistic_head(x_train, y_train, x_val, y_val, num_outputs)
    else:
        fit = head(x_train, y_train, x_val, y_val)
    vocabulary = [t for t, _ in sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])]
    model = TfidfClassifier(vocabulary, num_outputs)
    with torch.no_grad():
        model.idf.copy_(torch.from_numpy(vec.idf_.astype(np.float32)))
        model.head.weight.copy_(torch.from_numpy(fit.weight.astype(np.float32)))
        model.head.bias.copy_(torch.from_numpy(fit.bias.astype(np.float32)))
    logger.info("tf-idf: %d terms, C=%g", len(vocabulary), fit.C)
    return TfidfFit(model, replace(recipe, vocabulary=tuple(vocabulary)), float(fit.C), fit.history)
