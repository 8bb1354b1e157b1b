import torch

from headstart.backbones import get_backbone
from headstart.config import PreprocessConfig
from headstart.data import eval_transform, train_transform

RECIPE = get_backbone("mobilenet_v2").recipe
assert RECIPE is not None


def test_eval_transform_grey_to_three_channels_and_normalized() -> None:
    x = torch.full((1, 300, 200), 255, dtype=torch.uint8)
    y = eval_transform(RECIPE)(x)
    assert y.shape == (3, 224, 224) and y.dtype == torch.float32
    expected = (1 - torch.tensor(RECIPE.mean)) / torch.tensor(RECIPE.std)
    assert torch.allclose(y[:, 100, 100], expected, atol=1e-5)


def test_eval_transform_is_deterministic_and_resizes_then_crops() -> None:
    x = torch.randint(0, 256, (3, 256, 320), dtype=torch.uint8)
    tf = eval_transform(RECIPE)
    assert torch.equal(tf(x), tf(x))
    assert RECIPE.resize_size == 256


def test_augmentation_changes_geometry_not_normalization() -> None:
    x = torch.full((3, 300, 300), 128, dtype=torch.uint8)  # constant image: any crop/flip gives the same values
    augment = PreprocessConfig(augment=True)
    aug = train_transform(RECIPE, augment)(x)
    assert torch.allclose(aug, eval_transform(RECIPE)(x), atol=1e-6)
    rnd = torch.randint(0, 256, (3, 300, 300), dtype=torch.uint8)
    torch.manual_seed(0)
    a = train_transform(RECIPE, augment)(rnd)
    b = train_transform(RECIPE, augment)(rnd)
    assert a.shape == b.shape == (3, 224, 224) and not torch.equal(a, b)


def test_no_augment_means_eval_transform() -> None:
    x = torch.randint(0, 256, (3, 300, 300), dtype=torch.uint8)
    assert torch.equal(train_transform(RECIPE, PreprocessConfig(augment=False))(x), eval_transform(RECIPE)(x))
