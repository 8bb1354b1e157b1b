"""Each strategy on a small real subset: which parameters change, BN policy, held-out metrics."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from headstart import runner
from headstart.artifacts import load_run
from headstart.backbones import get_backbone
from headstart.config import RunConfig, load_config
from headstart.data import SkipLog
from headstart.engine import resolve_runtime
from headstart.engine.train import Trainer
from headstart.errors import HeadstartError
from headstart.modalities import create_model, resolve_recipe
from headstart.strategies import get_strategy


def _with(cfg: RunConfig, name: str, **strategy: object) -> RunConfig:
    return dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, name=name, **strategy))


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().float() for k, v in model.state_dict().items()}


def _trainer(cfg: RunConfig) -> Trainer:
    data = runner.prepare_data(cfg)
    spec = get_backbone(cfg.model.backbone)
    cfg = runner.resolve_config(cfg, spec)
    strategy = get_strategy(cfg)
    model, ckpt = create_model(spec, len(data[0].labels), pretrained=strategy.pretrained)
    recipe = resolve_recipe(ckpt, cfg.preprocess)
    return Trainer(model, strategy, *data, recipe, cfg, resolve_runtime(cfg.train), SkipLog())


def _one_step(trainer: Trainer) -> tuple[dict, dict]:
    trainer.train_mode()
    batch = next(iter(trainer.loader))
    before = _state(trainer.model)
    trainer.train_step(batch)
    return before, _state(trainer.model)


@pytest.mark.parametrize(
    ("name", "extra", "expected"),
    [
        ("finetune", {}, "all"),
        ("scratch", {}, "all"),
        ("lp-ft", {}, "all"),
        ("partial", {"train_groups": 3}, {"block.5", "block.6", "head"}),
        ("partial", {"groups": ["block.2", "head"]}, {"block.2", "head"}),
        ("progressive", {}, {"head"}),
        ("plateau", {}, {"head"}),
    ],
)
def test_one_step_changes_exactly_the_trainable_groups(
    tiny_config: RunConfig, name: str, extra: dict, expected: object
) -> None:
    trainer = _trainer(_with(tiny_config, name, **extra))
    before, after = _one_step(trainer)
    names = {g.name for g in trainer.groups} if expected == "all" else expected
    for g in trainer.groups:
        changed = [p for p in g.params if not torch.equal(before[p], after[p])]
        if g.name in names:
            assert changed, f"{name}: group {g.name} should have changed"
        else:
            assert not changed, f"{name}: frozen group {g.name} changed: {changed[:3]}"


def test_frozen_groups_keep_bn_statistics_even_with_bn_train(tiny_config: RunConfig) -> None:
    trainer = _trainer(_with(tiny_config, "partial", train_groups=2, bn="train"))
    before, after = _one_step(trainer)
    assert torch.equal(before["bn1.running_mean"], after["bn1.running_mean"])  # stem: frozen
    assert torch.equal(before["blocks.3.0.bn1.running_var"], after["blocks.3.0.bn1.running_var"])
    assert not torch.equal(before["bn2.running_mean"], after["bn2.running_mean"])  # block.6: trainable


def test_bn_frozen_keeps_all_statistics(tiny_config: RunConfig) -> None:
    trainer = _trainer(_with(tiny_config, "finetune", bn="frozen"))
    before, after = _one_step(trainer)
    stats = [k for k in before if "running_" in k]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert not torch.equal(before["bn1.weight"], after["bn1.weight"])  # affine parameters still learn


def test_frozen_prefix_builds_no_graph(tiny_config: RunConfig) -> None:
    trainer = _trainer(_with(tiny_config, "partial", train_groups=1))
    trainer.train_mode()
    batch = next(iter(trainer.loader))
    feats = trainer.model.forward_features(batch.x)
    assert not feats.requires_grad  # nothing below the head records autograd history


def test_linear_probe_only_changes_the_head(tiny_config: RunConfig, tmp_path: Path) -> None:
    summary = runner.train(_with(tiny_config, "linear-probe"), tmp_path / "lp")
    after = _state(load_run(summary.out).model)
    ref = _state(create_model(get_backbone("efficientnet_lite0"), num_classes=2)[0])
    assert all(torch.equal(ref[k], after[k]) for k in ref if not k.startswith("classifier"))
    assert summary.trainable_params == 2 * 1280 + 2 and summary.feature_cache_hit is False


def test_progressive_unfreezes_during_a_short_run(tiny_config: RunConfig, tmp_path: Path) -> None:
    cfg = dataclasses.replace(_with(tiny_config, "progressive"), train=dataclasses.replace(tiny_config.train, epochs=2))
    summary = runner.train(cfg, tmp_path / "prog")
    history = [json.loads(line) for line in (summary.out / "history.jsonl").read_text().splitlines()]
    events = [e for h in history for e in h["events"]]
    assert "unfroze block.6" in events and "unfroze stem" in events
    assert history[-1]["trainable_groups"][0] == "stem"
    assert history[0]["trainable_params"] <= history[-1]["trainable_params"]


def test_progressive_unfreezes_only_as_deep_as_unfreeze_depth(tiny_config: RunConfig, tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        _with(tiny_config, "progressive", unfreeze_depth=2), train=dataclasses.replace(tiny_config.train, epochs=2)
    )
    summary = runner.train(cfg, tmp_path / "prog")
    history = [json.loads(line) for line in (summary.out / "history.jsonl").read_text().splitlines()]
    assert [e for h in history for e in h["events"]] == ["unfroze block.6", "unfroze block.5"]
    assert history[-1]["trainable_groups"] == ["block.5", "block.6", "head"]
    after = _state(load_run(summary.out).model)
    ref = _state(create_model(get_backbone("efficientnet_lite0"), num_classes=2)[0])
    below = [k for k in ref if k.startswith(("conv_stem", "bn1", "blocks.0", "blocks.1", "blocks.4."))]
    assert below and all(torch.equal(ref[k], after[k]) for k in below)  # never unfrozen: the pretrained weights
    assert not torch.equal(ref["blocks.6.0.conv_pwl.weight"], after["blocks.6.0.conv_pwl.weight"])


def test_lp_ft_starts_from_the_probe_head(tiny_config: RunConfig, tmp_path: Path) -> None:
    summary = runner.train(_with(tiny_config, "lp-ft"), tmp_path / "lpft")
    manifest = json.loads((summary.out / "headstart.json").read_text())
    assert 0.25 <= manifest["lp_ft_temperature"] <= 8.0


def test_scratch_starts_from_random_weights(tiny_config: RunConfig) -> None:
    strategy = get_strategy(_with(tiny_config, "scratch"))
    assert strategy.pretrained is False and strategy.backbone_lr_factor() == 1.0 and strategy.bn_policy() == "train"


@pytest.mark.parametrize("name", ["linear-probe", "finetune", "scratch"])
def test_metrics_are_on_the_held_out_test_split(tiny_config: RunConfig, tmp_path: Path, name: str) -> None:
    summary = runner.train(_with(tiny_config, name), tmp_path / name)
    splits = json.loads((summary.out / "splits.json").read_text())
    assert not set(splits["test"]) & (set(splits["train"]) | set(splits["val"]))
    assert summary.metrics["n"] == len(splits["test"]) > 0
    assert sum(map(sum, summary.metrics["confusion_matrix"])) == len(splits["test"])


def test_same_seed_gives_the_same_model(tiny_config: RunConfig, tmp_path: Path) -> None:
    cfg = _with(tiny_config, "finetune")
    a = _state(load_run(runner.train(cfg, tmp_path / "a").out).model)
    b = _state(load_run(runner.train(cfg, tmp_path / "b").out).model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_strategy_and_group(tiny_config: RunConfig) -> None:
    with pytest.raises(HeadstartError, match="unknown strategy 'magic'; known: .*linear-probe"):
        get_strategy(_with(tiny_config, "magic"))
    with pytest.raises(HeadstartError, match="unknown group.*block.99"):
        _trainer(_with(tiny_config, "partial", groups=["block.99"]))


def test_plan_rows_for_progressive(elpv_folder: Path) -> None:
    from headstart.strategies.plan import plan_rows

    cfg = load_config(None, [f"data.source={elpv_folder}", "strategy.name=progressive", "train.epochs=2"])
    cfg = runner.resolve_config(cfg, get_backbone("efficientnet_lite0"))
    model, _ = create_model(get_backbone("efficientnet_lite0"), 2, pretrained=False)
    rows = plan_rows(model, get_strategy(cfg), cfg, steps_per_epoch=10)
    by = {r["group"]: r for r in rows}
    assert by["head"]["trainable_from"] == "1" and by["head"]["lr"] == pytest.approx(1e-3)
    assert by["block.6"]["trainable_from"] == "1 (step 1)" and by["stem"]["trainable_from"] == "2 (step 10)"
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in model.parameters())
