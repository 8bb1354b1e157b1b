"""The strategy interface: a small class with no-op hooks, and the registry of strategies.

A strategy decides which layer groups train and when; it never touches the optimizer. Its answers
are plain data (group names, step numbers), so the train loop, ``headstart plan`` and checkpoints
all read the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from headstart.config import RunConfig
from headstart.registry import unknown_choice

__all__ = [
    "Fitter",
    "Strategy",
    "register",
    "get_strategy",
    "STRATEGIES",
    "next_frozen",
    "PlateauTrigger",
    "PlateauRule",
    "val_per_train",
]


class Fitter(Protocol):
    """The steps a strategy composes (:class:`headstart.engine.fitting.RunFitter` implements them for a run)."""

    def probe(self) -> Any:
        """Fit the head in closed form on cached features of the frozen backbone (the linear probe)."""

    def probe_head(self) -> None:
        """Start the head from the probe's, temperature-scaled on validation (lp-ft's first phase)."""

    def train(self) -> Any:
        """The gradient train loop, gated by the strategy's freeze plan."""

    def baseline(self) -> Any:
        """The modality's no-pretraining baseline (images: the random-init network, trained end to end)."""


class Strategy:
    """What trains and how. Subclasses override the hooks they need.

    :meth:`fit` composes the steps the strategy needs (probe, probe head then gradients, gradients only,
    the modality's baseline); the plan hooks below say which layer groups train and when.
    """

    name: str = ""
    gradients: bool = True  # trained by the train loop (False: closed form on cached features only)
    pretrained: bool = True  # start from the checkpoint's weights (False: random init)
    domain_loss: str | None = None  # the domain-alignment loss trained beside the task's (dann, coral) on --target
    default_backbone_lr_factor: float | None = None  # strategy.backbone_lr_factor when not given (None: the backbone's)

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg

    def fit(self, fitter: Fitter) -> Any:
        """Train the run's model; the default is the gradient train loop from the pretrained weights."""
        return fitter.train()

    def head_lr(self) -> float:
        """``optim.lr``: the head's learning rate (its default depends on the task)."""
        lr = self.cfg.optim.lr
        assert lr is not None, "resolve the config with runner.resolve_config(cfg, spec) first"
        return lr

    def backbone_lr_factor(self) -> float:
        factor = self.cfg.strategy.backbone_lr_factor
        assert factor is not None, "resolve the config with runner.resolve_config(cfg, spec) first"
        return factor

    def bn_policy(self) -> str:
        """``frozen``: running statistics never change; ``train``: they update in trainable groups."""
        return self.cfg.strategy.bn

    def prepare(self, model: Any) -> None:
        """Change the network in place before the train loop builds its optimizer (``lora`` injects its
        adapters); the default changes nothing."""

    def trains_param(self, name: str) -> bool:
        """Whether parameter ``name`` of a trainable layer group gets gradients (``lora``: only its adapters
        and the head); the default: every parameter of a trainable group."""
        return True

    def finish(self, model: Any) -> None:
        """Change the network in place after the train loop loaded its best weights (``lora`` merges its
        adapters into the base weights, so the saved model is an ordinary one); the default changes nothing."""

    def adapts_bn(self) -> bool:
        """Re-estimate BatchNorm statistics on the target after training (AdaBN; ``strategy.adabn``)."""
        return self.cfg.strategy.adabn

    def initial_trainable(self, groups: list[str]) -> list[str]:
        """Groups (names, input to output order) that train from the first step."""
        return list(groups)

    def scheduled_unfreezes(self, groups: list[str], steps_per_epoch: int, epochs: int) -> dict[str, int]:
        """Groups that become trainable at a given optimizer step (0-based)."""
        return {}

    def unfreezes_on_plateau(self) -> bool:
        """True when the next frozen group unfreezes as validation stops improving."""
        return False

    def plateau_rule(
        self, groups: list[str], steps_per_epoch: int, epochs: int, val_per_train: float
    ) -> PlateauRule | None:
        """When validation is checked and what a plateau does (None: no plateau unfreezing); ``val_per_train``:
        the validation split's size over the training split's (validation costs time)."""
        return None


def val_per_train(splits: Any) -> float:
    """The validation split's size over the training split's (what a plateau check costs, relatively)."""
    return len(splits["val"]) / max(1, len(splits["train"]))


def next_frozen(groups: list[str], trainable: set[str]) -> str | None:
    """The frozen group closest to the head (groups are ordered input -> output)."""
    frozen = [g for g in groups if g not in trainable]
    return frozen[-1] if frozen else None


@dataclass(frozen=True)
class PlateauRule:
    """How ``plateau`` watches validation: before the first step (the starting head's score), every
    ``eval_every`` optimizer steps and at each epoch's end; ``patience`` checks in a row without a relative gain
    of ``min_delta`` over the best so far unfreeze the next ``groups`` groups."""

    eval_every: int
    patience: int
    min_delta: float
    groups: int

    def describe(self) -> str:
        """The rule in words (``headstart plan`` and ``plan.md``).

        >>> PlateauRule(6, 2, 0.005, 3).describe()
        'check validation every 6 steps and at epoch ends; 2 checks without a 0.5% gain unfreeze 3 more groups'
        """
        gain = f"a {self.min_delta * 100:g}% gain" if self.min_delta else "a gain"
        checks = "1 check" if self.patience == 1 else f"{self.patience} checks"
        groups = "1 more group" if self.groups == 1 else f"{self.groups} more groups"
        every = f"check validation every {self.eval_every} steps and at epoch ends"
        return f"{every}; {checks} without {gain} unfreeze {groups}"


class PlateauTrigger:
    """Fires when a maximized metric has not improved for ``patience`` consecutive updates; an improvement
    must beat the best so far by ``min_delta`` relative to its size (0.01: 1%).

    >>> t = PlateauTrigger(patience=2)
    >>> [t.update(v) for v in (0.5, 0.6, 0.6, 0.59, 0.7, 0.7, 0.7)]
    [False, False, False, True, False, False, True]
    >>> t = PlateauTrigger(patience=1, min_delta=0.05)
    >>> [t.update(v) for v in (0.80, 0.83, 0.85)]  # +3.75% is not enough; 0.85 is +6.25% over 0.80
    [False, True, False]
    """

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best: float | None = None
        self.bad = 0

    def update(self, value: float) -> bool:
        if self.best is None or value > self.best + self.min_delta * abs(self.best):
            self.best, self.bad = value, 0
            return False
        self.bad += 1
        if self.bad >= self.patience:
            self.bad = 0  # give the newly unfrozen group a full patience window
            return True
        return False

    def state_dict(self) -> dict:
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad = state["best"], state["bad"]


STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    STRATEGIES[cls.name] = cls
    return cls


def get_strategy(cfg: RunConfig) -> Strategy:
    name = cfg.strategy.name
    if name not in STRATEGIES:
        raise unknown_choice("strategy", name, STRATEGIES)
    return STRATEGIES[name](cfg)
