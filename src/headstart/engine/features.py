"""Feature extraction paid once: pooled backbone features cached on disk.

The cache key covers everything that changes the numbers: backbone and weights identity, the
resolved recipe, the data fingerprint and the runtime (precision, memory format). Files are
safetensors (no pickle), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from torch import nn

from headstart._atomic import atomic_path
from headstart._cache import cache_dir, warn_unwritable
from headstart.backbones.recipe import Recipe
from headstart.data.loader import SkipLog
from headstart.data.pipeline import eval_loader
from headstart.engine import distributed
from headstart.engine.inference import run_features
from headstart.engine.runtime import Runtime

__all__ = ["FeatureSet", "cache_dir", "feature_key", "extract_features"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class FeatureSet:
    features: np.ndarray  # (N, D) float32 pooled features, in ImageSet order
    valid: np.ndarray  # (N,) bool; False for unreadable images
    key: str  # cache key
    cached: bool  # True when read from the cache
    seconds: float  # time spent extracting (or reading)


def feature_key(backbone_id: dict, recipe: Recipe, fingerprint: str, runtime: Runtime) -> str:
    payload = {
        "v": FORMAT_VERSION,
        "backbone": backbone_id,
        "recipe": recipe.to_dict(),
        "data": fingerprint,
        "precision": runtime.precision,
        "channels_last": runtime.channels_last,
        "device": runtime.device.type,
    }
    return hashlib.blake2b(json.dumps(payload, sort_keys=True).encode(), digest_size=16).hexdigest()


def extract_features(
    model: nn.Module,
    images: Any,
    recipe: Recipe,
    runtime: Runtime,
    backbone_id: dict,
    batch_size: int,
    skips: SkipLog,
    num_workers: int = 0,
    use_cache: bool = True,
    fingerprint: str | None = None,
    rows: np.ndarray | None = None,
) -> FeatureSet:
    """Features of the images at ``rows`` (default: all), eval transform, inference mode, cached.

    The cache file of a dataset holds all its rows and a ``done`` mask: a call extracts only the
    requested rows that no earlier call extracted, and adds them to the file. Rows not requested
    (and not cached) are returned as zeros with ``valid`` False. ``fingerprint`` is
    ``images.fingerprint()`` when the caller already has it.
    """
    start = time.perf_counter()
    n = len(images)
    wanted = np.zeros(n, dtype=bool)
    wanted[np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)] = True
    key = feature_key(backbone_id, recipe, fingerprint or images.fingerprint(), runtime)
    path = cache_dir() / "features" / f"{key}.safetensors"
    cached = _read_cache(path, n) if use_cache else None
    if cached is not None:
        feats, valid, done, skipped = cached
        if done[wanted].all():
            logger.info("feature cache hit %s", path)
            skips.add(skipped)
            return FeatureSet(feats, valid & done, key, True, time.perf_counter() - start)
    else:
        feats, valid, done, skipped = None, np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), []
    missing = np.flatnonzero(wanted & ~done)
    model = runtime.model(model)
    index = distributed.shard(missing)  # each rank extracts its share; gathered below
    loader = eval_loader(images, index, recipe, batch_size, num_workers=num_workers)
    local = SkipLog()
    new, new_valid = run_features(model, loader, n, runtime, recipe, local, "extracting features")
    if distributed.is_distributed():  # every rank's rows of ``missing`` (sorted, so in ``missing`` order)
        rows_new, ok_new = _gather(new, new_valid, index)
    else:
        rows_new, ok_new = new[missing], new_valid[missing]
    if feats is None:
        feats = np.zeros((n, rows_new.shape[1]), dtype=np.float32)
    if rows_new.shape[1] == feats.shape[1]:  # (k, 0) when every new image was unreadable
        feats[missing] = rows_new
    valid[missing], done[missing] = ok_new, True
    skipped = skipped + [m for m in local.items.values() if m not in skipped]
    skips.add(skipped)
    if use_cache and distributed.is_main():
        arrays = {
            "features": feats,
            "valid": valid.astype(np.uint8),
            "done": done.astype(np.uint8),
            "skipped": np.frombuffer(json.dumps(skipped).encode(), dtype=np.uint8),
        }
        _save_cache(path, arrays, {"source": images.source, "n": str(n)})
    return FeatureSet(feats, valid & done, key, False, time.perf_counter() - start)


def _save_cache(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, str]) -> None:
    """Write the cache file; a cache that cannot be written costs a warning (once per folder), never the run."""
    try:
        with atomic_path(path) as tmp:  # a shared cache: readable by the team, never half-written
            save_file(arrays, str(tmp), metadata=meta)
    except (OSError, SafetensorError) as exc:  # safetensors reports I/O errors as its own type
        warn_unwritable(path.parent, exc, "feature cache", "features are extracted again", logger)


def _read_cache(path: Path, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]] | None:
    """``(features, valid, done, skipped messages)`` of a cache file for ``n`` rows, or None."""
    if not path.is_file():
        return None
    try:
        data = load_file(str(path))
        if data["features"].shape[0] != n:
            return None
        valid = data["valid"].astype(bool)
        done = data["done"].astype(bool) if "done" in data else np.ones(n, dtype=bool)
        skipped = json.loads(data["skipped"].tobytes().decode() or "[]")
        return data["features"].copy(), valid, done, skipped
    except Exception as exc:  # noqa: BLE001 - a damaged cache file is re-made, never fatal
        logger.warning("ignoring unreadable feature cache %s (%s)", path, exc)
        return None


def _gather(feats: np.ndarray, valid: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every rank's rows of its shard ``index`` -> the rows of all shards in dataset order, on every rank."""
    rows, ok = distributed.gather_rows([feats[index], valid[index]], index)
    return rows.astype(np.float32), ok.astype(bool)
