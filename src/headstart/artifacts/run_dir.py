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

from safetensors.torch import load_file, save_file
from torch import nn

from headstart.backbones.catalog import build_architecture
from headstart.backbones.recipe import Recipe
from headstart.backbones.text import TextClassifier, TextRecipe, load_encoder
from headstart.config import RunConfig
from headstart.engine.checkpoint import has_checkpoint
from headstart.errors import HeadstartError
from headstart.strategies.tfidf import VOCABULARY_FILE, TfidfClassifier, TfidfRecipe

__all__ = ["RunFiles", "LoadedRun", "write_run", "load_run", "package_versions", "MANIFEST", "ENCODER_DIR"]

MANIFEST = "headstart.json"
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
    if out.exists() and not (out / MANIFEST).is_file() and not has_checkpoint(out) and any(out.iterdir()):
        raise HeadstartError(
            f"--out {str(out)!r} exists and is not a headstart run; choose a new folder (nothing was overwritten)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in files.model.state_dict().items()}
        save_file(
            state, str(tmp / "model.safetensors"), metadata={"format": "headstart", "version": str(FORMAT_VERSION)}
        )
        _json(tmp / MANIFEST, {"format_version": FORMAT_VERSION, **files.manifest})
        _json(tmp / "metrics.json", files.metrics)
        _json(tmp / "splits.json", files.splits)
        (tmp / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in files.history))
        for name, text in files.extra.items():
            (tmp / name).write_text(text)
        for name, write in files.folders.items():
            (tmp / name).mkdir()
            write(tmp / name)
        old = None
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
        return json.loads((self.path / "splits.json").read_text())


def load_run(path: str | Path) -> LoadedRun:
    """Rebuild the network from the manifest and load ``model.safetensors`` (no pickle involved)."""
    p = Path(path)
    if not (p / MANIFEST).is_file() or not (p / "model.safetensors").is_file():
        raise HeadstartError(
            f"{str(p)!r} is not a headstart run (no {MANIFEST} / model.safetensors); "
            "pass the --out folder of `headstart train`"
        )
    manifest = json.loads((p / MANIFEST).read_text())
    labels = manifest["labels"]
    model, recipe = _rebuild(p, manifest)
    state = load_file(str(p / "model.safetensors"))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise HeadstartError(
            f"{p}/model.safetensors does not match {manifest['backbone']['architecture']}: {exc}"
        ) from exc
    model.eval()
    return LoadedRun(
        path=p,
        model=model,
        recipe=recipe,
        labels=labels,
        config=RunConfig.from_dict(manifest["config"]),
        manifest=manifest,
    )


def _rebuild(p: Path, manifest: dict[str, Any]) -> tuple[nn.Module, Any]:
    """The untrained network and the recipe of the run in ``p``."""
    n = len(manifest["labels"])
    kind = manifest["recipe"].get("modality", "image")
    if kind == "tfidf":
        vocabulary = (p / VOCABULARY_FILE).read_text().splitlines()
        return TfidfClassifier(vocabulary, n), TfidfRecipe.from_dict(manifest["recipe"], vocabulary)
    if kind == "text":
        recipe = TextRecipe.from_dict(manifest["recipe"], tokenizer=str(p / ENCODER_DIR))
        encoder = load_encoder(str(p / ENCODER_DIR), pretrained=False)
        return TextClassifier(encoder, n, recipe.pooling, recipe.normalize), recipe
    return build_architecture(manifest["backbone"]["architecture"], num_classes=n), Recipe.from_dict(manifest["recipe"])
