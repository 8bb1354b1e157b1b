"""``lora``: low-rank adapters (Hu et al., 2021) through ``peft``, trained with the head and merged after training.

:meth:`Lora.prepare` injects a rank-``r`` update ``B @ A x alpha / r`` beside each adapted weight (``B`` starts at
zero, so the first step sees the pretrained network). Only the adapters and the head train; every base weight
stays bit-identical. :meth:`Lora.finish` adds each update into its base weight and puts the plain layer back,
so the run saves an ordinary model (the same state-dict keys as the backbone's): ``predict``, ``evaluate``,
export and serve never see ``peft``.

Adapters are injected in place (``peft.inject_adapter_in_model``), not wrapped in a ``PeftModel``, so their
parameter names stay inside the layer they adapt (``...layer.3.attention.self.query.lora_A.default.weight``)
and land in that layer's group: layer-wise learning rates and checkpoints (saved by name) work unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from headstart.backbones.layers import head_names
from headstart.config import RunConfig
from headstart.errors import HeadstartError
from headstart.strategies.base import Strategy, register

__all__ = ["Lora", "ATTENTION_PROJECTIONS", "default_targets", "lora_modules", "merge_lora"]

logger = logging.getLogger(__name__)

# The default: the attention's query and value projections, the choice of the LoRA paper (its Table 5: at a
# fixed budget of trainable parameters, adapting W_q and W_v beats any single matrix) and peft's default for
# BERT-style encoders. A backbone's projections are found by the leaf names of its Linear modules: BERT,
# RoBERTa, MiniLM and transformers' ViT name them query / value; MPNet and T5 q / v; DistilBERT q_lin / v_lin;
# LLaMA-style models q_proj / v_proj; timm's ViTs fuse query, key and value into one ``qkv``.
ATTENTION_PROJECTIONS: tuple[tuple[str, ...], ...] = (
    ("query", "value"),
    ("q", "v"),
    ("q_lin", "v_lin"),
    ("q_proj", "v_proj"),
    ("qkv",),
)
_ADAPTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)  # the layer types peft's LoRA adapts


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _matches(module_name: str, target: str) -> bool:
    """peft's rule for a name in ``target_modules``: the whole module name, or its dotted suffix."""
    return module_name == target or module_name.endswith("." + target)


def _backbone_modules(model: nn.Module, kinds: tuple[type[nn.Module], ...]) -> list[str]:
    """Names of the modules of the given types outside the classification head (and outside any adapter)."""
    head = {n.rsplit(".", 1)[0] for n in head_names(model)}
    return [n for n, m in model.named_modules() if isinstance(m, kinds) and n not in head and not _is_lora_part(n)]


def _is_lora_part(name: str) -> bool:
    return ".lora_" in name or name.startswith("lora_")


def default_targets(model: nn.Module) -> list[str] | None:
    """Leaf names of the attention projections LoRA adapts by default (:data:`ATTENTION_PROJECTIONS`), or None
    when the backbone has none (a convolutional network)."""
    leaves = {_leaf(n) for n in _backbone_modules(model, (nn.Linear,))}
    for names in ATTENTION_PROJECTIONS:
        if set(names) <= leaves:
            return list(names)
    return None


def _no_default(model: nn.Module, backbone: str) -> HeadstartError:
    convs = sorted({_leaf(n) for n in _backbone_modules(model, _ADAPTABLE)})
    shown = ", ".join(convs[:12]) + (", ..." if len(convs) > 12 else "")
    return HeadstartError(
        f"strategy lora adapts attention projections by default, and backbone {backbone!r} has none (no Linear "
        f"modules named {' / '.join(','.join(p) for p in ATTENTION_PROJECTIONS)}), and for a convolutional backbone "
        "LoRA has no established default. Use --strategy finetune, or partial to train only the last "
        "layer groups; or name the Conv2d / Linear modules to adapt, e.g. --set strategy.lora_targets=[NAME] "
        f"(this backbone's adaptable module names: {shown})"
    )


def _check_targets(model: nn.Module, targets: list[str]) -> None:
    """Every target names at least one adaptable backbone module, and none names the head (it trains whole)."""
    head = {n.rsplit(".", 1)[0] for n in head_names(model)}
    if any(_matches(h, t) for h in head for t in targets):
        raise HeadstartError(
            f"strategy.lora_targets {targets} matches the classification head, which lora trains in full; "
            "name backbone modules only"
        )
    adaptable = _backbone_modules(model, _ADAPTABLE)
    missing = [t for t in targets if not any(_matches(n, t) for n in adaptable)]
    if missing:
        names = sorted({_leaf(n) for n in adaptable})
        shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        raise HeadstartError(
            f"strategy.lora_targets names no adaptable module: {', '.join(missing)}; the backbone's Linear, Conv "
            f"and Embedding modules are named: {shown}"
        )


def lora_modules(model: nn.Module) -> dict[str, Any]:
    """The modules peft's LoRA wraps (``LoraLayer``), by name."""
    from peft.tuners.lora import LoraLayer

    return {n: m for n, m in model.named_modules() if isinstance(m, LoraLayer)}


def merge_lora(model: nn.Module) -> int:
    """Add every adapter's update into its base weight and put the plain base layer back in place of the
    wrapper, so ``model.state_dict()`` has the backbone's own keys again; returns how many layers merged."""
    wrapped = lora_modules(model)
    for name, module in wrapped.items():
        module.merge(safe_merge=True)  # refuses NaN or inf in a merged weight
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, module.get_base_layer())
    if hasattr(model, "peft_config"):  # left by inject_adapter_in_model
        del model.peft_config
    return len(wrapped)


@register
class Lora(Strategy):
    """Low-rank adapters on the attention projections (``strategy.lora_targets`` to choose), trained with the
    head from the first step; merged into the base weights after training.

    ``strategy.lora_rank`` (r), ``strategy.lora_alpha`` (the update is scaled by alpha / r) and
    ``strategy.lora_dropout`` (on the adapters' input) configure the adapters. Every layer group is trainable
    (as in ``finetune``), but inside a group only the adapters get gradients; BatchNorm statistics stay frozen,
    so nothing of the pretrained network changes until the merge. Convolutional backbones have no default
    targets and are refused with the alternatives (or take explicit ``strategy.lora_targets``).

    Learning rate: the adapters of a group get that group's LR, ``optim.lr x strategy.backbone_lr_factor x
    strategy.layer_decay ** d``. Adapters start at zero and need a larger LR than full fine-tuning (the LoRA
    paper: 4e-4..5e-4 on RoBERTa-base over many epochs, against 1e-5..3e-5 for fine-tuning), so when
    ``strategy.backbone_lr_factor`` is not given, lora's default is :attr:`default_backbone_lr_factor` = 5 (5e-3
    under the 1e-3 head) instead of the backbone's 0.05, which is set for full fine-tuning. Measured on 450
    tweets (minilm, rank 8, 3 epochs, one seed; test macro-F1): factor 0.05 0.31, 1 0.32, 2 0.53, 5 0.69;
    the linear probe 0.60, finetune 0.58. bench/bench_lora.py measures it at scale.
    """

    name = "lora"
    default_backbone_lr_factor = 5.0

    def __init__(self, cfg: RunConfig):
        super().__init__(cfg)
        self.head_params_: set[str] | None = None  # the head's parameter names, known once prepared

    def targets(self, model: nn.Module) -> list[str]:
        """``strategy.lora_targets``, or the backbone's attention projections (refusing a backbone without)."""
        given = self.cfg.strategy.lora_targets
        targets = list(given) if given is not None else default_targets(model)
        if targets is None:
            raise _no_default(model, self.cfg.model.backbone)
        _check_targets(model, targets)
        return targets

    def prepare(self, model: nn.Module) -> None:
        """Inject the adapters (once: a prepared model is left as it is) and note the head's parameters."""
        self.head_params_ = set(head_names(model))
        if lora_modules(model):
            return
        from peft import LoraConfig, inject_adapter_in_model

        s = self.cfg.strategy
        targets = self.targets(model)
        config = LoraConfig(
            r=s.lora_rank,
            lora_alpha=s.lora_alpha,  # type: ignore[arg-type]  # typed int, used as alpha / r: a float is fine
            lora_dropout=s.lora_dropout,
            target_modules=targets,
        )
        try:
            inject_adapter_in_model(config, model)
        except ValueError as exc:  # a target of a layer type peft cannot adapt
            raise HeadstartError(f"peft could not adapt strategy.lora_targets {targets}: {exc}") from exc
        logger.info("lora: rank %d adapters on %d modules (%s)", s.lora_rank, len(lora_modules(model)), targets)

    def trains_param(self, name: str) -> bool:
        """Adapters and the head; never a base weight."""
        assert self.head_params_ is not None, "call prepare(model) before asking which parameters train"
        return _is_lora_part(name) or name in self.head_params_

    def finish(self, model: nn.Module) -> None:
        merged = merge_lora(model)
        logger.info("lora: merged %d adapters into the base weights", merged)

    def bn_policy(self) -> str:
        return "frozen"  # running statistics are base weights too: LoRA leaves them as pretrained
