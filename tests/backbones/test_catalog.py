from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import MobileNet_V2_Weights

from headstart.backbones import get_backbone, list_backbones
from headstart.backbones.catalog import describe
from headstart.data import eval_transform
from headstart.errors import HeadstartError
from headstart.modalities import create_model

CATEGORIES = MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]
CATALOG = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2"]
TEXT_CATALOG = ["minilm", "mpnet"]
AUDIO_CATALOG = ["aisfx", "resemblyzer"]


def test_catalog_names() -> None:
    assert [s.name for s in list_backbones()] == CATALOG + TEXT_CATALOG + AUDIO_CATALOG
    assert {s.name for s in list_backbones() if s.modality == "text"} == set(TEXT_CATALOG)
    assert {s.name for s in list_backbones() if s.modality == "audio"} == set(AUDIO_CATALOG)


@pytest.mark.parametrize("name", CATALOG)
def test_packaged_weights_classify_real_photos(name: str, photos: dict) -> None:
    """ImageNet heads with the right recipe put coffee and the cat among the top-5 classes."""
    model, recipe = create_model(get_backbone(name))
    assert recipe == get_backbone(name).recipe
    tf = eval_transform(recipe)
    x = torch.stack([tf(torch.from_numpy(p).permute(2, 0, 1)) for p in photos.values()])
    assert x.shape[-1] == recipe.input_size
    with torch.inference_mode():
        top5 = model.eval()(x).topk(5).indices.tolist()
    coffee, cat = ({CATEGORIES[i] for i in row} for row in top5)
    assert coffee & {"espresso", "cup", "coffee mug"}, coffee
    assert cat & {"tabby", "tiger cat", "Egyptian cat"}, cat


def test_new_head_and_feature_dim() -> None:
    model, _ = create_model(get_backbone("efficientnet_lite0"), num_classes=3)
    assert model.get_classifier().out_features == 3 and model.num_features == 1280


def test_scratch_has_random_weights_but_same_recipe() -> None:
    pre, r1 = create_model(get_backbone("mobilenet_v2"), num_classes=2)
    rnd, r2 = create_model(get_backbone("mobilenet_v2"), num_classes=2, pretrained=False)
    assert r1 == r2
    assert not torch.equal(pre.conv_stem.weight, rnd.conv_stem.weight)


def test_unknown_backbone_lists_choices() -> None:
    with pytest.raises(HeadstartError) as err:
        get_backbone("efnet-lite0")
    assert str(err.value) == (
        "unknown backbone 'efnet-lite0'; did you mean efficientnet_lite0? known: efficientnet_lite0, "
        "efficientnet_lite1, efficientnet_lite2, mobilenet_v2, minilm, mpnet, aisfx, resemblyzer, or timm:<model_name> "
        "for any timm model, or hf:<folder or hub id> for any transformers text or audio encoder"
    )


def test_unknown_timm_model() -> None:
    with pytest.raises(HeadstartError, match="unknown timm model"):
        get_backbone("timm:resnet_does_not_exist")


def test_timm_with_local_weights_file(tmp_path: Path) -> None:
    """timm:<name> --weights FILE loads a safetensors checkpoint by name and takes timm's recipe."""
    src, _ = create_model(get_backbone("mobilenet_v2"))
    f = tmp_path / "mnv2.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(f))
    model, recipe = create_model(get_backbone("timm:mobilenetv2_100", weights=str(f)), num_classes=4)
    assert torch.equal(model.conv_stem.weight, src.conv_stem.weight)
    assert recipe.interpolation == "bicubic" and recipe.mean == (0.485, 0.456, 0.406)


def test_timm_weights_with_wrong_shapes_is_an_error(tmp_path: Path) -> None:
    src, _ = create_model(get_backbone("efficientnet_lite0"))
    f = tmp_path / "lite0.pth"
    torch.save(src.state_dict(), f)
    with pytest.raises(HeadstartError, match="does not match the architecture"):
        create_model(get_backbone("timm:mobilenetv2_100", weights=str(f)))


def test_timm_hub_offline_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HeadstartError, match="needs the internet.*--weights FILE"):
        create_model(get_backbone("timm:resnet18"))


def test_weights_flag_only_for_timm() -> None:
    with pytest.raises(HeadstartError, match="--weights is for timm"):
        get_backbone("efficientnet_lite0", weights="x.pth")


@pytest.mark.slow
@pytest.mark.parametrize("name", CATALOG + TEXT_CATALOG + AUDIO_CATALOG)
def test_static_facts_match_the_real_models(name: str) -> None:
    """`headstart backbones` lists static facts; they must be what the built model says (random weights suffice)."""
    spec = get_backbone(name)
    model, recipe = create_model(spec, num_classes=0, pretrained=False)
    listed = describe(spec)
    assert listed["params"] == sum(p.numel() for p in model.parameters())
    assert listed["feature_dim"] == model.num_features
    assert listed["recipe"] == {k: v for k, v in recipe.to_dict().items() if k != "tokenizer"}


def test_describe_reads_no_model() -> None:
    rows = [describe(spec) for spec in list_backbones()]
    assert [r["name"] for r in rows] == CATALOG + TEXT_CATALOG + AUDIO_CATALOG
    dims = {**dict.fromkeys(CATALOG, 1280), "minilm": 384, "mpnet": 768, "aisfx": 512, "resemblyzer": 256}
    assert {r["name"]: r["feature_dim"] for r in rows} == dims
    by_name = {r["name"]: r for r in rows}
    assert by_name["aisfx"]["recipe"]["sample_rate"] == 44100 and by_name["resemblyzer"]["recipe"]["n_mels"] == 40
    assert by_name["mpnet"]["recipe"] == {
        "kind": "text",
        "modality": "text",
        "max_length": 384,
        "pooling": "mean",
        "normalize": True,
        "vocab_size": 30527,
    }
