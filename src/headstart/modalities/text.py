"""The text modality: CSV/TSV/JSONL, folders of .txt files and text builtins; transformers encoders with
their tokenizer; and, for ``scratch``, TF-IDF + logistic regression (the no-pretraining baseline users try
first, better than a randomly initialised transformer on a few hundred texts).

Registered on import (see :mod:`headstart.modalities.base`), with two recipe kinds: ``text`` (an encoder's
tokenizer, max length, pooling) and ``tfidf`` (the fitted vocabulary).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from headstart.artifacts.names import ENCODER_DIR, VOCABULARY
from headstart.backbones.build import create_text_model
from headstart.backbones.recipe import Recipe
from headstart.backbones.text import TextClassifier, TextRecipe, load_encoder, load_tokenizer, resolve_text_recipe
from headstart.backbones.tfidf import TfidfClassifier, TfidfRecipe
from headstart.config import DataConfig, PreprocessConfig
from headstart.errors import HeadstartError
from headstart.modalities.base import Modality, RecipeKind, register_modality, register_recipe_kind

__all__ = ["TEXT", "tfidf_baseline"]


def _claims(source: str, cfg: DataConfig) -> bool:
    from headstart.data.text_sources import is_text_source

    return is_text_source(source, text_column=cfg.text_column)


def _load(source: str, cfg: DataConfig, empty_labels: bool) -> Any:
    from headstart.data.text_sources import load_texts

    return load_texts(source, cfg.text_column, cfg.label_column, empty_labels)


def _resolve(checkpoint: Recipe, overrides: PreprocessConfig) -> Recipe:
    assert isinstance(checkpoint, TextRecipe)
    return resolve_text_recipe(checkpoint, overrides)


def _prepare(model: nn.Module, recipe: Recipe) -> None:
    """The encoder pools and normalizes as the resolved recipe says (``preprocess.pooling``)."""
    assert isinstance(model, TextClassifier) and isinstance(recipe, TextRecipe)
    model.apply_recipe(recipe)


def _eval_loader(data: Any, index: np.ndarray, recipe: Recipe, batch_size: int, num_workers: int) -> DataLoader:
    from headstart.data.tokens import make_text_loader

    return make_text_loader(data.texts, data.targets, index, recipe, batch_size)  # type: ignore[arg-type]


def _train_loader(
    data: Any,
    index: np.ndarray,
    recipe: Recipe,
    preprocess: PreprocessConfig,
    batch_size: int,
    generator: torch.Generator,
    drop_last: bool,
    num_workers: int,
    weights: np.ndarray | None,
) -> DataLoader:
    """Length-bucketed, shuffled batches (tokenized once; padding only to the longest text of a batch)."""
    from headstart.data.tokens import make_text_loader

    return make_text_loader(
        data.texts,
        data.targets,
        index,
        recipe,  # type: ignore[arg-type]
        batch_size,
        shuffle=True,
        generator=generator,
        drop_last=drop_last,
        weights=weights,
    )


def _rebuild_encoder(path: Path, manifest: dict[str, Any], recipe: Recipe, outputs: int) -> nn.Module:
    """The encoder from the run's ``encoder/`` config (random weights: the run's weights are loaded next)."""
    assert isinstance(recipe, TextRecipe)
    encoder = load_encoder(str(path / ENCODER_DIR), pretrained=False)
    return TextClassifier(encoder, outputs, recipe.pooling, recipe.normalize)


def _encoder_files(model: nn.Module, recipe: Recipe) -> tuple[dict[str, str], dict[str, Callable[[Path], None]]]:
    """Text runs carry the encoder's config and tokenizer files, so the run loads without the package."""
    assert isinstance(model, TextClassifier) and isinstance(recipe, TextRecipe)

    def write(folder: Path) -> None:
        model.encoder.config.save_pretrained(folder)  # type: ignore[union-attr,operator]
        load_tokenizer(recipe.tokenizer).save_pretrained(folder)

    return {}, {ENCODER_DIR: write}


def _read_tfidf(d: dict[str, Any], path: Path) -> Recipe:
    from headstart.artifacts.manifest import damaged_run

    file = path / VOCABULARY
    try:
        vocabulary = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise damaged_run(file, f"cannot be read ({exc})") from exc
    return TfidfRecipe.from_dict(d, vocabulary)


def _tfidf_files(model: nn.Module, recipe: Recipe) -> tuple[dict[str, str], dict[str, Callable[[Path], None]]]:
    assert isinstance(model, TfidfClassifier)
    return {VOCABULARY: "".join(t + "\n" for t in model.vocabulary)}, {}


def _tfidf_loader(data: Any, index: np.ndarray, recipe: Recipe, batch_size: int, num_workers: int) -> DataLoader:
    from headstart.data.tfidf import make_tfidf_loader

    return make_tfidf_loader(data.texts, data.targets, index, recipe, batch_size)  # type: ignore[arg-type]


def _no_gradient_training(*args: Any) -> DataLoader:
    raise HeadstartError("a TF-IDF model is fitted in closed form (the text scratch baseline), never by gradients")


def tfidf_baseline(fitter: Any) -> Any:
    """Text ``scratch``: TF-IDF + logistic regression (no pretraining), C chosen on validation."""
    from headstart.strategies.tfidf import fit_tfidf

    data, splits = fitter.data, fitter.splits
    texts, y = data.texts, data.targets
    tr, va = splits["train"], splits["val"]
    task = fitter.run.task  # the task's linear head on the sparse TF-IDF rows
    head = lambda *a: task.sparse_head(*a, data.labels)  # noqa: E731
    outputs = task.num_outputs(data.labels)
    fit = fit_tfidf([texts[i] for i in tr], y[tr], [texts[i] for i in va], y[va], outputs, head)
    params = fit.model.head.weight.numel() + fit.model.head.bias.numel()
    history = [
        {"epoch": 1, **h, "lr": {}, "trainable_params": params, "events": [f"tf-idf C={h['C']:g}"]}
        for h in fit.history
        if h["C"] == fit.C
    ]
    identity = {"name": "tfidf", "architecture": "tfidf", "source": "scikit-learn TfidfVectorizer (no pretraining)"}
    extra = {"backbone": identity, "baseline": "tf-idf + logistic regression (no pretraining)", "tfidf_C": fit.C}
    return fitter.fitted(fit.model, fit.recipe, fit.recipe, history, extra=extra)


def _data_facts(data: Any, recipe: Recipe) -> dict[str, Any]:
    from headstart.data.tokens import text_stats

    return text_stats(data, recipe)


def _predict(run: Any, inputs: Sequence[Any], batch_size: int | None) -> list[dict[str, Any]]:
    from headstart.artifacts.predict import predict_texts

    items = list(inputs)
    bad = [i for i, x in enumerate(items) if not isinstance(x, str)]
    if bad:
        raise HeadstartError(f"this text model takes strings; input {bad[0]} is a {type(items[bad[0]]).__name__}")
    return predict_texts(run, items, batch_size)


def _cli_inputs(files: list[str], texts: list[str]) -> list[Any]:
    """``--text`` values, then the lines of each file given (one text per line)."""
    out = list(texts)
    for f in files:
        try:
            out += [line for line in Path(f).read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise HeadstartError(f"cannot read {f!r} as UTF-8 text with one text per line ({exc})") from exc
    if not out:
        raise HeadstartError('pass --text "..." (repeatable) or a file with one text per line')
    return out


def _tokenizer(recipe: Recipe) -> Callable[..., Any]:
    """Texts -> token ids and attention masks, as the encoder's recipe says."""
    from headstart.data.tokens import tokenize

    return lambda texts: tokenize(list(texts), recipe)  # type: ignore[arg-type]


def _term_counter(recipe: Recipe) -> Callable[..., Any]:
    """Texts -> term counts over the fitted TF-IDF vocabulary."""
    counter = recipe.counter()  # type: ignore[attr-defined]
    return lambda texts: counter.transform(list(texts))


register_recipe_kind(
    RecipeKind(
        name=TextRecipe.kind,
        read=lambda d, path: TextRecipe.from_dict(d, tokenizer=str(path / ENCODER_DIR)),
        rebuild=_rebuild_encoder,
        eval_loader=_eval_loader,
        train_loader=_train_loader,
        run_files=_encoder_files,
        transform=_tokenizer,
    )
)
register_recipe_kind(
    RecipeKind(
        name=TfidfRecipe.kind,
        read=_read_tfidf,
        rebuild=lambda path, manifest, recipe, outputs: TfidfClassifier(recipe.vocabulary, outputs),  # type: ignore[attr-defined]
        eval_loader=_tfidf_loader,
        train_loader=_no_gradient_training,
        run_files=_tfidf_files,
        transform=_term_counter,
    )
)

TEXT = register_modality(
    Modality(
        name="text",
        backbone_hint="minilm, mpnet or hf:<encoder>",
        input_field="text",
        claims=_claims,
        load=_load,
        create_model=create_text_model,
        resolve_recipe=_resolve,
        prepare=_prepare,
        baseline=tfidf_baseline,
        data_facts=_data_facts,
        predict=_predict,
        cli_inputs=_cli_inputs,
        fine_tune_advice=("lp-ft", "text encoders fine-tune best from a fitted head (lp-ft led the tweets bench)"),
    )
)
