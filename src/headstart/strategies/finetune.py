"""``finetune`` (every layer trains, smaller backbone LR) and ``scratch`` (same network, random init)."""

from __future__ import annotations

from torch import nn

from headstart.strategies.base import Strategy, register, set_bn_eval

__all__ = ["Finetune", "Scratch"]


@register
class Finetune(Strategy):
    """All layers trainable; backbone LR = head LR x ``strategy.backbone_lr_factor``.

    With ``strategy.bn=frozen`` (default) BatchNorm keeps the checkpoint's running statistics:
    small target batches otherwise overwrite them with noisy estimates.
    """

    name = "finetune"

    def setup(self, model: nn.Module) -> None:
        for p in model.parameters():
            p.requires_grad_(True)

    def train_mode(self, model: nn.Module) -> None:
        model.train()
        if self.cfg.strategy.bn == "frozen":
            set_bn_eval(model)


@register
class Scratch(Finetune):
    """The same architecture with random weights, trained by the same loop: what transfer buys.

    Random BatchNorm statistics mean nothing, so they always train, and every layer uses the
    head's learning rate (a backbone LR factor exists to protect pretrained features).
    """

    name = "scratch"
    pretrained = False

    def backbone_lr_factor(self) -> float:
        return 1.0

    def train_mode(self, model: nn.Module) -> None:
        model.train()
