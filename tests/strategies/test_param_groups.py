import pytest

from headstart.backbones import create_model, get_backbone
from headstart.strategies import build_param_groups, head_parameter_names


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return create_model(get_backbone("efficientnet_lite0"), num_classes=3)[0]


def test_every_parameter_in_exactly_one_group(model) -> None:  # type: ignore[no-untyped-def]
    groups = build_param_groups(model, 1e-3, 0.1, 0.01)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_learning_rates_and_decay(model) -> None:  # type: ignore[no-untyped-def]
    groups = {g["name"]: g for g in build_param_groups(model, 1e-3, 0.1, 0.01)}
    assert set(groups) == {"backbone", "backbone_no_decay", "head", "head_no_decay"}
    assert groups["head"]["lr"] == pytest.approx(1e-3) and groups["backbone"]["lr"] == pytest.approx(1e-4)
    assert groups["backbone"]["weight_decay"] == 0.01 and groups["backbone_no_decay"]["weight_decay"] == 0.0
    assert all(p.ndim <= 1 for p in groups["backbone_no_decay"]["params"])  # norms and biases
    assert all(p.ndim > 1 for p in groups["backbone"]["params"])
    assert [tuple(p.shape) for p in groups["head"]["params"]] == [(3, 1280)]


def test_head_names(model) -> None:  # type: ignore[no-untyped-def]
    assert head_parameter_names(model) == {"classifier.weight", "classifier.bias"}
