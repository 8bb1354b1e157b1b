import logging

import pytest
import torch

from headstart.backbones import MISMATCH, ImageRecipe, check_input_stats, get_backbone, resolve_recipe
from headstart.backbones.text import TextRecipe
from headstart.config import PreprocessConfig
from headstart.data import eval_transform
from headstart.errors import HeadstartError

LITE0 = get_backbone("efficientnet_lite0").recipe
assert LITE0 is not None


def test_checkpoint_recipe_used_without_overrides(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        r = resolve_recipe(LITE0, PreprocessConfig())
    assert r == LITE0 and r.resize_size == 256
    assert MISMATCH not in caplog.text


def test_override_beats_checkpoint_and_warns_with_both_values(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        r = resolve_recipe(LITE0, PreprocessConfig(input_size=160, mean=[0.485, 0.456, 0.406]))
    assert r.input_size == 160 and r.mean == (0.485, 0.456, 0.406) and r.std == LITE0.std
    assert caplog.text.count(MISMATCH) == 2
    assert "input_size=160" in caplog.text and "input_size=224" in caplog.text
    assert "(0.485, 0.456, 0.406)" in caplog.text and "(0.5, 0.5, 0.5)" in caplog.text


def test_crop_override_is_not_a_mismatch(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        r = resolve_recipe(LITE0, PreprocessConfig(crop_pct=1.0, interpolation="bilinear"))
    assert r.crop_pct == 1.0 and r.interpolation == "bilinear" and MISMATCH not in caplog.text


def test_default_when_checkpoint_has_no_recipe() -> None:
    r = resolve_recipe(None, PreprocessConfig())
    assert r.input_size == 224 and r.mean == (0.485, 0.456, 0.406)


def test_recipe_dict_round_trip() -> None:
    assert ImageRecipe.from_dict(LITE0.to_dict()) == LITE0


def _batch(photos: dict) -> torch.Tensor:
    tf = eval_transform(LITE0)
    return torch.stack([tf(torch.from_numpy(p).permute(2, 0, 1)) for p in photos.values()])


def test_correct_input_passes_the_stats_check(photos: dict, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert check_input_stats(_batch(photos), LITE0) is None
    assert MISMATCH not in caplog.text


def test_unscaled_0_255_input_is_flagged(photos: dict, caplog: pytest.LogCaptureFixture) -> None:
    x = _batch(photos) * 255  # pixels never scaled to [0, 1]
    with caplog.at_level(logging.WARNING):
        msg = check_input_stats(x, LITE0)
    assert msg is not None and MISMATCH in caplog.text and "0..255" in msg


def test_double_normalization_is_flagged(photos: dict) -> None:
    imagenet = ImageRecipe(224, 0.875, "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    x = _batch(photos)  # normalized once with mean=std=0.5 -> [-1, 1]
    twice = (x - torch.tensor(imagenet.mean).view(1, 3, 1, 1)) / torch.tensor(imagenet.std).view(1, 3, 1, 1)
    assert check_input_stats(twice, imagenet) is not None


def test_double_scaling_is_flagged(photos: dict) -> None:
    x = _batch(photos)
    raw = x * 0.5 + 0.5
    squashed = (raw / 255 - 0.5) / 0.5  # /255 applied to data already in [0, 1]
    msg = check_input_stats(squashed, LITE0)
    assert msg is not None and "barely vary" in msg


TEXT = {"tokenizer": "enc", "max_length": 128, "pooling": "mean", "normalize": True, "vocab_size": 30522}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_size": 100000}, "recipe.input_size=100000 must be an integer in 16..2048"),
        ({"input_size": 224.5}, "recipe.input_size=224.5 must be an integer in 16..2048"),
        ({"input_size": True}, "recipe.input_size=True must be an integer in 16..2048"),
        ({"crop_pct": 0.05}, "recipe.crop_pct=0.05 must be a number in [0.1, 1]"),
        ({"crop_pct": float("nan")}, "recipe.crop_pct=nan must be a number in [0.1, 1]"),
        ({"interpolation": "area"}, "recipe.interpolation='area' must be one of bilinear, bicubic, nearest"),
        ({"mean": [0.5, 0.5, "x"]}, "recipe.mean=[0.5, 0.5, 'x'] must be a list of 3 numbers"),
        ({"std": [0.2, -0.1, 0.2]}, "recipe.std=[0.2, -0.1, 0.2] must be a list of 3 numbers > 0"),
        ({"std": None}, "recipe.std=None must be a list of 3 numbers > 0"),
    ],
)
def test_image_recipe_from_a_run_is_checked(changes: dict, message: str) -> None:
    with pytest.raises(HeadstartError) as err:
        ImageRecipe.from_dict(LITE0.to_dict() | changes)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_length": 100000}, "recipe.max_length=100000 must be an integer in 8..8192"),
        ({"max_length": 4}, "recipe.max_length=4 must be an integer in 8..8192"),
        ({"pooling": "max"}, "recipe.pooling='max' must be one of mean, cls"),
        ({"normalize": "yes"}, "recipe.normalize='yes' must be true or false"),
        ({"vocab_size": -1}, "recipe.vocab_size=-1 must be an integer >= 0"),
        ({"tokenizer": ""}, "recipe.tokenizer='' must be a folder or hub id"),
    ],
)
def test_text_recipe_from_a_run_is_checked(changes: dict, message: str) -> None:
    with pytest.raises(HeadstartError) as err:
        TextRecipe.from_dict(TEXT | changes)
    assert str(err.value) == message


def test_text_recipe_round_trip_and_older_runs() -> None:
    recipe = TextRecipe.from_dict(TEXT)
    assert TextRecipe.from_dict(recipe.to_dict()) == recipe and recipe.vocab_size == 30522
    older = {k: v for k, v in TEXT.items() if k != "vocab_size"}  # written before vocab_size was recorded
    assert TextRecipe.from_dict(older, tokenizer="/run/encoder").vocab_size == 0
    with pytest.raises(HeadstartError, match="recipe.pooling is missing; it must be one of mean, cls"):
        TextRecipe.from_dict({k: v for k, v in TEXT.items() if k != "pooling"})
