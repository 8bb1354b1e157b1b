"""headstart's cache folder, and the decoded data sets kept in it.

Two things live under :func:`cache_dir`: ``features/`` (pooled features of a frozen backbone,
:mod:`headstart.engine.features`) and ``datasets/`` (packaged data sets decoded once: ELPV ships 2,624 PNG
files whose decoding costs seconds in every process that reads ``builtin:elpv``, bench/README.md
"bench_speed.py"). Both are caches: deleting them costs time, never results, and a folder that cannot be
written is reported once and worked around.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from headstart._atomic import atomic_path

__all__ = ["cache_dir", "cached_arrays", "warn_unwritable"]

logger = logging.getLogger(__name__)

DATASETS_FORMAT = 1
_UNWRITABLE: set[Path] = set()  # folders already reported as unwritable (one warning per folder)


def cache_dir() -> Path:
    """``$HEADSTART_CACHE_DIR``, else ``$XDG_CACHE_HOME/headstart``, else ``~/.cache/headstart``."""
    if os.environ.get("HEADSTART_CACHE_DIR"):
        return Path(os.environ["HEADSTART_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "headstart"


def cached_arrays(name: str, key: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays ``build()`` returns, kept in ``datasets/NAME-KEY.npz`` under :func:`cache_dir` and read from
    there next time. ``key`` names what the arrays depend on (the data package's version); an unreadable file
    is built again and replaced; the file is written atomically (uncompressed: reading it is what must be fast).
    """
    path = cache_dir() / "datasets" / f"{name}-{key}-f{DATASETS_FORMAT}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {k: stored[k] for k in stored.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            logger.warning("the decoded-data cache %s is unreadable (%s); decoding the data again", path, exc)
    arrays = build()
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
    except OSError as exc:
        warn_unwritable(path.parent, exc, "decoded-data cache", "the data is decoded again", logger)
    return arrays


def warn_unwritable(folder: Path, exc: BaseException, cache: str, redo: str, log: logging.Logger) -> None:
    """Warn once per folder (on the caller's logger) that ``cache`` cannot be written there, what that costs
    (``redo`` next time) and how to keep it; the caller goes on without caching."""
    if folder in _UNWRITABLE:
        return
    _UNWRITABLE.add(folder)
    log.warning(
        "cannot write the %s in %s (%s); going on without caching, so %s next time. Point HEADSTART_CACHE_DIR at "
        "a folder you can write to keep the cache",
        cache,
        folder,
        exc,
        redo,
    )
