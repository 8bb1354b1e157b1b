import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from headstart.backbones.tfidf import TfidfRecipe
from headstart.data import load_texts
from headstart.data.texts import TextSet
from headstart.data.tfidf import make_tfidf_loader
from headstart.strategies.tfidf import fit_tfidf


@pytest.fixture(scope="module")
def tweets() -> TextSet:
    texts = load_texts("builtin:tweets")
    rng = np.random.RandomState(0)
    keep = np.concatenate([rng.permutation(np.flatnonzero(texts.targets == k))[:150] for k in range(3)])
    return texts.subset(np.sort(keep))


def _proba(fit, data: TextSet, index: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = []
    for batch in make_tfidf_loader(data.texts, data.targets, index, fit.recipe, 64):
        with torch.inference_mode():
            out.append(fit.model(batch.x).softmax(-1).numpy())
    return np.concatenate(out)


def test_torch_module_reproduces_the_scikit_learn_pipeline(tweets: TextSet) -> None:
    idx = np.arange(len(tweets))
    train, val = idx[idx % 3 != 0], idx[idx % 3 == 0]
    texts, y = tweets.texts, tweets.targets
    fit = fit_tfidf([texts[i] for i in train], y[train], [texts[i] for i in val], y[val], 3)
    assert fit.C in [h["C"] for h in fit.history] and len(fit.recipe.vocabulary) == fit.model.num_features
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=50_000, sublinear_tf=True)
    xt = vec.fit_transform([texts[i] for i in train])
    clf = LogisticRegression(C=fit.C, max_iter=2000).fit(xt, y[train])
    expected = clf.predict_proba(vec.transform([texts[i] for i in val]))
    np.testing.assert_allclose(_proba(fit, tweets, val), expected, atol=1e-4)


def test_binary_problem_and_recipe_round_trip(tweets: TextSet) -> None:
    keep = np.flatnonzero(tweets.targets != 1)
    data = tweets.subset(keep)
    y = (data.targets == 2).astype(np.int64)
    idx = np.arange(len(data))
    fit = fit_tfidf([data.texts[i] for i in idx[::2]], y[::2], [data.texts[i] for i in idx[1::2]], y[1::2], 2)
    data.targets = y
    proba = _proba(fit, data, idx[1::2])
    assert proba.shape == (len(idx[1::2]), 2) and (proba.argmax(1) == y[1::2]).mean() > 0.6
    again = TfidfRecipe.from_dict(fit.recipe.to_dict(), fit.recipe.vocabulary)
    assert again == fit.recipe and again.vocabulary == fit.recipe.vocabulary
    assert "vocabulary" not in fit.recipe.to_dict() and fit.recipe.to_dict()["vocabulary_size"] > 100
