"""Depthwise convolutions' gradients in fp32 during CPU bf16 training steps.

oneDNN's bf16 backward of a depthwise convolution (one input channel per group: EfficientNet's and MobileNet's
inverted residuals) is 4-20x slower on CPU than its fp32 one, and those layers are most of a training step there
(bench/README.md, issue 18: 75% of a step's time was ``convolution_backward`` of the depthwise layers). Within
:func:`fp32_depthwise_grads` such a convolution's forward is the one autocast would run (the same output, bit for
bit), and its backward casts the saved input and the incoming gradient to fp32 and runs the convolution's backward
there: the gradients of the bf16 step, rounded later (more precise, not less), in about half the step's time.
Nothing changes without autocast, without gradients, or for other convolutions.

>>> x = torch.randn(2, 4, 8, 8, requires_grad=True)
>>> w = torch.randn(4, 1, 3, 3, requires_grad=True)
>>> with torch.autocast("cpu", dtype=torch.bfloat16), fp32_depthwise_grads():
...     y = torch.nn.functional.conv2d(x, w, padding=1, groups=4)
>>> y.dtype, y.grad_fn.name()
(torch.bfloat16, 'DepthwiseConvBackward')
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair
from torch.overrides import TorchFunctionMode

__all__ = ["fp32_depthwise_grads"]


class DepthwiseConv(torch.autograd.Function):
    """``conv2d`` as autocast runs it forward; the backward in fp32."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *conf: Any) -> Any:
        out = F.conv2d(x, weight, bias, *conf)
        ctx.save_for_backward(x, weight)
        ctx.conf, ctx.has_bias = conf, bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        x32 = x.float()
        grad = grad.float().contiguous(memory_format=_memory_format(x32))
        need = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.convolution_backward(
            grad, x32, weight.float(), [weight.shape[0]] if ctx.has_bias else None,
            stride, padding, dilation, False, [0, 0], groups, need,
        )  # fmt: skip
        cast = [g if g is None else g.to(t.dtype) for g, t in ((gx, x), (gw, weight))]
        return cast[0], cast[1], gb, None, None, None, None


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def _depthwise_call(args: tuple, kwargs: dict) -> tuple | None:
    """``(x, weight, bias, stride, padding, dilation, groups)`` of a depthwise conv2d call that needs gradients, else
    None (string padding, other convolutions, no gradient wanted: those run as they would)."""
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    defaults = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}
    call = {**defaults, **dict(zip(names, args, strict=False)), **kwargs}
    x, w, groups = call["input"], call["weight"], call["groups"]
    if groups <= 1 or x.dim() != 4 or w.shape[1] != 1 or x.shape[1] != groups or isinstance(call["padding"], str):
        return None
    if not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)):
        return None
    return (x, w, call["bias"], *(list(_pair(call[k])) for k in ("stride", "padding", "dilation")), groups)


class fp32_depthwise_grads(TorchFunctionMode):  # noqa: N801 (used as a context manager, like torch.autocast)
    """While active, depthwise ``conv2d`` calls under CPU bf16 autocast that need gradients go through
    :class:`DepthwiseConv` (see the module docstring)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.conv2d and torch.is_autocast_enabled("cpu"):  # F.conv2d is torch.conv2d
            call = _depthwise_call(args, kwargs)
            if call is not None:
                return DepthwiseConv.apply(*call)
        return func(*args, **kwargs)
