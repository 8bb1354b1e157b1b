"""The frozen-prefix activation cache: while the first layer groups are frozen, compute their output once.

While a prefix of layer groups is frozen it runs in eval mode (BatchNorm statistics and dropout fixed, see
``Trainer.train_mode``) on inputs that do not change between epochs (augmentation off), so it computes the same
activations for the same example in every epoch. :class:`FrozenPrefix` computes them the first time an example
comes at the current boundary (in the batch it comes in, in the precision of the pass that asks: the training
steps' autocast or the kept passes' precision), keeps them (:class:`~headstart.engine.activations.ActivationStore`:
in memory up to ``train.cache_memory_gb``, then in a file under the feature cache), and from then on, for the
length of a call, the prefix's modules are replaced by stubs that hand over the stored tensor; the rest of the
network runs as always, with its autograd graph. When unfreezing moves the boundary, the stores are dropped and
the new boundary's fill as examples come.

It is exact, so it is on by default (``train.cache_frozen``), and off, with the reason in the log, where it
would not be: augmentation on, a domain-alignment loss (it runs its own forwards on target batches), and per
boundary (found by tracing one forward once): a prefix module called more than once, a stochastic layer outside
every layer group or a module that trains running before the boundary, and a cached forward that differs from
the full one (checked on a few examples, once per boundary).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from headstart.config import RunConfig
from headstart.engine.activations import ActivationStore, Budget

__all__ = ["FrozenPrefix", "cache_off_reason", "is_stochastic"]

logger = logging.getLogger(__name__)

GUARD_ROWS = 4  # examples on which a boundary's cached forward is compared with the full one
Precision = Callable[[], contextlib.AbstractContextManager]


class _Stop(Exception):
    """Raised by the boundary's hook: the rest of the forward is not needed to fill the cache."""


def cache_off_reason(cfg: RunConfig, domain_loss: str | None) -> str | None:
    """Why a run cannot cache its frozen prefix at all (None: it can, where a boundary allows)."""
    if not cfg.train.cache_frozen:
        return "train.cache_frozen=false"
    if cfg.preprocess.augment:
        return "augmentation is on (preprocess.augment=true): the frozen layers see new inputs every epoch"
    if domain_loss is not None:
        return f"the {domain_loss} domain loss runs its own forward passes over target batches"
    return None


def is_stochastic(module: nn.Module) -> bool:
    """A layer that draws random numbers in training mode (dropout with p > 0, drop-path / stochastic depth)."""
    p = getattr(module, "p", getattr(module, "drop_prob", None))
    random_kind = isinstance(module, nn.modules.dropout._DropoutNd) or "droppath" in type(module).__name__.lower()
    return random_kind and bool(p)


@dataclass
class _Trace:
    """One forward's order of events: ``(start|end, module name)`` for the groups' outermost modules and for
    the stochastic layers outside every group."""

    events: list[tuple[str, str]] = field(default_factory=list)

    def calls(self, name: str) -> int:
        return sum(1 for e, n in self.events if e == "start" and n == name)

    def end(self, name: str) -> int:
        return max(i for i, (e, n) in enumerate(self.events) if e == "end" and n == name)

    def starts_before(self, position: int) -> list[str]:
        return [n for e, n in self.events[:position] if e == "start"]


@dataclass
class _Boundary:
    frozen: int  # the number of leading frozen groups
    modules: list[str]  # the prefix's outermost modules, stubbed during a cached call
    last: str  # the one whose output the rest of the network reads
    templates: dict[str, Any] = field(default_factory=dict)  # each stubbed module's output, its tensor a slot
    checked: bool = False  # the cached forward was compared with the full one
    channels_last: bool = False  # the layout the rest of the network got the activations in


_SLOT = object()


def _template(out: Any) -> Any:
    """A module's output with its one tensor replaced by a slot (a tensor, or a tuple whose only tensor comes
    first, as transformer layers return); None for anything else."""
    if isinstance(out, torch.Tensor):
        return _SLOT
    if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor):
        if not any(isinstance(o, torch.Tensor) for o in out[1:]):
            return (_SLOT, *out[1:])
    return None


def _fill(template: Any, tensor: torch.Tensor) -> Any:
    return tensor if template is _SLOT else (tensor, *template[1:])


def _rows(x: Any, rows: torch.Tensor | slice) -> Any:
    return {k: v[rows] for k, v in x.items()} if isinstance(x, dict) else x[rows]


def _device(x: Any) -> torch.device:
    return next(iter(x.values())).device if isinstance(x, dict) else x.device


def _lengths(x: Any, acts: torch.Tensor) -> list[int] | None:
    """Per example, how many positions of a token sequence's activations are real (right padding), else None."""
    if not isinstance(x, dict) or "attention_mask" not in x or acts.dim() < 3:
        return None
    mask = x["attention_mask"]
    if acts.shape[1] != mask.shape[1]:
        return None
    lengths = mask.sum(1)
    positions = torch.arange(mask.shape[1], device=mask.device)
    right_padded = bool(((positions[None, :] < lengths[:, None]) == mask.bool()).all())
    return lengths.tolist() if right_padded else None


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Every module in eval mode for the block (no dropout draws, no BatchNorm updates), then as it was."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.train(training)


class FrozenPrefix:
    """The frozen-prefix cache of one training run (see the module's docstring)."""

    def __init__(self, model: nn.Module, names: list[str], owners: dict[str, str | None], budget_bytes: int):
        """``names``: the layer groups, input to output; ``owners``: what
        :func:`~headstart.backbones.layers.module_owners` says of the model."""
        self.model, self.names, self.owners = model, names, owners
        self.modules = dict(model.named_modules())
        parent = {n: n.rpartition(".")[0] for n in self.owners if n}
        self.outer = {n: g for n, g in self.owners.items() if n and g is not None and self.owners[parent[n]] != g}
        self.budget = Budget(budget_bytes)
        self.stores: dict[str, ActivationStore] = {}
        self.frozen = 0
        self.plans: dict[int, _Boundary | str] = {}  # per boundary: its plan, or why it cannot be cached
        self.trace: _Trace | None = None
        self.said: set[str] = set()
        self.hits = self.computed = 0

    def set_frozen(self, n: int) -> None:
        """The first ``n`` groups are frozen from now on (0: none, or not for long enough to read anything back);
        a new boundary drops what was stored."""
        if n != self.frozen:
            self.frozen = n
            for store in self.stores.values():
                store.clear()

    @contextlib.contextmanager
    def serving(self, x: Any, index: torch.Tensor, kind: str, precision: Precision) -> Iterator[None]:
        """Within the block, calling the model on ``x`` (the batch of examples ``index``) reads the frozen
        prefix's output from the store of ``kind`` (``train`` steps, ``eval`` passes: each computed in its
        ``precision``), computing what is missing first."""
        boundary = self._boundary(x, precision)
        acts = None if boundary is None else self._activations(boundary, x, index, kind, precision)
        if boundary is None or acts is None:
            yield
            return
        with self._stubbed(boundary, acts):
            yield

    def close(self) -> None:
        """Log what the cache did and free it (memory and spill file)."""
        if self.hits or self.computed:
            spilled = sum(s.spilled_bytes for s in self.stores.values()) / 2**20
            logger.info(
                "frozen-prefix cache: %d example passes read from it, %d computed (%.0f MB in memory, %.0f MB in "
                "its file at the end)",
                self.hits,
                self.computed,
                sum(s.in_memory_bytes for s in self.stores.values()) / 2**20,
                spilled,
            )
        for store in self.stores.values():
            store.clear()

    # -- plan ----------------------------------------------------------------------------------
    def _say(self, message: str) -> None:
        if message not in self.said:
            self.said.add(message)
            logger.info(message)

    def _boundary(self, x: Any, precision: Precision) -> _Boundary | None:
        if self.frozen == 0:
            return None
        if self.frozen not in self.plans:
            if self.trace is None:
                self.trace = self._trace(x, precision)
            self.plans[self.frozen] = self._plan(self.frozen, self.trace)
        plan = self.plans[self.frozen]
        if isinstance(plan, str):
            self._say(f"frozen-prefix cache off while {self._span()} are frozen: {plan}")
            return None
        return plan

    def _span(self) -> str:
        first, last = self.names[0], self.names[self.frozen - 1]
        return first if first == last else f"{first}..{last}"

    def _trace(self, x: Any, precision: Precision) -> _Trace:
        """The order in which the groups' outermost modules (and stochastic layers outside every group) run
        in one forward pass over two examples."""
        trace = _Trace()
        loose = [n for n, m in self.modules.items() if self.owners.get(n) is None and is_stochastic(m)]
        handles = []
        for name in [*self.outer, *loose]:
            module = self.modules[name]
            handles.append(module.register_forward_pre_hook(lambda *_, n=name: trace.events.append(("start", n))))
            handles.append(module.register_forward_hook(lambda *_, n=name: trace.events.append(("end", n))))
        try:
            with _eval_mode(self.model), torch.no_grad(), precision():
                self.model(_rows(x, slice(0, 2)))
        finally:
            for h in handles:
                h.remove()
        return trace

    def _plan(self, n: int, trace: _Trace) -> _Boundary | str:
        prefix = set(self.names[:n])
        mods = [m for m, g in self.outer.items() if g in prefix and trace.calls(m)]
        if not mods:
            return "no module of these groups runs in the forward pass"
        for m in mods:
            if trace.calls(m) != 1:
                return f"{m} runs {trace.calls(m)} times in one forward pass"
        last = max(mods, key=trace.end)
        for m in trace.starts_before(trace.end(last)):
            if m in mods:
                continue
            if self.owners.get(m) is None:
                return f"{m} ({type(self.modules[m]).__name__}) draws random numbers before their output"
            if any(p.requires_grad for p in self.modules[m].parameters()):
                return f"{m} (group {self.owners[m]}) trains and runs before their output is complete"
        return _Boundary(n, mods, last)

    # -- activations ---------------------------------------------------------------------------
    def _activations(
        self, boundary: _Boundary, x: Any, index: torch.Tensor, kind: str, precision: Precision
    ) -> torch.Tensor | None:
        """The prefix's output for the batch: whole from the prefix on a first pass (so the numbers are the
        ones an uncached step computes), from the store for the examples it holds."""
        if not boundary.checked and not self._guard(boundary, x, precision):
            return None
        store = self.stores.setdefault(kind, ActivationStore(self.budget))
        keys = index.tolist()
        missing = [i for i, k in enumerate(keys) if k not in store]
        if len(missing) == len(keys):
            acts = self._prefix(boundary, x, precision)
            for k, t in zip(keys, self._split(acts, x), strict=True):
                store.put(k, t)
            self.computed += len(keys)
            return acts
        fresh: dict[int, torch.Tensor] = {}
        if missing:
            part = _rows(x, torch.tensor(missing, device=_device(x)))
            fresh = dict(zip(missing, self._split(self._prefix(boundary, part, precision), part), strict=True))
            for i, t in fresh.items():
                store.put(keys[i], t)
        self.hits += len(keys) - len(missing)
        self.computed += len(missing)
        return self._assemble(boundary, [fresh[i] if i in fresh else store.get(k) for i, k in enumerate(keys)], x)

    def _prefix(self, boundary: _Boundary, x: Any, precision: Precision) -> torch.Tensor:
        """Run the model until the boundary's last module has its output; record the stubs' templates."""
        out: dict[str, torch.Tensor] = {}
        handles = []

        def grab(_module: nn.Module, _args: Any, output: Any) -> None:
            template = _template(output)
            if template is None:
                raise TypeError(f"{boundary.last} returns {type(output).__name__}")
            boundary.templates.setdefault(boundary.last, template)
            out["acts"] = output if isinstance(output, torch.Tensor) else output[0]
            raise _Stop

        def record(name: str) -> Callable[..., None]:
            def hook(_module: nn.Module, _args: Any, output: Any) -> None:  # returns None: the output stays
                boundary.templates.setdefault(name, _template(output))

            return hook

        for name in boundary.modules:
            if name not in boundary.templates and name != boundary.last:
                handles.append(self.modules[name].register_forward_hook(record(name)))
        handles.append(self.modules[boundary.last].register_forward_hook(grab))
        try:
            with torch.no_grad(), precision():
                self.model(x)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        acts = out["acts"]
        boundary.channels_last = acts.dim() == 4 and acts.is_contiguous(memory_format=torch.channels_last)
        return acts

    def _split(self, acts: torch.Tensor, x: Any) -> list[torch.Tensor]:
        """One tensor per example (token sequences without their padding)."""
        lengths = _lengths(x, acts)
        return [a[:n] for a, n in zip(acts, lengths, strict=True)] if lengths else list(acts)

    def _assemble(self, boundary: _Boundary, parts: list[torch.Tensor], x: Any) -> torch.Tensor:
        if isinstance(x, dict) and parts[0].dim() >= 2:  # token sequences: padded back to the batch's length
            width = x["attention_mask"].shape[1]
            acts = parts[0].new_zeros((len(parts), width, *parts[0].shape[1:]))
            for i, t in enumerate(parts):
                acts[i, : len(t)] = t
        else:
            acts = torch.stack(parts)
        acts = acts.to(_device(x))
        return acts.contiguous(memory_format=torch.channels_last) if boundary.channels_last else acts.contiguous()

    @contextlib.contextmanager
    def _stubbed(self, boundary: _Boundary, acts: torch.Tensor) -> Iterator[None]:
        """The prefix's modules hand over ``acts`` (in each one's output structure) instead of computing."""
        saved = {}
        for name in boundary.modules:
            module, template = self.modules[name], boundary.templates[name]
            saved[name] = module.__dict__.get("forward")
            module.forward = lambda *_a, _t=template, **_k: _fill(_t, acts)  # type: ignore[method-assign]
        try:
            yield
        finally:
            for name, previous in saved.items():
                module = self.modules[name]
                del module.forward
                if previous is not None:
                    module.forward = previous  # type: ignore[method-assign]

    def _guard(self, boundary: _Boundary, x: Any, precision: Precision) -> bool:
        """Compare the cached forward with the full one on a few examples (eval mode: nothing random)."""
        xs = _rows(x, slice(0, GUARD_ROWS))
        problem = None
        with _eval_mode(self.model), torch.no_grad():
            with precision():
                ref = self.model(xs)
            try:
                acts = self._prefix(boundary, xs, precision)
            except TypeError as exc:
                problem = f"{exc}, not a tensor the cache can hand over"
            else:
                if any(boundary.templates.get(m) is None for m in boundary.modules):
                    problem = "a module of these groups returns more than one tensor"
                elif isinstance(xs, dict) and acts.dim() >= 3 and _lengths(xs, acts) is None:
                    problem = "the activations are not one row per token of right-padded sequences"
                else:
                    with self._stubbed(boundary, acts), precision():
                        got = self.model(xs)
                    if not (isinstance(ref, torch.Tensor) and torch.allclose(got.float(), ref.float(), 1e-4, 1e-5)):
                        problem = "the network's output from the cached activations differs from the full forward"
        if problem is not None:
            self.plans[boundary.frozen] = problem
            self._say(f"frozen-prefix cache off while {self._span()} are frozen: {problem}")
            return False
        boundary.checked = True
        self._say(f"frozen-prefix cache on: {self._span()} computed once per example (output of {boundary.last})")
        return True
