"""Runtime: the training steps may use bf16 autocast; every kept forward pass is fp32."""

from __future__ import annotations

import pytest
import torch

from headstart.backbones import get_backbone
from headstart.config import TrainConfig
from headstart.engine import runtime as runtime_module
from headstart.engine.inference import pooled_features
from headstart.engine.runtime import Runtime, _ieee_fp32, inference_runtime, resolve_runtime
from headstart.errors import HeadstartError
from headstart.modalities import create_model


@pytest.mark.parametrize(
    ("asked", "native", "train_precision"),
    [("auto", True, "bf16"), ("auto", False, "fp32"), ("bf16", False, "bf16"), ("fp32", True, "fp32")],
)
def test_train_precision_follows_the_config_and_the_cpu_but_kept_passes_are_fp32(
    asked: str, native: bool, train_precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "cpu_has_fast_bf16", lambda: native)
    rt = resolve_runtime(TrainConfig(device="cpu", precision=asked))
    assert (rt.precision, rt.train_precision) == ("fp32", train_precision)
    assert rt.describe()["precision"] == "fp32" and rt.describe()["train_precision"] == train_precision


def test_training_autocast_is_bf16_and_inference_is_fp32() -> None:
    rt = Runtime(device=torch.device("cpu"), precision="fp32", channels_last=False, train_precision="bf16")
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        with rt.autocast():
            assert conv(x).dtype == torch.bfloat16
        with rt.inference():
            assert conv(x).dtype == torch.float32


def test_features_do_not_depend_on_the_training_precision() -> None:
    """The same images give bit-identical features whether the run trains in bf16 or fp32."""
    model, _ = create_model(get_backbone("mobilenet_v2"), 2)
    model.eval()
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    feats = {}
    for train_precision in ("fp32", "bf16"):
        rt = Runtime(torch.device("cpu"), "fp32", channels_last=True, train_precision=train_precision)
        with torch.inference_mode():
            feats[train_precision] = pooled_features(rt.model(model), x, rt)
    assert feats["bf16"].dtype == torch.float32
    assert torch.equal(feats["fp32"], feats["bf16"])
    bf16 = Runtime(torch.device("cpu"), "bf16", channels_last=True)
    with torch.inference_mode():
        assert (pooled_features(model, x, bf16) - feats["fp32"]).abs().max() > 1e-3  # bf16 would move them


def test_ieee_fp32_turns_tf32_off_inside_and_restores_the_flags() -> None:
    if not hasattr(torch.backends.cudnn, "conv"):
        pytest.skip("torch < 2.9 has no fp32_precision flags")
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = (conv.fp32_precision, matmul.fp32_precision)
    conv.fp32_precision = "tf32"
    try:
        with _ieee_fp32():
            assert (conv.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
        assert conv.fp32_precision == "tf32"
        assert matmul.fp32_precision == before[1]
    finally:
        conv.fp32_precision = before[0]


def test_inference_runtime_uses_the_recorded_precision_not_the_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "cpu_has_fast_bf16", lambda: True)
    cfg = TrainConfig(device="cpu", precision="auto")  # would train in bf16 here
    assert inference_runtime(cfg, {"precision": "fp32", "train_precision": "bf16"}).precision == "fp32"
    assert inference_runtime(cfg, None).precision == "fp32"
    assert inference_runtime(cfg, {"device": "cpu", "precision": "bf16"}).precision == "bf16"


def test_inference_runtime_warns_when_recorded_bf16_cannot_be_reproduced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = TrainConfig(device="cpu")
    monkeypatch.setattr(runtime_module, "cpu_has_fast_bf16", lambda: True)
    with caplog.at_level("WARNING", logger="headstart"):
        inference_runtime(cfg, {"device": "cpu", "precision": "bf16"}, "runs/a")
    assert not caplog.records  # same kind of hardware: reproduced
    monkeypatch.setattr(runtime_module, "cpu_has_fast_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="headstart"):
        inference_runtime(cfg, {"device": "cuda:0", "precision": "bf16"}, "runs/a")
        inference_runtime(cfg, {"device": "cpu", "precision": "bf16"}, "runs/b")
    first, second = (r.getMessage() for r in caplog.records)
    assert first.startswith("runs/a computed") and "in bf16 on cuda:0" in first and "scores on cpu" in first
    assert second.startswith("runs/b computed") and "no native bf16" in second
    assert "train the run again with this version of headstart" in second


def test_inference_runtime_refuses_an_unknown_precision() -> None:
    with pytest.raises(HeadstartError, match=r"runs/x records runtime.precision='int8'; expected one of fp32, bf16"):
        inference_runtime(TrainConfig(device="cpu"), {"precision": "int8"}, "runs/x")
