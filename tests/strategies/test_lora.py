"""``lora`` on a small real text subset (tweets, minilm): base weights untouched, exact merge, runs, resume, refusal."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from headstart import runner
from headstart.artifacts import load_run
from headstart.backbones import get_backbone
from headstart.config import RunConfig
from headstart.data import SkipLog
from headstart.engine import resolve_runtime
from headstart.engine.train import Trainer
from headstart.errors import HeadstartError
from headstart.modalities import create_model, resolve_recipe
from headstart.strategies import get_strategy
from headstart.strategies.lora import Lora, default_targets, lora_modules

from ..console import headstart, refused
from ..engine.test_checkpoint import Killed, _kill_after
from .test_strategies import _with


def _prepared(cfg: RunConfig) -> tuple[Trainer, dict[str, torch.Tensor]]:
    """A trainer on a lora-prepared model, and the model's state before the adapters were injected."""
    data = runner.prepare_data(cfg)
    spec = get_backbone(cfg.model.backbone)
    cfg = runner.resolve_config(cfg, spec)
    strategy = get_strategy(cfg)
    model, ckpt = create_model(spec, len(data[0].labels))
    original = {k: v.detach().clone() for k, v in model.state_dict().items()}
    strategy.prepare(model)
    trainer = Trainer(
        model, strategy, *data, resolve_recipe(ckpt, cfg.preprocess), cfg, resolve_runtime(cfg.train), SkipLog()
    )
    return trainer, original


def _steps(trainer: Trainer, n: int) -> None:
    trainer.train_mode()
    for _, batch in zip(range(n), trainer.loader, strict=False):
        trainer.train_step(batch)


def test_only_adapters_and_head_train_and_base_weights_stay_bit_identical(text_config: RunConfig) -> None:
    trainer, original = _prepared(_with(text_config, "lora", lora_rank=4))
    model = trainer.model
    assert sorted({n.rsplit(".", 1)[-1] for n in lora_modules(model)}) == ["query", "value"]  # minilm's default
    grads = {n for n, p in model.named_parameters() if p.requires_grad}
    assert grads and all(".lora_" in n or n.startswith("head.") for n in grads)
    assert {n for n in grads if n.startswith("head.")} == {"head.weight", "head.bias"}
    assert len([n for n in grads if ".lora_" in n]) == 6 * 2 * 2  # 6 layers x (query, value) x (A, B)
    lrs = {g["name"]: g["base_lr"] for g in trainer.optimizer.param_groups}
    assert lrs["layer.5"] == pytest.approx(1e-3 * Lora.default_backbone_lr_factor)  # adapters: lora's own factor

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _steps(trainer, 3)
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == grads  # every adapter and the head moved; nothing else did
    state = model.state_dict()
    for name, value in original.items():  # the pretrained weights, under the names peft gave the adapted layers
        parent, leaf = name.rsplit(".", 1)
        current = state[name] if name in state else state[f"{parent}.base_layer.{leaf}"]
        assert name.startswith("head.") or torch.equal(current, value), name


def test_finish_merges_exactly_into_the_original_layout(text_config: RunConfig) -> None:
    trainer, original = _prepared(_with(text_config, "lora"))
    _steps(trainer, 3)  # lora_B leaves zero: the merge adds a real update
    model = trainer.model.eval()
    batch = next(iter(trainer.loader))
    with torch.no_grad():
        with_adapters = model(trainer.runtime.batch(batch.x))
        trainer.strategy.finish(model)
        merged = model(trainer.runtime.batch(batch.x))
    assert not lora_modules(model) and not hasattr(model, "peft_config")
    assert list(model.state_dict()) == list(original)  # an ordinary model: the backbone's own keys, in order
    assert torch.allclose(with_adapters, merged, atol=1e-5, rtol=0)
    adapted = "encoder.encoder.layer.0.attention.self.query.weight"
    unadapted = "encoder.encoder.layer.0.attention.self.key.weight"
    assert not torch.equal(model.state_dict()[adapted], original[adapted])  # the update went into the weight
    assert torch.equal(model.state_dict()[unadapted], original[unadapted])


@pytest.mark.slow
def test_lora_run_is_an_ordinary_model_for_predict_and_evaluate(tweets_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    plan = headstart("plan", str(tweets_csv), "--backbone", "minilm", "--strategy", "lora")
    assert plan.returncode == 0, plan.stderr
    assert "Trainable parameters at the start: 74,883 of" in " ".join(plan.stdout.split())  # adapters + head
    args = ["--backbone", "minilm", "--strategy", "lora", "--epochs", "1", "--set", "strategy.lora_rank=4"]
    trained = headstart("train", str(tweets_csv), *args, "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    manifest = json.loads((out / "headstart.json").read_text())
    assert manifest["config"]["strategy"]["backbone_lr_factor"] == Lora.default_backbone_lr_factor
    run = load_run(out)
    assert not lora_modules(run.model) and not any(".lora_" in k for k in run.model.state_dict())
    metrics = json.loads((out / "metrics.json").read_text())
    evaluated = headstart("evaluate", str(out), "--out", str(tmp_path / "m.json"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((tmp_path / "m.json").read_text())["confusion_matrix"] == metrics["confusion_matrix"]
    predicted = headstart("predict", str(out), "--text", "my bag is lost and nobody answers", "--format", "json")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)[0]["label"] in run.labels


@pytest.mark.slow
def test_lora_resume_matches_uninterrupted(
    text_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = dataclasses.replace(_with(text_config, "lora"), train=dataclasses.replace(text_config.train, epochs=2))
    full = runner.train(cfg, tmp_path / "full")
    _kill_after(monkeypatch, 1)
    with pytest.raises(Killed):
        runner.train(cfg, tmp_path / "cut")
    monkeypatch.undo()
    resumed = runner.resume(tmp_path / "cut")
    assert resumed.metrics == full.metrics
    a, b = load_run(full.out).model.state_dict(), load_run(resumed.out).model.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert not any(".lora_" in k for k in a)


def test_convolutional_backbone_is_refused_before_training(elpv_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--backbone", "mobilenet_v2", "--strategy", "lora", "--epochs", "1", "--out", str(out)]
    message = refused(
        headstart("train", str(elpv_folder), *args),
        "backbone 'mobilenet_v2' has none",
        "convolutional backbone",
        "--strategy finetune",
        "strategy.lora_targets=[NAME]",
        "conv_pwl",  # the module names it could adapt
    )
    assert "Traceback" not in message
    assert not (out / "checkpoint").exists() and not (out / "headstart.json").exists()  # no epoch ran
    refused(headstart("plan", str(elpv_folder), "--backbone", "mobilenet_v2", "--strategy", "lora"), "has none")


def test_explicit_targets_are_checked_and_a_vit_gets_its_fused_qkv(text_config: RunConfig) -> None:
    import timm

    assert default_targets(timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=3)) == ["qkv"]
    model, _ = create_model(get_backbone("minilm"), 3, pretrained=False)
    with pytest.raises(HeadstartError, match="names no adaptable module: nope; .* query"):
        Lora(_with(text_config, "lora", lora_targets=["query", "nope"])).prepare(model)
    with pytest.raises(HeadstartError, match="matches the classification head"):
        Lora(_with(text_config, "lora", lora_targets=["head"])).prepare(model)
