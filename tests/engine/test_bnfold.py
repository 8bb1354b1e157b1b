"""Eval-mode BatchNorm folded into the convolution before it during training steps (``train.fold_bn``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

import headstart as hs
from headstart.engine.bnfold import find_pairs
from headstart.engine.runtime import Runtime
from tests.console import headstart, refused

FOLDED = "BatchNorm folded into the convolution before it"


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Statistics and affine parameters far from the identity, so that a fold that skipped one would show."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model


def _lite0() -> nn.Module:
    """EfficientNet-Lite0's architecture (timm's "same"-padded strided convolutions), BatchNorm in eval mode."""
    torch.manual_seed(0)
    model = _randomize_bn(timm.create_model("tf_efficientnet_lite0", num_classes=3))
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return model


def _runtime(precision: str = "fp32") -> Runtime:
    return Runtime(torch.device("cpu"), "fp32", channels_last=False, train_precision=precision)


def _step(model: nn.Module, rt: Runtime, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One training step's forward and backward through ``rt`` (as ``Trainer.train_step`` runs it)."""
    x = rt.train_batch(x)
    with rt.autocast():
        out = model(x)
    model.zero_grad(set_to_none=True)
    F.cross_entropy(out.float(), torch.arange(len(x)) % 3).backward()
    return out.detach().float(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def test_every_batchnorm_of_efficientnet_folds_and_the_step_computes_the_same_function() -> None:
    model, x = _lite0(), torch.randn(4, 3, 96, 96)
    plain_out, plain = _step(model, _runtime(), x)
    rt = _runtime().folding(model, {})
    out, grads = _step(model, rt, x)
    assert rt.bn_fold is not None and rt.bn_fold.pairs is not None
    assert len(rt.bn_fold.pairs) == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 49
    assert out.shape == plain_out.shape  # the strided convolutions' dynamic "same" padding still applies
    assert _rel(out, plain_out) < 1e-5
    assert grads.keys() == plain.keys()  # gamma and beta still get their gradients, through the folded weights
    assert max(_rel(grads[k], plain[k]) for k in plain) < 1e-3


def test_bf16_folded_gradients_are_as_close_to_fp64_as_unfolded_ones() -> None:
    """bf16 gradients of a random network are far from fp64's (20-35% per parameter), folded or not; pooled over
    three batches, the folded ones are no further (one batch alone varies 0.87-1.19x between the two)."""
    errors: dict[str, list[float]] = {"plain": [], "folded": []}
    for seed in range(3):
        model, x = _lite0(), torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
        _, ref = _step(model.double(), _runtime(), x.double())
        model = model.float()
        for name, rt in (("plain", _runtime("bf16")), ("folded", _runtime("bf16").folding(model, {}))):
            _, grads = _step(model, rt, x)
            errors[name] += [_rel(grads[k].double(), ref[k]) for k in ref]
    median = {name: sorted(e)[len(e) // 2] for name, e in errors.items()}
    assert median["folded"] <= 1.25 * median["plain"]


def test_batchnorm_in_train_mode_is_not_folded() -> None:
    model, x = _lite0(), torch.randn(4, 3, 64, 64)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train()  # statistics from the batch (bn=train, training from scratch): nothing to fold
    before = model.bn1.running_mean.clone()
    plain_out, plain = _step(model, _runtime(), x)
    after_plain = model.bn1.running_mean.clone()
    model.bn1.running_mean.copy_(before)
    out, grads = _step(model, _runtime().folding(model, {}), x)
    assert torch.equal(out, plain_out) and all(torch.equal(grads[k], plain[k]) for k in plain)
    assert torch.equal(model.bn1.running_mean, after_plain) and not torch.equal(after_plain, before)


class _PreActTap(nn.Module):
    """conv -> BatchNorm, and the conv's output also added back after the BatchNorm (read twice)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a, self.bn_a = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv_b, self.bn_b = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv_a(x)
        h = torch.relu(self.bn_a(a)) + a
        return self.head(torch.relu(self.bn_b(self.conv_b(h))).mean((2, 3)))


def test_a_convolution_read_elsewhere_too_is_not_folded() -> None:
    torch.manual_seed(0)
    model, x = _randomize_bn(_PreActTap()).eval(), torch.randn(2, 3, 8, 8)
    pairs = find_pairs(model, x)
    assert [bn for _, bn in pairs.values()] == [model.bn_b]
    plain_out, plain = _step(model, _runtime(), x)
    out, grads = _step(model, _runtime().folding(model, {}), x)
    assert _rel(out, plain_out) < 1e-5 and max(_rel(grads[k], plain[k]) for k in plain) < 1e-4


def test_no_fold_across_a_layer_group_boundary_and_the_model_is_left_as_it_was() -> None:
    torch.manual_seed(0)
    model, x = _randomize_bn(_PreActTap()), torch.randn(2, 3, 8, 8)
    model.train()
    rng = torch.get_rng_state()
    owners = {"conv_a": "a", "bn_a": "a", "conv_b": "a", "bn_b": "b", "head": "head"}
    assert find_pairs(model, x, owners) == {}  # conv_b and bn_b in different groups; conv_a is read twice
    assert all(m.training for m in model.modules())  # discovery ran in eval mode, and restored the modes
    assert torch.equal(torch.get_rng_state(), rng) and model.bn_b.num_batches_tracked.item() == 0


def test_text_models_have_nothing_to_fold() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4))
    assert find_pairs(model, torch.tensor([[1, 2, 3]])) == {}


def _fit(data: Path, out: Path, fold: bool) -> hs.Run:
    settings = {"train.fold_bn": fold, "train.batch_size": 8, "train.precision": "fp32"}
    return hs.fit(data, strategy="finetune", epochs=1, out=out, settings=settings, verbose=False)


@pytest.mark.slow
def test_a_run_folds_by_default_and_trains_the_same_as_without(
    elpv_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="headstart.engine")
    folded = _fit(elpv_folder, tmp_path / "folded", True)
    assert f"{FOLDED} while in eval mode: 49 of 49 layers" in caplog.text
    caplog.clear()
    plain = _fit(elpv_folder, tmp_path / "plain", False)
    assert FOLDED not in caplog.text
    history = [json.loads((r.path / "history.jsonl").read_text().splitlines()[0]) for r in (folded, plain)]
    assert history[0]["train_loss"] == pytest.approx(history[1]["train_loss"], rel=1e-4)
    assert history[0]["val_loss"] == pytest.approx(history[1]["val_loss"], rel=1e-3)


def test_the_console_refuses_a_fold_bn_that_is_not_a_boolean(elpv_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = headstart("train", str(elpv_folder), "--out", str(out), "--set", "train.fold_bn=sometimes")
    refused(result, "train.fold_bn")
    assert not out.exists()
