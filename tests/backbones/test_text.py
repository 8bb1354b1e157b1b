import logging

import numpy as np
import pytest
import torch

from headstart.backbones import get_backbone
from headstart.backbones.layers import layer_groups
from headstart.backbones.text import TextClassifier, TextRecipe
from headstart.config import PreprocessConfig
from headstart.data.tokens import make_text_loader
from headstart.errors import HeadstartError
from headstart.modalities import create_model, resolve_recipe

PAIRS = [
    ("A man is playing a guitar.", "Someone is strumming a guitar.", "The central bank raised interest rates."),
    ("The cat sleeps on the sofa.", "A kitten is napping on the couch.", "Quarterly earnings beat expectations."),
    ("It is raining heavily today.", "There is a lot of rain today.", "He scored a goal in the final minute."),
]


def _embed(model: TextClassifier, recipe: TextRecipe, texts: list[str]) -> torch.Tensor:
    loader = make_text_loader(texts, np.zeros(len(texts), dtype=np.int64), np.arange(len(texts)), recipe, 16)
    out = torch.zeros(len(texts), model.num_features)
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            out[batch.index] = model.forward_features(batch.x)
    return out


@pytest.fixture(scope="module")
def minilm() -> tuple[TextClassifier, TextRecipe]:
    model, recipe = create_model(get_backbone("minilm"), num_classes=3)
    assert isinstance(model, TextClassifier) and isinstance(recipe, TextRecipe)
    return model, recipe


def _paraphrases_closer(model: TextClassifier, recipe: TextRecipe) -> None:
    emb = _embed(model, recipe, [t for triple in PAIRS for t in triple])
    for i in range(len(PAIRS)):
        a, para, other = emb[3 * i], emb[3 * i + 1], emb[3 * i + 2]
        cos = torch.nn.functional.cosine_similarity
        assert cos(a, para, dim=0) > cos(a, other, dim=0) + 0.3


def test_minilm_loads_offline_and_ranks_paraphrases(minilm: tuple[TextClassifier, TextRecipe]) -> None:
    model, recipe = minilm
    assert recipe.max_length == 256 and recipe.pooling == "mean" and recipe.normalize  # sentence-transformers files
    assert model.num_features == 384 and sum(p.numel() for p in model.encoder.parameters()) > 22_000_000
    _paraphrases_closer(model, recipe)


@pytest.mark.slow
def test_mpnet_unpacks_loads_offline_and_ranks_paraphrases() -> None:
    model, recipe = create_model(get_backbone("mpnet"), num_classes=2)
    assert isinstance(model, TextClassifier) and isinstance(recipe, TextRecipe)
    assert model.num_features == 768 and recipe.max_length == 384 and recipe.pooling == "mean"
    assert len([g for g in layer_groups(model) if g.name.startswith("layer.")]) == 12
    _paraphrases_closer(model, recipe)


def test_padding_does_not_change_the_embedding(minilm: tuple[TextClassifier, TextRecipe]) -> None:
    model, recipe = minilm
    short = "Good movie."
    alone = _embed(model, recipe, [short])[0]
    padded = _embed(model, recipe, [short, "a much longer sentence that forces padding of the short one " * 3])[0]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_text_groups_embeddings_layers_head(minilm: tuple[TextClassifier, TextRecipe]) -> None:
    model, _ = minilm
    groups = layer_groups(model)
    assert [g.name for g in groups] == ["embeddings"] + [f"layer.{i}" for i in range(6)] + ["head"]
    names = [p for g in groups for p in g.params]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters()) and len(names) == len(set(names))
    assert all(".layer.3." in p for p in groups[4].params)
    assert groups[-1].params == ("head.weight", "head.bias")


def test_overrides_warn_preprocessing_mismatch(
    minilm: tuple[TextClassifier, TextRecipe], caplog: pytest.LogCaptureFixture
) -> None:
    _, recipe = minilm
    with caplog.at_level(logging.WARNING):
        resolved = resolve_recipe(recipe, PreprocessConfig(max_length=64, pooling="cls"))
    assert (resolved.max_length, resolved.pooling) == (64, "cls")
    text = caplog.text
    assert "preprocessing mismatch" in text and "max_length=64" in text and "pooling=mean" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert resolve_recipe(recipe, PreprocessConfig(max_length=256)) == recipe
    assert "mismatch" not in caplog.text


def test_truncation_is_counted(minilm: tuple[TextClassifier, TextRecipe]) -> None:
    from dataclasses import replace

    from headstart.data.tokens import tokenize

    recipe = replace(minilm[1], max_length=16)
    tokens = tokenize(["short text", "word " * 40, "another " * 14, "another " * 13], recipe)
    # 14 words + [CLS] + [SEP] = 16 tokens fits exactly; 40 words and 15 do not
    assert tokens.truncated == 1 and list(tokens.lengths()) == [4, 16, 16, 15]


def test_foreign_tokenizer_is_caught(minilm: tuple[TextClassifier, TextRecipe]) -> None:
    _, recipe = minilm
    with pytest.raises(HeadstartError, match="preprocessing mismatch.*does not belong"):
        recipe.check_batch({"input_ids": torch.tensor([[101, 50_000, 102]]), "attention_mask": torch.ones(1, 3)})
    assert (
        recipe.check_batch({"input_ids": torch.tensor([[101, 2000, 102]]), "attention_mask": torch.ones(1, 3)}) is None
    )


def test_hf_backbones_offline_error_says_what_to_do() -> None:
    spec = get_backbone("hf:some-org/not-a-cached-model")
    assert spec.modality == "text"
    with pytest.raises(HeadstartError, match="local folder"):
        create_model(spec, num_classes=2)


def test_hf_folder_loads_like_the_catalog(minilm: tuple[TextClassifier, TextRecipe]) -> None:
    from headstart.backbones.packaged import minilm_path

    model, recipe = create_model(get_backbone(f"hf:{minilm_path()}"), num_classes=3)
    assert recipe.pooling == "mean" and recipe.max_length == 256
    assert torch.equal(
        model.state_dict()["encoder.embeddings.word_embeddings.weight"],
        minilm[0].state_dict()["encoder.embeddings.word_embeddings.weight"],
    )
