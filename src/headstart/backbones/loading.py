"""Loading checkpoint files into timm modules with every tensor shape checked.

Packaged checkpoints use other key names (lukemelas EfficientNet, torchvision MobileNetV2) but the
same tensors in the same order as timm's modules, so they are mapped by position; each pair must
agree in shape and in kind (weight / bias / running_mean ...), or loading stops with an error.
Nothing here unpickles arbitrary objects: ``.pth`` files are read with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from headstart.errors import HeadstartError

__all__ = ["read_state_dict", "load_by_order", "load_by_name"]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file or a (possibly wrapped) PyTorch state dict without unpickling code."""
    p = Path(path)
    if not p.is_file():
        raise HeadstartError(f"weights file {str(p)!r} does not exist; pass an existing file to --weights")
    if p.suffix == ".safetensors":
        return load_file(str(p), device="cpu")
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise HeadstartError(
            f"cannot read weights file {str(p)!r} as a safe state dict ({exc.__class__.__name__}: {exc}); "
            "save it with torch.save(model.state_dict(), path) or as .safetensors"
        ) from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise HeadstartError(f"weights file {str(p)!r} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_by_order(model: nn.Module, source: dict[str, torch.Tensor], origin: str) -> None:
    """Copy ``source`` tensors into ``model`` position by position, checking every shape."""
    target = model.state_dict()
    if len(source) != len(target):
        raise HeadstartError(
            f"{origin}: checkpoint has {len(source)} tensors but the model expects {len(target)}; "
            "the file does not match this architecture"
        )
    mapped: dict[str, torch.Tensor] = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != expected.shape or src_key.rsplit(".", 1)[-1] != dst_key.rsplit(".", 1)[-1]:
            raise HeadstartError(
                f"{origin}: tensor {src_key} {tuple(tensor.shape)} does not fit {dst_key} "
                f"{tuple(expected.shape)}; the file does not match this architecture"
            )
        mapped[dst_key] = tensor
    model.load_state_dict(mapped, strict=True)


def load_by_name(
    model: nn.Module, source: dict[str, torch.Tensor], origin: str, skip_prefixes: tuple[str, ...] = ()
) -> None:
    """Load tensors by name; every model tensor outside ``skip_prefixes`` must be present with its shape."""
    target = model.state_dict()
    missing = [k for k in target if k not in source and not k.startswith(skip_prefixes)]
    wrong = [
        f"{k} {tuple(source[k].shape)} vs {tuple(v.shape)}"
        for k, v in target.items()
        if k in source and source[k].shape != v.shape and not k.startswith(skip_prefixes)
    ]
    if missing or wrong:
        detail = "; ".join(
            ([f"missing: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"] if missing else [])
            + ([f"shape mismatch: {', '.join(wrong[:5])}"] if wrong else [])
        )
        raise HeadstartError(f"{origin}: checkpoint does not match the architecture ({detail})")
    usable = {k: v for k, v in source.items() if k in target and source[k].shape == target[k].shape}
    model.load_state_dict(usable, strict=False)
