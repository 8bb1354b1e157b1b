import pytest
from torch import nn

from headstart.backbones import get_backbone, list_backbones
from headstart.backbones.layers import layer_groups, module_owners
from headstart.modalities import create_model


@pytest.mark.parametrize("name", [s.name for s in list_backbones() if s.modality == "image"])
def test_groups_cover_every_parameter_exactly_once(name: str) -> None:
    model, _ = create_model(get_backbone(name), num_classes=4, pretrained=False)
    groups = layer_groups(model)
    names = [p for g in groups for p in g.params]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert len(names) == len(set(names))
    assert [g.name for g in groups] == ["stem"] + [f"block.{i}" for i in range(len(groups) - 2)] + ["head"]
    assert groups[-1].params == ("classifier.weight", "classifier.bias")
    assert groups[0].params[0] == "conv_stem.weight"  # input side first


def test_module_owners_map_batchnorm_layers() -> None:
    model, _ = create_model(get_backbone("mobilenet_v2"), num_classes=2, pretrained=False)
    mg = module_owners(model, layer_groups(model))
    assert mg["bn1"] == "stem" and mg["classifier"] == "head" and mg["blocks.3.0.bn1"] == "block.3"


def test_models_without_group_matcher_fall_back_to_child_order() -> None:
    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3)
            self.body = nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4))
            self.fc = nn.Linear(4, 2)

        def get_classifier(self) -> nn.Module:
            return self.fc

    groups = layer_groups(Plain())
    assert [g.name for g in groups] == ["stem", "body", "head"]
    assert groups[1].params == ("body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias")
