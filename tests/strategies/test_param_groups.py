import pytest

from headstart.backbones import get_backbone
from headstart.backbones.layers import layer_groups
from headstart.modalities import create_model
from headstart.strategies import build_param_groups, group_lr, head_parameter_names


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return create_model(get_backbone("efficientnet_lite0"), num_classes=3)[0]


def test_every_parameter_in_exactly_one_optimizer_group(model) -> None:  # type: ignore[no-untyped-def]
    groups = build_param_groups(model, layer_groups(model), 1e-3, 0.1, 0.8, 0.01)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert len({g["name"] for g in groups}) == len(groups)


def test_learning_rates_follow_the_formula(model) -> None:  # type: ignore[no-untyped-def]
    lg = layer_groups(model)
    groups = {g["name"]: g for g in build_param_groups(model, lg, 1e-3, 0.1, 0.5, 0.01)}
    assert groups["head"]["lr"] == pytest.approx(1e-3)
    n = len(lg)
    for i, g in enumerate(lg[:-1]):
        distance = n - 1 - i
        assert groups[g.name]["lr"] == pytest.approx(1e-3 * 0.1 * 0.5**distance)
        assert groups[g.name + "/no_decay"]["lr"] == groups[g.name]["lr"]


def test_layer_decay_lr_increases_with_depth(model) -> None:  # type: ignore[no-untyped-def]
    lg = layer_groups(model)
    lrs = [group_lr(i, len(lg), 1e-3, 0.3, 0.7) for i in range(len(lg))]
    assert all(a < b for a, b in zip(lrs, lrs[1:], strict=False))
    flat = [group_lr(i, len(lg), 1e-3, 0.3, 1.0) for i in range(len(lg) - 1)]
    assert len(set(flat)) == 1  # layer_decay=1: one backbone LR (classic two-rate fine-tuning)


def test_no_weight_decay_on_norms_and_biases(model) -> None:  # type: ignore[no-untyped-def]
    groups = build_param_groups(model, layer_groups(model), 1e-3, 0.1, 1.0, 0.01)
    for g in groups:
        if g["name"].endswith("/no_decay"):
            assert g["weight_decay"] == 0.0 and all(p.ndim <= 1 for p in g["params"])
        else:
            assert g["weight_decay"] == 0.01 and all(p.ndim > 1 for p in g["params"])


def test_head_names(model) -> None:  # type: ignore[no-untyped-def]
    assert head_parameter_names(model) == {"classifier.weight", "classifier.bias"}
