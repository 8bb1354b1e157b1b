"""The strategy interface: a small class with no-op hooks, and the registry of strategies."""

from __future__ import annotations

from torch import nn

from headstart.config import RunConfig
from headstart.errors import HeadstartError

__all__ = ["Strategy", "register", "get_strategy", "STRATEGIES", "set_bn_eval"]


def set_bn_eval(model: nn.Module) -> None:
    """Put every BatchNorm layer in eval mode: running statistics stop changing, affine params still learn."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class Strategy:
    """What trains and how. Subclasses override the hooks they need.

    ``kind`` is ``"probe"`` (closed-form head on cached features) or ``"gradient"`` (the train loop).
    """

    name: str = ""
    kind: str = "gradient"
    pretrained: bool = True  # start from the checkpoint's weights (False: random init)

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg

    def setup(self, model: nn.Module) -> None:
        """Called once before training: set ``requires_grad``."""

    def backbone_lr_factor(self) -> float:
        return self.cfg.strategy.backbone_lr_factor

    def train_mode(self, model: nn.Module) -> None:
        """Called instead of a bare ``model.train()`` at the start of every epoch."""
        model.train()

    def on_epoch_begin(self, model: nn.Module, epoch: int) -> list[str]:
        """Called before each epoch; returns event strings for the history."""
        return []


STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    STRATEGIES[cls.name] = cls
    return cls


def get_strategy(cfg: RunConfig) -> Strategy:
    name = cfg.strategy.name
    if name not in STRATEGIES:
        raise HeadstartError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](cfg)
