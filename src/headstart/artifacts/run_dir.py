"""Run directories: written atomically, loaded without unpickling anything.

Layout: ``model.safetensors``, ``headstart.json`` (manifest), ``metrics.json``, ``history.jsonl``,
``splits.json``. A run is first written to a sibling temporary folder and renamed into place,
so an interrupted write never leaves a half-run behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from headstart._permissions import share_dir, share_file
from headstart.artifacts.manifest import damaged_run, read_manifest
from headstart.artifacts.names import HISTORY, MANIFEST, METRICS, SPLITS, WEIGHTS
from headstart.artifacts.out_dir import check_out, hand_over
from headstart.backbones.build import build_architecture
from headstart.backbones.recipe import Recipe
from headstart.backbones.text import TextClassifier, TextRecipe, load_encoder
from headstart.backbones.tfidf import VOCABULARY_FILE, TfidfClassifier, TfidfRecipe
from headstart.config import RunConfig
from headstart.errors import HeadstartError

__all__ = ["RunFiles", "LoadedRun", "write_run", "load_run", "package_versions", "MANIFEST", "ENCODER_DIR"]

ENCODER_DIR = "encoder"  # text runs: the encoder's config.json and tokenizer files
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
    tmp = share_dir(Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-")))  # mkdtemp makes it 0700
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in files.model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "headstart", "version": str(FORMAT_VERSION)})
        share_file(tmp / WEIGHTS)  # safetensors writes 0600
        _json(tmp / MANIFEST, {"format_version": FORMAT_VERSION, **files.manifest})
        _json(tmp / METRICS, files.metrics)
        _json(tmp / SPLITS, files.splits)
        (tmp / HISTORY).write_text("".join(json.dumps(r) + "\n" for r in files.history))
        for name, text in files.extra.items():
            (tmp / name).write_text(text)
        for name, write in files.folders.items():
            (tmp / name).mkdir()
            write(tmp / name)
        old = None
        hand_over(out, tmp)  # the run's lock on ``out`` moves with its new contents
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


@dataclass
class LoadedRun:
    path: Path
    model: nn.Module  # eval mode, on CPU
    recipe: Any  # image Recipe, TextRecipe or TfidfRecipe
    labels: list[str]
    config: RunConfig
    manifest: dict[str, Any]

    @property
    def modality(self) -> str:
        return "image" if isinstance(self.recipe, Recipe) else "text"

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


def _recipe(p: Path, manifest: dict[str, Any]) -> Any:
    """The run's recipe, every value checked (an ``input_size: 100000`` would allocate tens of GB)."""
    d, kind = manifest["recipe"], manifest["recipe"].get("modality", "image")
    vocabulary = _vocabulary(p / VOCABULARY_FILE) if kind == "tfidf" else []
    try:
        if kind == "tfidf":
            return TfidfRecipe.from_dict(d, vocabulary)
        if kind == "text":
            return TextRecipe.from_dict(d, tokenizer=str(p / ENCODER_DIR))
        return Recipe.from_dict(d)
    except HeadstartError as exc:
        raise damaged_run(p / MANIFEST, f"has a bad recipe: {exc}") from exc
    except KeyError as exc:
        raise damaged_run(p / MANIFEST, f"has a recipe without the key {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise damaged_run(p / MANIFEST, f"has a bad recipe value ({exc})") from exc


def _vocabulary(file: Path) -> list[str]:
    try:
        return file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise damaged_run(file, f"cannot be read ({exc})") from exc


def _rebuild(p: Path, manifest: dict[str, Any]) -> tuple[nn.Module, Any]:
    """The untrained network and the recipe of the run in ``p`` (the recipe is checked before anything is built)."""
    n = len(manifest["labels"])
    recipe = _recipe(p, manifest)
    kind = manifest["recipe"].get("modality", "image")
    if kind == "tfidf":
        return TfidfClassifier(recipe.vocabulary, n), recipe
    if kind == "text":
        encoder = load_encoder(str(p / ENCODER_DIR), pretrained=False)
        return TextClassifier(encoder, n, recipe.pooling, recipe.normalize), recipe
    architecture = manifest["backbone"]["architecture"]
    try:
        return build_architecture(architecture, num_classes=n), recipe
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        trained_with = manifest.get("versions", {}).get("timm", "unknown")
        raise HeadstartError(
            f"{p / MANIFEST} names backbone.architecture={architecture!r}, which this timm "
            f"({package_versions().get('timm', '?')}) cannot build ({exc}); the run was trained with timm "
            f"{trained_with}: install that version (pip install timm=={trained_with})"
        ) from exc
