"""The modality registry: data, backbones, recipes and predict inputs are dispatched by asking plug-ins."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from headstart.backbones import get_backbone
from headstart.backbones.audio_recipe import AISFX_RECIPE, RESEMBLYZER_RECIPE
from headstart.backbones.mfcc import MfccRecipe
from headstart.backbones.recipe import DEFAULT_RECIPE
from headstart.backbones.text import TextRecipe
from headstart.backbones.tfidf import TfidfRecipe
from headstart.config import DataConfig
from headstart.data import ImageSet
from headstart.data.dataset import load_data
from headstart.errors import HeadstartError
from headstart.modalities import (
    MODALITIES,
    check_modality,
    get_modality,
    known_recipe_kinds,
    modality_of_source,
    recipe_kind,
    saved_recipe_kind,
)
from headstart.modalities.image import IMAGE


def test_unknown_modality_lists_the_known_ones() -> None:
    with pytest.raises(HeadstartError, match=r"unknown modality 'imgae'.*image.*text"):
        get_modality("imgae")


def test_every_recipe_kind_reads_back_what_it_saved(tmp_path: Path) -> None:
    (tmp_path / "vocabulary.txt").write_text("defect\ncrack\n")
    recipes = [
        DEFAULT_RECIPE,
        TextRecipe("tok", 128, "mean", True, 30522),
        TfidfRecipe(vocabulary=("defect", "crack")),
        AISFX_RECIPE,
        RESEMBLYZER_RECIPE,
        MfccRecipe.from_audio(RESEMBLYZER_RECIPE).with_stats(np.zeros(80), np.ones(80)),
    ]
    assert known_recipe_kinds() == ["audio", "image", "mfcc", "text", "tfidf"]
    for recipe in recipes:
        saved = recipe.to_dict()
        assert saved_recipe_kind(saved) == recipe.kind
        back = recipe_kind(saved["kind"]).read(saved, tmp_path)
        assert back.to_dict() == {
            **saved,
            **({"tokenizer": str(tmp_path / "encoder")} if recipe.kind == "text" else {}),
        }
    assert saved_recipe_kind({"modality": "tfidf", "ngram_max": 2}) == "tfidf"  # runs saved before `kind`
    assert saved_recipe_kind({"input_size": 224}) == "image"


def test_text_and_image_sources_are_claimed_by_their_modality(tmp_path: Path, elpv_folder: Path) -> None:
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\ngreat product,pos\nawful,neg\n")
    assert modality_of_source(str(csv), DataConfig()).name == "text"
    assert modality_of_source(str(elpv_folder), DataConfig()).name == "image"
    assert modality_of_source("builtin:tweets", DataConfig()).name == "text"


def test_data_and_backbone_of_different_modalities_are_refused(elpv_folder: Path) -> None:
    images = load_data(str(elpv_folder))
    with pytest.raises(
        HeadstartError, match=r"holds image data but backbone 'minilm' is a text model; pass --backbone"
    ):
        check_modality(images, get_backbone("minilm"))
    check_modality(images, get_backbone("mobilenet_v2"))  # same modality: nothing to say


def test_a_new_modality_plugs_in_without_touching_the_pipeline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A plug-in that claims `.npz` files of images: load_data reads it through the registry alone."""
    arrays = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    source = tmp_path / "cells.npz"
    np.savez(source, x=arrays)

    def load(src: str, cfg: DataConfig, empty_labels: bool) -> ImageSet:
        x = np.load(src)["x"]
        return ImageSet(src, [f"a{i}" for i in range(len(x))], np.array([0, 1, 0, 1]), ["a", "b"], arrays=x)

    npz = dataclasses.replace(IMAGE, name="npz", claims=lambda s, c: s.endswith(".npz"), load=load, fallback=False)
    monkeypatch.setitem(MODALITIES, "npz", npz)  # what register_modality does, undone after the test
    loaded = load_data(str(source))
    assert loaded.source == str(source) and len(loaded) == 4 and loaded.labels == ["a", "b"]


def test_predict_inputs_come_from_the_runs_modality(tmp_path: Path) -> None:
    lines = tmp_path / "texts.txt"
    lines.write_text("first text\n\nsecond text\n")
    assert get_modality("text").cli_inputs([str(lines)], ["typed"]) == ["typed", "first text", "second text"]
    with pytest.raises(HeadstartError, match="--text is for text runs"):
        get_modality("image").cli_inputs([], ["a text"])
    with pytest.raises(HeadstartError, match="pass --text"):
        get_modality("text").cli_inputs([], [])


def test_each_recipe_kind_turns_raw_inputs_into_model_inputs() -> None:
    """``Model.transform`` is the recipe kind's: an image recipe's eval transform, a TF-IDF vocabulary's counts."""
    import torch

    image = recipe_kind(DEFAULT_RECIPE).transform(DEFAULT_RECIPE)(torch.zeros(3, 300, 400, dtype=torch.uint8))
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32
    tfidf = TfidfRecipe(ngram_max=1, vocabulary=("crack", "defect"))
    counts = recipe_kind(tfidf).transform(tfidf)(["crack crack", "no defect here"])
    assert counts.toarray().tolist() == [[2, 0], [0, 1]]
