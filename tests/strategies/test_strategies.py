"""Each strategy on a small real subset: which parameters change, and metrics on held-out data."""

import dataclasses
from pathlib import Path

import pytest
import torch

from headstart import runner
from headstart.artifacts import load_run
from headstart.backbones import create_model, get_backbone
from headstart.config import RunConfig
from headstart.errors import HeadstartError
from headstart.strategies import get_strategy


def _with(cfg: RunConfig, name: str) -> RunConfig:
    return dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, name=name))


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().float() for k, v in model.state_dict().items()}


def _reference(pretrained: bool) -> dict[str, torch.Tensor]:
    model, _ = create_model(get_backbone("efficientnet_lite0"), num_classes=2, pretrained=pretrained)
    return _state(model)


def _changed(before: dict, after: dict, key: str) -> bool:
    return not torch.allclose(before[key], after[key])


def test_finetune_updates_every_layer_but_keeps_bn_statistics(tiny_config: RunConfig, tmp_path: Path) -> None:
    summary = runner.train(_with(tiny_config, "finetune"), tmp_path / "ft")
    after = _state(load_run(summary.out).model)
    ref = _reference(pretrained=True)
    assert _changed(ref, after, "conv_stem.weight") and _changed(ref, after, "blocks.3.0.conv_pw.weight")
    assert torch.equal(ref["bn1.running_mean"], after["bn1.running_mean"])  # strategy.bn=frozen
    assert summary.trainable_params == sum(
        v.numel() for k, v in after.items() if "running" not in k and "num_batches" not in k
    )


def test_finetune_bn_train_updates_statistics(tiny_config: RunConfig, tmp_path: Path) -> None:
    cfg = _with(tiny_config, "finetune")
    cfg = dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, bn="train"))
    after = _state(load_run(runner.train(cfg, tmp_path / "ft").out).model)
    assert _changed(_reference(pretrained=True), after, "bn1.running_mean")


def test_linear_probe_only_changes_the_head(tiny_config: RunConfig, tmp_path: Path) -> None:
    summary = runner.train(_with(tiny_config, "linear-probe"), tmp_path / "lp")
    after = _state(load_run(summary.out).model)
    ref = _reference(pretrained=True)
    backbone = [k for k in ref if not k.startswith("classifier")]
    assert all(torch.equal(ref[k], after[k]) for k in backbone)
    assert after["classifier.weight"].abs().sum() > 0
    assert summary.trainable_params == 2 * 1280 + 2
    assert summary.feature_cache_hit is False


def test_scratch_starts_from_random_weights(tiny_config: RunConfig, tmp_path: Path) -> None:
    strategy = get_strategy(_with(tiny_config, "scratch"))
    assert strategy.pretrained is False and strategy.backbone_lr_factor() == 1.0
    summary = runner.train(_with(tiny_config, "scratch"), tmp_path / "scratch")
    after = _state(load_run(summary.out).model)
    pretrained = _reference(pretrained=True)
    assert not torch.allclose(pretrained["conv_stem.weight"], after["conv_stem.weight"], atol=1e-2)
    assert _changed(pretrained, after, "bn1.running_mean")


@pytest.mark.parametrize("name", ["linear-probe", "finetune", "scratch"])
def test_metrics_are_on_the_held_out_test_split(tiny_config: RunConfig, tmp_path: Path, name: str) -> None:
    import json

    summary = runner.train(_with(tiny_config, name), tmp_path / name)
    splits = json.loads((summary.out / "splits.json").read_text())
    assert not set(splits["test"]) & (set(splits["train"]) | set(splits["val"]))
    assert summary.metrics["n"] == len(splits["test"]) > 0
    assert sum(map(sum, summary.metrics["confusion_matrix"])) == len(splits["test"])


def test_unknown_strategy(tiny_config: RunConfig) -> None:
    with pytest.raises(HeadstartError, match="unknown strategy 'magic'; known: .*linear-probe"):
        get_strategy(_with(tiny_config, "magic"))


def test_same_seed_gives_the_same_model(tiny_config: RunConfig, tmp_path: Path) -> None:
    cfg = _with(tiny_config, "finetune")
    a = _state(load_run(runner.train(cfg, tmp_path / "a").out).model)
    b = _state(load_run(runner.train(cfg, tmp_path / "b").out).model)
    assert all(torch.equal(a[k], b[k]) for k in a)
