"""Depthwise convolutions' backward in fp32 during CPU bf16 steps: the same forward, gradients as precise as
bf16's or more, only depthwise convolutions touched, and a user's run with it on and off."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import headstart as hs
from headstart.backbones import get_backbone
from headstart.engine.depthwise import fp32_depthwise_grads
from headstart.engine.runtime import Runtime
from headstart.modalities import create_model


def _grads(conv: torch.nn.Module, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, dict[str, torch.Tensor], str]:
    x = x.detach().clone().requires_grad_(True)
    conv.zero_grad()
    runtime = Runtime(torch.device("cpu"), "fp32", True, "bf16" if mode != "fp32" else "fp32", mode == "ours")
    with runtime.autocast():
        y = conv(x)
    y.float().square().sum().backward()
    assert x.grad is not None
    grads = {"x": x.grad.float(), **{n: p.grad.float() for n, p in conv.named_parameters() if p.grad is not None}}
    return y.detach().float(), grads, y.grad_fn.name()


@pytest.mark.parametrize(("stride", "kernel", "bias"), [(1, 3, False), (2, 5, False), (1, 3, True)])
def test_same_forward_and_gradients_at_least_as_precise(stride: int, kernel: int, bias: bool) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 16, kernel, stride=stride, padding=kernel // 2, groups=16, bias=bias)
    x = torch.randn(4, 16, 20, 20).to(memory_format=torch.channels_last)
    y_bf16, g_bf16, fn_bf16 = _grads(conv, x, "bf16")
    y_ours, g_ours, fn_ours = _grads(conv, x, "ours")
    _, g_fp32, _ = _grads(conv, x, "fp32")
    assert fn_ours == "DepthwiseConvBackward" and fn_bf16 != fn_ours
    assert torch.equal(y_bf16, y_ours)  # the forward is autocast's, bit for bit
    assert g_ours.keys() == g_bf16.keys() == g_fp32.keys()
    for k in g_fp32:  # closer to the fp32 gradient than bf16's backward is (or as close)
        err_ours, err_bf16 = (g_ours[k] - g_fp32[k]).norm(), (g_bf16[k] - g_fp32[k]).norm()
        assert err_ours <= err_bf16 * 1.01 + 1e-6, k
        assert err_ours <= 0.02 * g_fp32[k].norm(), k


def test_other_convolutions_and_calls_without_gradients_run_as_before() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 10, 10, requires_grad=True)
    dense, grouped = torch.randn(8, 8, 3, 3, requires_grad=True), torch.randn(8, 4, 3, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16), fp32_depthwise_grads():
        assert F.conv2d(x, dense, padding=1).grad_fn.name() != "DepthwiseConvBackward"
        assert F.conv2d(x, grouped, padding=1, groups=2).grad_fn.name() != "DepthwiseConvBackward"
        depthwise = torch.randn(8, 1, 3, 3, requires_grad=True)
        assert F.conv2d(x, depthwise, padding="same", groups=8).grad_fn.name() != "DepthwiseConvBackward"
        with torch.no_grad():
            assert F.conv2d(x, depthwise, padding=1, groups=8).grad_fn is None
    with fp32_depthwise_grads():  # no autocast: plain fp32
        assert F.conv2d(x, depthwise, padding=1, groups=8).dtype == torch.float32
    off = Runtime(torch.device("cpu"), "fp32", True, "bf16", fp32_depthwise_grads=False)
    with off.autocast():
        assert F.conv2d(x, depthwise, padding=1, groups=8).grad_fn.name() != "DepthwiseConvBackward"


@pytest.mark.slow
def test_a_run_with_it_on_and_off_is_the_same_training(elpv_folder: Path, tmp_path: Path) -> None:
    """Through the Python API: finetune in bf16 with the depthwise backward in fp32 (the default) and in bf16.
    The depthwise weights' updates agree (their difference is a small part of the update itself)."""
    runs = {}
    for on in (True, False):
        settings = {"train.precision": "bf16", "train.fp32_depthwise_grads": on, "train.batch_size": 8}
        runs[on] = hs.fit(elpv_folder, strategy="finetune", epochs=1, out=tmp_path / str(on), settings=settings)
    manifest = json.loads((runs[True].path / "headstart.json").read_text())
    assert manifest["config"]["train"]["fp32_depthwise_grads"] is True
    assert manifest["runtime"]["train_precision"] == "bf16"
    start = create_model(get_backbone("efficientnet_lite0"), num_classes=2)[0].state_dict()
    on, off = (load_file(runs[k].path / "model.safetensors") for k in (True, False))
    depthwise = [k for k in start if k.endswith("conv_dw.weight")]
    assert depthwise
    for k in depthwise:
        update_on, update_off = on[k].float() - start[k], off[k].float() - start[k]
        assert update_off.norm() > 0, k
        assert (update_on - update_off).norm() <= 0.5 * update_off.norm(), k
