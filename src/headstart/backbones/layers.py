"""Layer groups: a backbone's depth map, ordered from input to output.

Groups come from timm's ``group_matcher(coarse=True)`` where the model declares one (stem, one group
per stage of blocks, ...), and from the order of top-level child modules otherwise; never from
magic indices. The classification head is always the last group, named ``head``. Every parameter
belongs to exactly one group.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from headstart.backbones.build import classifier

__all__ = ["LayerGroup", "head_names", "layer_groups", "module_owners"]


@dataclass(frozen=True)
class LayerGroup:
    name: str  # e.g. stem, block.3, head
    params: tuple[str, ...]  # parameter names, in model order

    def numel(self, model: nn.Module) -> int:
        sizes = dict(model.named_parameters())
        return sum(sizes[p].numel() for p in self.params)


def head_names(model: nn.Module) -> list[str]:
    """Names of the classification head's parameters (timm's ``get_classifier()``), in model order."""
    ids = {id(p) for p in classifier(model).parameters()}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def _timm_groups(model: nn.Module, skip: set[str]) -> list[list[str]]:
    from timm.models import group_parameters

    matcher = model.group_matcher(coarse=True)  # type: ignore[operator]
    grouped = group_parameters(model, matcher)
    return [[n for n in names if n not in skip] for names in grouped.values()]


def _child_groups(model: nn.Module, skip: set[str]) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        if name not in skip:
            groups.setdefault(name.split(".", 1)[0], []).append(name)
    return list(groups.values())


def layer_groups(model: nn.Module) -> list[LayerGroup]:
    """Ordered groups ``stem, block.0 .. block.N, head`` (timm), ``embeddings, layer.0 .. layer.N, pooler, head``
    (text encoders) or ``<child>.., head`` (other modules)."""
    head = head_names(model)
    skip = set(head)
    if hasattr(model, "depth_groups"):  # text encoders: embeddings, layer.0 .. layer.N, pooler
        named = model.depth_groups()  # type: ignore[operator]
        names, raw = [n for n, _ in named], [p for _, p in named]
    elif hasattr(model, "group_matcher"):
        raw = [g for g in _timm_groups(model, skip) if g]
        names = ["stem"] + [f"block.{i}" for i in range(len(raw) - 1)]
    else:
        raw = _child_groups(model, skip)
        names = [g[0].split(".", 1)[0] for g in raw]
    groups = [LayerGroup(n, tuple(p)) for n, p in zip(names, raw, strict=True)] + [LayerGroup("head", tuple(head))]
    seen = [p for g in groups for p in g.params]
    assert sorted(seen) == sorted(n for n, _ in model.named_parameters()), (
        "layer groups must cover every parameter once"
    )
    return groups


def module_owners(model: nn.Module, groups: list[LayerGroup]) -> dict[str, str | None]:
    """Module name -> the group that owns the whole module: every parameter under it is in that group (a module
    without parameters, such as a dropout inside a transformer layer, belongs to its parent's group); None for a
    module whose parameters span groups (``blocks``) and for parameter-free modules at the top (pooling).

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.Linear(2, 2))
    >>> module_owners(net, [LayerGroup("a", ("0.weight", "0.bias")), LayerGroup("head", ("2.weight", "2.bias"))])
    {'': None, '0': 'a', '1': None, '2': 'head'}
    """
    owner = {p: g.name for g in groups for p in g.params}
    out: dict[str, str | None] = {}
    for mname, module in model.named_modules():
        names = {owner[f"{mname}.{p}" if mname else p] for p, _ in module.named_parameters()}
        if names:
            out[mname] = names.pop() if len(names) == 1 else None
        else:
            out[mname] = out.get(mname.rpartition(".")[0]) if mname else None
    return out
