"""The modality plug-in: what a kind of data (images, texts, audio) brings to the pipeline.

A :class:`Modality` says how its data is read (which DATA arguments it claims and how it loads them),
how a catalog backbone of that modality is built and its recipe resolved, what its from-scratch baseline
trains, and how a saved model takes inputs for ``predict``. A :class:`RecipeKind` says, for one kind of
recipe (``image``, ``text``, ``tfidf``), how a run's saved recipe is read back, how its network is rebuilt,
which loaders turn examples into batches and which files travel with the weights.

Everything else asks the registries (:func:`get_modality`, :func:`modality_of_source`, :func:`recipe_kind`)
instead of testing ``modality == "text"`` or ``isinstance(recipe, TextRecipe)``, the way timm's
``create_model`` asks its ``@register_model`` table.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headstart.errors import HeadstartError
from headstart.registry import unknown_choice

if TYPE_CHECKING:  # the registry itself stays light: plug-ins import torch where they build things
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from headstart.backbones.catalog import BackboneSpec
    from headstart.backbones.recipe import Recipe
    from headstart.config import DataConfig, PreprocessConfig

__all__ = [
    "Modality",
    "RecipeKind",
    "MODALITIES",
    "RECIPE_KINDS",
    "register_modality",
    "register_recipe_kind",
    "get_modality",
    "known_recipe_kinds",
    "modality_of_source",
    "recipe_kind",
    "saved_recipe_kind",
    "expand_files",
]


@dataclass(frozen=True)
class RecipeKind:
    """One kind of preprocessing recipe and the network family it feeds."""

    name: str  # the recipe's ``kind`` (ImageRecipe.kind, TextRecipe.kind, ...)
    # a saved run's recipe: (manifest["recipe"], run folder for files beside it) -> Recipe
    read: Callable[[dict[str, Any], Path], Recipe]
    # the untrained network of a saved run: (run folder, manifest, recipe, number of outputs) -> module
    rebuild: Callable[[Path, dict[str, Any], Recipe, int], nn.Module]
    # deterministic batches of data[index]: (data, index, recipe, batch_size, num_workers) -> loader
    eval_loader: Callable[[Any, np.ndarray, Recipe, int, int], DataLoader]
    # shuffled training batches: (data, index, recipe, preprocess, batch_size, generator, drop_last,
    # num_workers, sample weights or None) -> loader
    train_loader: Callable[
        [Any, np.ndarray, Recipe, PreprocessConfig, int, torch.Generator, bool, int, np.ndarray | None], DataLoader
    ]
    # files that travel with the weights: (model, recipe) -> ({file name: text}, {folder: writes its files})
    run_files: Callable[[nn.Module, Recipe], tuple[dict[str, str], dict[str, Callable[[Path], None]]]]
    # the recipe's preprocessing as one callable (the public API's ``Model.transform``)
    transform: Callable[[Recipe], Callable[..., Any]]


@dataclass(frozen=True)
class Modality:
    """A kind of data and everything the pipeline needs to transfer a model to it."""

    name: str  # image | text
    backbone_hint: str  # catalog backbones to suggest when data and backbone disagree
    input_field: str  # the field naming an input in predict's records (path | text)
    # does DATA hold this modality? (source, data config) -> bool; modalities are asked in registry order
    claims: Callable[[str, DataConfig], bool]
    # DATA as a labelled set: (source, data config, empty labels allowed) -> ImageSet | TextSet | ...
    load: Callable[[str, DataConfig, bool], Any]
    # a catalog entry's network and checkpoint recipe: (spec, outputs or None, pretrained, drop_rate)
    create_model: Callable[[BackboneSpec, int | None, bool, float], tuple[nn.Module, Recipe]]
    # the run's recipe: the checkpoint's, with the user's ``preprocess.*`` overrides
    resolve_recipe: Callable[[Recipe, PreprocessConfig], Recipe]
    # adapt a built network to the resolved recipe (text: pooling and normalization); most do nothing
    prepare: Callable[[nn.Module, Recipe], None]
    # what ``scratch`` trains: (fitter) -> fitted; the randomly initialised backbone unless the
    # modality has a better no-pretraining baseline (text: TF-IDF + logistic regression)
    baseline: Callable[[Any], Any]
    # facts a run records about its data (text: skipped rows, truncated texts): (data, recipe) -> dict
    data_facts: Callable[[Any, Recipe], dict[str, Any]]
    # a saved model's predictions: (loaded run, inputs, batch size) -> records like ``predict --format json``
    predict: Callable[[Any, Sequence[Any], int | None], list[dict[str, Any]]]
    # the CLI's predict arguments as inputs: (positional arguments, --text values) -> inputs
    cli_inputs: Callable[[list[str], list[str]], list[Any]]
    # the fine-tuning strategy the benchmarks favour for this modality, and why (``headstart advise``); None: no
    # modality-wide preference (the data's size and shift decide)
    fine_tune_advice: tuple[str, str] | None = None
    fallback: bool = False  # asked last for DATA (images: any folder or file list no other modality claims)
    # modalities are asked for DATA in this order (lower first), so a precise claim (audio: the files a table
    # names are sound files) comes before a broad one (text: any JSONL)
    claim_order: int = 50


MODALITIES: dict[str, Modality] = {}  # name -> modality, in registration order
RECIPE_KINDS: dict[str, RecipeKind] = {}  # recipe kind -> plug-in


def register_modality(modality: Modality) -> Modality:
    """Add a modality (a plug-in module calls this when it is imported)."""
    MODALITIES[modality.name] = modality
    return modality


def register_recipe_kind(kind: RecipeKind) -> RecipeKind:
    RECIPE_KINDS[kind.name] = kind
    return kind


def get_modality(name: str) -> Modality:
    """The registered modality ``name``; an unknown name lists the known ones."""
    _load_plugins()
    if name not in MODALITIES:
        raise unknown_choice("modality", name, MODALITIES)
    return MODALITIES[name]


def modality_of_source(source: str, cfg: DataConfig) -> Modality:
    """The first registered modality that claims DATA ``source``."""
    _load_plugins()
    for modality in sorted(MODALITIES.values(), key=lambda m: (m.fallback, m.claim_order)):
        if modality.claims(source, cfg):
            return modality
    raise HeadstartError(f"{source!r} holds no data headstart can read ({', '.join(MODALITIES)})")


def recipe_kind(recipe: Recipe | str) -> RecipeKind:
    """The plug-in of a recipe (or of a recipe kind's name)."""
    _load_plugins()
    name = recipe if isinstance(recipe, str) else recipe.kind
    if name not in RECIPE_KINDS:
        raise unknown_choice("recipe kind", name, RECIPE_KINDS)
    return RECIPE_KINDS[name]


def known_recipe_kinds() -> list[str]:
    """Every registered recipe kind, sorted (for the checks of a saved run; registration order depends on which
    module a process imports first)."""
    _load_plugins()
    return sorted(RECIPE_KINDS)


def expand_files(items: Sequence[str], extensions: Collection[str]) -> list[str]:
    """Predict inputs as files: a folder becomes its files with one of ``extensions`` (recursively, sorted), a
    glob pattern its matches; anything else is kept as given (a missing file then gets its own error record)."""
    import glob

    out: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
            out += found or [item]  # an empty folder: one record saying so
        elif not path.exists() and any(c in item for c in "*?["):
            out += sorted(glob.glob(item, recursive=True)) or [item]
        else:
            out.append(item)
    return out


def saved_recipe_kind(d: dict[str, Any]) -> str:
    """The kind of a recipe as saved in ``headstart.json`` (runs before ``kind`` was written: ``modality``)."""
    return str(d.get("kind") or d.get("modality") or "image")


def _load_plugins() -> None:
    """Register the modalities that ship with headstart (importing them registers them)."""
    import headstart.modalities.audio  # noqa: F401
    import headstart.modalities.image  # noqa: F401
    import headstart.modalities.text  # noqa: F401
