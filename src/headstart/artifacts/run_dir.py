"""Run directories: written atomically, loaded without unpickling anything.

Layout: ``model.safetensors``, ``headstart.json`` (manifest), ``metrics.json``, ``history.jsonl``,
``splits.json``. A run is first written to a sibling temporary folder and renamed into place,
so an interrupted write never leaves a half-run behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from headstart._atomic import atomic_dir
from headstart.artifacts.manifest import DamagedRun, damaged_run, read_manifest
from headstart.artifacts.names import ENCODER_DIR, HISTORY, MANIFEST, METRICS, SPLITS, WEIGHTS
from headstart.artifacts.out_dir import check_out, hand_over
from headstart.backbones.recipe import Recipe
from headstart.config import RunConfig
from headstart.errors import HeadstartError
from headstart.modalities import recipe_kind, saved_recipe_kind
from headstart.tasks import Task, task_of_manifest

__all__ = ["RunFiles", "LoadedRun", "write_run", "load_run", "package_versions", "MANIFEST", "ENCODER_DIR"]

FORMAT_VERSION = 1


def package_versions() -> dict[str, str]:
    out = {}
    for name in (
        "headstart",
        "torch",
        "torchvision",
        "timm",
        "transformers",
        "tokenizers",
        "scikit-learn",
        "numpy",
        "safetensors",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass
class RunFiles:
    """Everything a run directory holds, in memory."""

    model: nn.Module
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    splits: dict[str, Any]
    extra: dict[str, str] = field(default_factory=dict)  # further text files (name -> content)
    folders: dict[str, Callable[[Path], None]] = field(default_factory=dict)  # subfolder -> writes its files


def _json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n")


def write_run(out: Path, files: RunFiles) -> Path:
    """Write the run into ``out`` atomically; an existing run directory there is replaced."""
    out = Path(out)
    check_out(out, resuming=True)  # a folder headstart did not write is never replaced
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out) as tmp:  # written beside ``out``, swapped in whole: never a half-written run
        state = {k: v.detach().cpu().contiguous() for k, v in files.model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "headstart", "version": str(FORMAT_VERSION)})
        _json(tmp / MANIFEST, {"format_version": FORMAT_VERSION, **files.manifest})
        _json(tmp / METRICS, files.metrics)
        _json(tmp / SPLITS, files.splits)
        (tmp / HISTORY).write_text("".join(json.dumps(r) + "\n" for r in files.history))
        for name, text in files.extra.items():
            (tmp / name).write_text(text)
        for name, write in files.folders.items():
            (tmp / name).mkdir()
            write(tmp / name)
        hand_over(out, tmp)  # the run's lock on ``out`` moves with its new contents
    return out


@dataclass
class LoadedRun:
    path: Path
    model: nn.Module  # eval mode, on CPU
    recipe: Recipe  # the run's preprocessing (image, text, TF-IDF, ...)
    labels: list[str]
    config: RunConfig
    manifest: dict[str, Any]

    @property
    def modality(self) -> str:
        return self.recipe.modality

    @property
    def task(self) -> Task:
        """What the head predicts (``headstart.json`` ``task``), as a plug-in: scores, decisions, metrics."""
        return task_of_manifest(self.manifest)

    def splits(self) -> dict[str, Any]:
        """``splits.json``: the ids of the train / val / test examples."""
        file = self.path / SPLITS
        try:
            splits = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise damaged_run(file, f"cannot be read ({exc})") from exc
        if not isinstance(splits, dict):
            raise damaged_run(file, "does not hold a JSON object")
        return splits


def load_run(path: str | Path) -> LoadedRun:
    """Rebuild the network from the manifest and load ``model.safetensors`` (no pickle involved).

    Every file is checked first: a damaged run is a :class:`HeadstartError` naming the file, the problem
    and the fix (copy the run again, or re-train), never a traceback.
    """
    p = Path(path)
    if not (p / MANIFEST).is_file() or not (p / WEIGHTS).is_file():
        raise HeadstartError(
            f"{str(p)!r} is not a headstart run (no {MANIFEST} / model.safetensors); "
            "pass the --out folder of `headstart train`"
        )
    manifest, config = read_manifest(p / MANIFEST)
    model, recipe = _rebuild(p, manifest)
    _load_weights(p / WEIGHTS, model, manifest)
    model.eval()
    return LoadedRun(path=p, model=model, recipe=recipe, labels=manifest["labels"], config=config, manifest=manifest)


def _load_weights(file: Path, model: nn.Module, manifest: dict[str, Any]) -> None:
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise damaged_run(file, f"cannot be read as safetensors ({exc})") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        network = f"{manifest['backbone']['architecture']} with {len(manifest['labels'])} classes"
        detail = " ".join(str(exc).split())[:300]  # torch lists every key, one per line
        raise damaged_run(file, f"does not match the network of {MANIFEST} ({network}): {detail}") from exc


def _recipe(p: Path, manifest: dict[str, Any]) -> Recipe:
    """The run's recipe, every value checked (an ``input_size: 100000`` would allocate tens of GB)."""
    d = manifest["recipe"]
    try:
        return recipe_kind(saved_recipe_kind(d)).read(d, p)
    except DamagedRun:  # a file beside the manifest (the vocabulary) cannot be read: that error names it
        raise
    except HeadstartError as exc:
        raise damaged_run(p / MANIFEST, f"has a bad recipe: {exc}") from exc
    except KeyError as exc:
        raise damaged_run(p / MANIFEST, f"has a recipe without the key {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise damaged_run(p / MANIFEST, f"has a bad recipe value ({exc})") from exc


def _rebuild(p: Path, manifest: dict[str, Any]) -> tuple[nn.Module, Recipe]:
    """The untrained network and the recipe of the run in ``p`` (the recipe is checked before anything is built)."""
    recipe = _recipe(p, manifest)
    return recipe_kind(recipe).rebuild(p, manifest, recipe, len(manifest["labels"])), recipe
