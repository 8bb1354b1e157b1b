"""Device, precision and memory format: resolved once, applied to models and batches.

On CPUs with AVX512-BF16 or AMX, bf16 autocast with channels_last ran tf_efficientnet_lite0
3.3x faster than fp32 NCHW with the same probe accuracy, so ``precision=auto`` picks bf16 there.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from headstart.config import TrainConfig
from headstart.engine.distributed import is_distributed, local_rank, world_size
from headstart.errors import HeadstartError

__all__ = ["Runtime", "resolve_runtime", "cpu_has_fast_bf16"]


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU executes bf16 natively (AVX512-BF16 or AMX tiles)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


@dataclass(frozen=True)
class Runtime:
    device: torch.device  # where the model and batches live
    precision: str  # fp32 | bf16 (autocast)
    channels_last: bool  # NHWC memory format for 4-D tensors

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def model(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def batch(self, x: Any) -> Any:
        """A batch on the device: an image tensor (channels_last when 4-D) or a dict of token tensors."""
        if isinstance(x, dict):
            return {k: v.to(self.device, non_blocking=True) for k, v in x.items()}
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def describe(self) -> dict[str, object]:
        return {
            "device": str(self.device),
            "precision": self.precision,
            "channels_last": self.channels_last,
            "processes": world_size(),
        }


def resolve_runtime(cfg: TrainConfig) -> Runtime:
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(cfg.device)
        except RuntimeError as exc:
            raise HeadstartError(f"train.device={cfg.device!r} is not a device; use auto, cpu, cuda or cuda:N") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise HeadstartError("train.device asks for CUDA but no GPU is visible; use train.device=cpu or auto")
    if device.type == "cuda" and device.index is None and is_distributed():
        device = torch.device("cuda", local_rank())  # one GPU per process under torchrun
    precision = cfg.precision
    if precision == "auto":
        fast = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_fast_bf16()
        precision = "bf16" if fast else "fp32"
    return Runtime(device=device, precision=precision, channels_last=cfg.channels_last)
