"""The text ``scratch`` baseline: TF-IDF + logistic regression, the no-pretraining model users try first.

The vectorizer (word 1-2 grams, sublinear tf, L2 norm) and the L2-regularized logistic regression
come from scikit-learn; C is chosen on validation. The fitted model is then held as a small torch
module (:class:`~headstart.backbones.tfidf.TfidfClassifier`: idf weights + linear head, vocabulary
beside it), so it is saved, evaluated and used by ``predict`` through the same run directory and
inference path as every other run, without pickling a scikit-learn object.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from headstart.backbones.tfidf import TfidfClassifier, TfidfRecipe

__all__ = ["TfidfFit", "fit_tfidf"]

logger = logging.getLogger(__name__)


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
