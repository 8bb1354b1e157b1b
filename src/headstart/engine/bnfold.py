"""Eval-mode BatchNorm folded into the convolution before it, during training steps.

With ``strategy.bn=frozen`` (the default) and in frozen layer groups, BatchNorm runs in eval mode: a fixed affine
map per channel, ``y = (x - mean) / sqrt(var + eps) * gamma + beta``. Applied to a convolution's output that
nothing else reads, it equals one convolution with ``weight * s`` (``s = gamma / sqrt(var + eps)`` per output
channel) and bias ``beta - mean * s`` (plus ``bias * s``). :class:`BatchNormFold` computes those weights inside the
autograd graph, so gradients reach the convolution's weight and BatchNorm's gamma and beta as before, and the
BatchNorm's own forward and backward passes (two reads and writes of the activations each, and the reductions
for gamma and beta) are gone: an EfficientNet-Lite0 step on CPU took 0.80-0.93x the time in bf16 and 0.60-0.95x in
fp32 (bench/README.md).
The result is the same function, rounded differently (as close to an fp64 step as the unfolded one).

The pairs are found once, on the first batch (:func:`find_pairs`): a ``conv2d`` call whose weight is a parameter
called once per forward, whose output goes, unchanged, only into one ``batch_norm`` call (counted on the
autograd graph of an eval-mode forward of one example), both modules in the same layer group (a frozen-prefix
boundary never falls between them). A BatchNorm in train mode at the time of the call (``bn=train``, training
from scratch) is never folded: its statistics come from the batch.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.overrides import TorchFunctionMode

__all__ = ["BatchNormFold", "find_pairs"]

logger = logging.getLogger(__name__)

Pairs = dict[int, tuple[torch.Tensor, _BatchNorm]]  # id(conv weight) -> (the weight, its BatchNorm)


def _arg(args: tuple, kwargs: dict, i: int, name: str) -> Any:
    return args[i] if len(args) > i else kwargs.get(name)


class _Recorder(TorchFunctionMode):
    """Records every ``conv2d`` output and which ``batch_norm`` call read it first, unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.convs: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}  # id(out) -> (out, weight, version)
        self.calls: dict[int, int] = {}  # id(weight or running_mean) -> calls
        self.links: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (weight, running_mean, conv out)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is F.conv2d:
            w = _arg(args, kwargs, 1, "weight")
            self.calls[id(w)] = self.calls.get(id(w), 0) + 1
            if isinstance(w, nn.Parameter):
                self.convs[id(out)] = (out, w, out._version)
        elif func is F.batch_norm:
            x, mean = args[0], _arg(args, kwargs, 1, "running_mean")
            self.calls[id(mean)] = self.calls.get(id(mean), 0) + 1
            conv = self.convs.get(id(x))
            if conv is not None and conv[0] is x and x._version == conv[2] and mean is not None:
                self.links.append((conv[1], mean, x))
        return out


def _consumers(outputs: Any) -> dict[Any, int]:
    """How many edges of the autograd graph behind ``outputs`` lead into each node."""
    roots = [t.grad_fn for t in _tensors(outputs) if t.grad_fn is not None]
    counts: dict[Any, int] = {}
    seen, stack = set(), roots
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for nxt, _ in node.next_functions:
            if nxt is not None:
                counts[nxt] = counts.get(nxt, 0) + 1
                stack.append(nxt)
    return counts


def _tensors(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    values = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else []
    return [t for v in values for t in _tensors(v)]


def _owner_of(model: nn.Module, owners: dict[str, str | None]) -> dict[int, str | None]:
    """id(weight or running_mean) -> the layer group of the module holding it."""
    found: dict[int, str | None] = {}
    for name, module in model.named_modules():
        for t in (getattr(module, "weight", None), getattr(module, "running_mean", None)):
            if isinstance(t, torch.Tensor):
                found.setdefault(id(t), owners.get(name))
    return found


def find_pairs(model: nn.Module, x: Any, owners: dict[str, str | None] | None = None) -> Pairs:
    """The (convolution, BatchNorm) pairs of ``model`` that fold (see the module docstring), found on one example
    of the batch ``x`` in eval mode (no dropout draw, no statistic updated, the random state left as it was)."""
    bns = {id(m.running_mean): m for m in model.modules() if isinstance(m, _BatchNorm) and m.running_mean is not None}
    if not bns or not isinstance(x, torch.Tensor) or not x.is_floating_point():
        return {}
    modes = {m: m.training for m in model.modules()}
    recorder = _Recorder()
    try:
        model.eval()
        with torch.random.fork_rng(devices=[]), torch.enable_grad(), recorder:
            outputs = model(x[:1].detach().float().requires_grad_(True))
    finally:
        for m, mode in modes.items():
            m.train(mode)
    counts, groups = _consumers(outputs), _owner_of(model, owners or {})
    pairs: Pairs = {}
    for w, mean, out in recorder.links:
        once = recorder.calls.get(id(w)) == 1 and recorder.calls.get(id(mean)) == 1
        if once and counts.get(out.grad_fn, 0) == 1 and groups.get(id(w)) == groups.get(id(mean)):
            pairs[id(w)] = (w, bns[id(mean)])
    return pairs


def folded(weight: torch.Tensor, bias: torch.Tensor | None, bn: _BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of ``conv2d(x, weight, bias)`` followed by ``bn`` in eval mode, as one convolution."""
    assert bn.running_mean is not None and bn.running_var is not None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    if bias is not None:
        shift = shift + bias * scale
    return weight * scale.reshape(-1, *([1] * (weight.dim() - 1))), shift


class _FoldMode(TorchFunctionMode):
    """While active, each paired ``conv2d`` runs with the folded weights and its BatchNorm hands its input on."""

    def __init__(self, pairs: Pairs) -> None:
        super().__init__()
        self.pairs = pairs
        self.pending: tuple[torch.Tensor, _BatchNorm] | None = None  # a folded output and the BatchNorm it awaits

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.conv2d:
            w = _arg(args, kwargs, 1, "weight")
            pair = self.pairs.get(id(w))
            bn = pair[1] if pair is not None and pair[0] is w else None
            if bn is not None and not bn.training and bn.running_mean is not None and bn.running_var is not None:
                weight, bias = folded(w, _arg(args, kwargs, 2, "bias"), bn)
                rest = {k: v for k, v in kwargs.items() if k not in ("input", "weight", "bias")}
                out = func(_arg(args, kwargs, 0, "input"), weight, bias, *args[3:], **rest)
                self.pending = (out, bn)
                return out
        elif func is F.batch_norm and self.pending is not None and args[0] is self.pending[0]:
            return self._hand_on(args, kwargs)
        out = func(*args, **kwargs)
        if self.pending is not None and isinstance(out, torch.Tensor):
            if any(a is self.pending[0] for a in (*args, *kwargs.values())):
                raise RuntimeError(
                    f"BatchNorm folding: a folded convolution's output was read by {getattr(func, '__name__', func)} "
                    "before its BatchNorm (this model's forward changes between batches); set train.fold_bn=false"
                )
        return out

    def _hand_on(self, args: tuple, kwargs: dict) -> torch.Tensor:
        assert self.pending is not None
        x, bn = self.pending
        self.pending = None
        expected = (bn.running_mean, bn.running_var, bn.weight, bn.bias)
        given = [_arg(args, kwargs, i, k) for i, k in enumerate(("running_mean", "running_var", "weight", "bias"), 1)]
        training = _arg(args, kwargs, 5, "training")
        if training or any(a is not b for a, b in zip(given, expected, strict=True)):
            raise RuntimeError(
                "BatchNorm folding: a folded convolution's output reached another BatchNorm than the one it was "
                "folded with, or one that uses batch statistics; set train.fold_bn=false"
            )
        return x


class BatchNormFold:
    """The folding of one model's (convolution, eval-mode BatchNorm) pairs in its training steps (module docstring).

    :meth:`prepare` finds the pairs on the first batch; :meth:`mode` is the context in which they run folded
    (a no-op before :meth:`prepare`, or where nothing folds)."""

    def __init__(self, model: nn.Module, owners: dict[str, str | None] | None = None):
        self.model, self.owners = model, owners
        self.pairs: Pairs | None = None

    def prepare(self, x: Any) -> None:
        if self.pairs is not None:
            return
        self.pairs = find_pairs(self.model, x, self.owners)
        total = sum(isinstance(m, _BatchNorm) for m in self.model.modules())
        if total:
            logger.info(
                "BatchNorm folded into the convolution before it while in eval mode: %d of %d layers "
                "(train.fold_bn=false turns it off)",
                len(self.pairs),
                total,
            )

    @contextlib.contextmanager
    def mode(self) -> Iterator[None]:
        if not self.pairs:
            yield
            return
        with _FoldMode(self.pairs):
            yield
