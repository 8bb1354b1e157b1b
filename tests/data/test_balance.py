import numpy as np
import torch

from headstart.data.balance import class_weights, sample_weights
from headstart.data.images import ImageSet
from headstart.data.loader import make_loader
from headstart.data.tokens import LengthBuckets


def test_class_weights_match_scikit_learn_balanced() -> None:
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 0, 1, 2, 2])
    np.testing.assert_allclose(class_weights(y, 3), compute_class_weight("balanced", classes=np.arange(3), y=y))
    assert class_weights(np.array([0, 0, 2]), 3)[1] == 0.0  # an absent class gets no weight


def _draws(targets: np.ndarray, weights: np.ndarray, epochs: int = 20) -> np.ndarray:
    images = ImageSet(
        "mem",
        [str(i) for i in range(len(targets))],
        targets,
        ["a", "b"],
        arrays=np.zeros((len(targets), 4, 4), dtype=np.uint8),
    )
    loader = make_loader(
        images,
        np.arange(len(targets)),
        lambda x: x.float(),
        16,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
        weights=weights,
    )
    return np.concatenate([b.y.numpy() for _ in range(epochs) for b in loader])


def test_balanced_sampler_draws_classes_equally_often() -> None:
    targets = np.array([0] * 90 + [1] * 10)
    drawn = _draws(targets, sample_weights(targets, 2))
    assert len(drawn) == 20 * 100 and 0.45 < drawn.mean() < 0.55  # class 1 is 10% of the data, ~50% of draws


def test_balanced_length_buckets() -> None:
    targets = np.array([0] * 180 + [1] * 20)
    sampler = LengthBuckets(
        np.arange(200) % 17, 10, True, torch.Generator().manual_seed(1), weights=sample_weights(targets, 2)
    )
    drawn = np.concatenate([targets[b] for _ in range(10) for b in sampler])
    assert 0.42 < drawn.mean() < 0.58 and len(list(sampler)) == len(sampler) == 20
