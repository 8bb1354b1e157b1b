"""The preprocessing recipe that travels with a checkpoint, and its resolution.

Resolution order is explicit: user override > checkpoint recipe > default. Changing the input
size, mean or std away from what the checkpoint was trained with silently costs accuracy, so it
is logged as a ``preprocessing mismatch`` warning naming both values.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from headstart.config import INTERPOLATIONS, PreprocessConfig
from headstart.errors import HeadstartError

if TYPE_CHECKING:  # torch is imported where a batch is checked: the catalog lists recipes without it
    import torch

__all__ = [
    "Recipe",
    "ImageRecipe",
    "DEFAULT_RECIPE",
    "resolve_recipe",
    "check_input_stats",
    "recipe_field",
    "is_int",
    "is_number",
    "MISMATCH",
    "warn_mismatch",
]

logger = logging.getLogger(__name__)

MISMATCH = "preprocessing mismatch"


class Recipe(Protocol):
    """What every preprocessing recipe offers (image, text, TF-IDF; audio next).

    ``kind`` names the recipe's plug-in (:mod:`headstart.modalities`: how a saved recipe is read back, which
    loader turns examples into batches); ``modality`` is the data it reads (``image``, ``text``)."""

    kind: ClassVar[str]
    modality: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The recipe as saved in a run's ``headstart.json`` (``recipe``)."""
        ...

    def check_batch(self, x: Any) -> str | None:
        """A warning when the first batch does not look like what the recipe produces, else None."""
        ...


@dataclass(frozen=True)
class ImageRecipe:
    """How images must look when they enter the network."""

    kind: ClassVar[str] = "image"
    modality: ClassVar[str] = "image"

    input_size: int  # square side after cropping, in pixels
    crop_pct: float  # eval: resize the short side to input_size / crop_pct, then center crop
    interpolation: str  # bilinear | bicubic | nearest
    mean: tuple[float, float, float]  # per-channel mean subtracted after scaling to [0, 1]
    std: tuple[float, float, float]  # per-channel std divided after subtracting the mean

    @property
    def resize_size(self) -> int:
        """Short-side size before the center crop (e.g. 256 for 224 at crop_pct 0.875)."""
        return int(math.floor(self.input_size / self.crop_pct))

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "modality": self.modality, **asdict(self)}
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["resize_size"] = self.resize_size
        return d

    def check_batch(self, x: torch.Tensor) -> str | None:
        """The first batch's statistics against the recipe (see :func:`check_input_stats`)."""
        return check_input_stats(x, self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageRecipe:
        """A recipe read back from a run, every value checked with the bounds of ``preprocess.*``.

        A hand-edited ``input_size: 100000`` would otherwise allocate tens of GB per image; a bad
        value is a :class:`HeadstartError` naming ``recipe.KEY``, its value and what is allowed.
        """
        interpolations = f"one of {', '.join(INTERPOLATIONS)}"
        size = recipe_field(d, "input_size", lambda v: is_int(v) and 16 <= v <= 2048, "an integer in 16..2048")
        crop = recipe_field(d, "crop_pct", lambda v: is_number(v) and 0.1 <= v <= 1, "a number in [0.1, 1]")
        interpolation = recipe_field(d, "interpolation", lambda v: v in INTERPOLATIONS, interpolations)
        mean = recipe_field(d, "mean", _three_numbers, "a list of 3 numbers")
        std = recipe_field(d, "std", lambda v: _three_numbers(v) and min(v) > 0, "a list of 3 numbers > 0")
        return cls(size, float(crop), interpolation, _floats(mean), _floats(std))


def is_int(value: Any) -> bool:
    """An integer, and not a bool (JSON ``true`` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float, and not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _three_numbers(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(is_number(v) for v in value)


def _floats(values: list[Any]) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return a, b, c


def recipe_field(d: Any, key: str, ok: Callable[[Any], bool], expected: str) -> Any:
    """``d[key]`` when ``ok`` accepts it, else a :class:`HeadstartError` naming ``recipe.KEY`` and what it must be.

    >>> recipe_field({"input_size": 224}, "input_size", is_int, "an integer")
    224
    """
    if not isinstance(d, dict) or key not in d:
        raise HeadstartError(f"recipe.{key} is missing; it must be {expected}")
    value = d[key]
    if not ok(value):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise HeadstartError(f"recipe.{key}={shown} must be {expected}")
    return value


# Used only when a checkpoint carries no recipe at all (ImageNet conventions).
DEFAULT_RECIPE = ImageRecipe(224, 0.875, "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _fmt(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(f"{x:g}" for x in v) + ")"
    return str(v)


def resolve_recipe(checkpoint: ImageRecipe | None, overrides: PreprocessConfig) -> ImageRecipe:
    """Combine explicit overrides with the checkpoint's recipe (or the default when it has none).

    Logs a ``preprocessing mismatch`` warning for every override of input size, mean or std that
    differs from the checkpoint's value.
    """
    base = checkpoint or DEFAULT_RECIPE
    resolved = ImageRecipe(
        input_size=overrides.input_size if overrides.input_size is not None else base.input_size,
        crop_pct=overrides.crop_pct if overrides.crop_pct is not None else base.crop_pct,
        interpolation=overrides.interpolation or base.interpolation,
        mean=tuple(overrides.mean) if overrides.mean is not None else base.mean,  # type: ignore[arg-type]
        std=tuple(overrides.std) if overrides.std is not None else base.std,  # type: ignore[arg-type]
    )
    if checkpoint is not None:
        for name in ("input_size", "mean", "std"):
            ours, theirs = getattr(resolved, name), getattr(checkpoint, name)
            if _differs(ours, theirs):
                warn_mismatch(name, ours, theirs)
    return resolved


def warn_mismatch(name: str, ours: Any, theirs: Any, what: str = "features") -> None:
    """Log the ``preprocessing mismatch`` warning for an override of ``preprocess.NAME`` away from the checkpoint's."""
    logger.warning(
        "%s: preprocess.%s=%s but the checkpoint was trained with %s=%s; %s will be off-distribution unless you "
        "meant it",
        MISMATCH,
        name,
        _fmt(ours),
        name,
        _fmt(theirs),
        what,
    )


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return any(abs(x - y) > 1e-6 for x, y in zip(a, b, strict=True))
    return bool(a != b)


def check_input_stats(batch: torch.Tensor, recipe: ImageRecipe) -> str | None:
    """Compare a normalized input batch (B, 3, H, W) with what the recipe implies.

    Pixels scaled to [0, 1] and normalized by the recipe must lie in
    ``[(0 - mean) / std, (1 - mean) / std]`` per channel. Values far outside that band mean the
    input was not scaled to [0, 1] (e.g. 0..255) or was normalized twice; a batch with almost no
    spread inside it means the scaling was applied twice (e.g. /255 on [0, 1] data). Returns the
    warning text (also logged) or None when the batch looks right.
    """
    x = batch.detach().float()
    import torch

    mean = torch.tensor(recipe.mean).view(1, 3, 1, 1)
    std = torch.tensor(recipe.std).view(1, 3, 1, 1)
    lo, hi = (0 - mean) / std, (1 - mean) / std  # (1, 3, 1, 1)
    width = hi - lo
    below = ((lo - x) / width).amax().item()
    above = ((x - hi) / width).amax().item()
    spread = (x.std(dim=(0, 2, 3)) / width.flatten()).max().item()
    problem = None
    if above > 0.5 or below > 0.5:
        raw = x * std + mean  # undo the recipe to show what the pixels were before normalization
        problem = (
            f"input values span [{x.min().item():.2f}, {x.max().item():.2f}] after normalization but the recipe "
            f"(mean={_fmt(recipe.mean)}, std={_fmt(recipe.std)}) implies "
            f"[{lo.min().item():.2f}, {hi.max().item():.2f}]; before normalization they spanned "
            f"[{raw.min().item():.2f}, {raw.max().item():.2f}] instead of [0, 1] "
            "(0..255 pixels, or normalized twice?)"
        )
    elif spread < 0.01:
        problem = (
            f"normalized inputs barely vary (std {spread:.4f} of the expected range); "
            "were pixels scaled to [0, 1] twice?"
        )
    if problem:
        logger.warning("%s: %s", MISMATCH, problem)
    return problem
