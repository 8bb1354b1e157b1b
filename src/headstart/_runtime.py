"""Process-level allocator tuning: for the whole process in the CLI (and benchmarks), around each computing call of
the Python API.

glibc's default malloc returns freed memory to the OS eagerly and serves large tensors with fresh
``mmap`` calls, so every batch pays page faults. On the 2-core machines we measured conv-net CPU
throughput roughly doubling with a large mmap threshold and a lazy trim, the same settings as
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824``.

The CLI keeps them for its whole (short-lived) process. A notebook lives on after ``hs.fit`` returns, so the API
applies them only for the call (:func:`tuned_malloc`): glibc's defaults come back after it, and the memory the
call freed is handed back to the OS.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import platform
from collections.abc import Callable, Iterator

__all__ = ["tune_malloc", "tuned_malloc"]

logger = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_SETTINGS = {
    _M_MMAP_THRESHOLD: 32 * 1024 * 1024,  # the largest value glibc accepts (HEAP_MAX/2 on 64-bit)
    _M_TRIM_THRESHOLD: 16 * 1024 * 1024 * 1024,
    _M_TOP_PAD: 1024 * 1024 * 1024,
}
# glibc's own values (mallopt(3): 128 KiB each; the mmap threshold then stays fixed instead of adapting)
_GLIBC_DEFAULTS = {_M_MMAP_THRESHOLD: 128 * 1024, _M_TRIM_THRESHOLD: 128 * 1024, _M_TOP_PAD: 128 * 1024}

# tuned for the whole process (the CLI); tuned_malloc blocks open; whether the outermost one applied the settings
_state = {"process": False, "depth": 0, "block": False}


def _libc() -> ctypes.CDLL | None:
    """glibc, or None where headstart leaves the allocator alone: off glibc, ``HEADSTART_NO_MALLOC_TUNING=1``,
    or the user's own ``MALLOC_*_`` environment variables."""
    if os.environ.get("HEADSTART_NO_MALLOC_TUNING") == "1":
        return None
    if any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ):
        return None
    return _glibc()


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":  # libc_ver reads the interpreter's file
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _function(libc: ctypes.CDLL, name: str, *argtypes: type) -> Callable[..., int] | None:
    fn = getattr(libc, name, None)
    if fn is not None:
        fn.argtypes, fn.restype = list(argtypes), ctypes.c_int
    return fn


def _apply(libc: ctypes.CDLL | None, settings: dict[int, int]) -> bool:
    mallopt = None if libc is None else _function(libc, "mallopt", ctypes.c_int, ctypes.c_int)
    if mallopt is None:
        return False
    return all(mallopt(param, min(value, 2**31 - 1)) == 1 for param, value in settings.items())


def tune_malloc() -> bool:
    """Apply the allocator settings for the rest of the process (the CLI's start-up); True when they took effect.

    A no-op (returning False) off glibc, or when ``HEADSTART_NO_MALLOC_TUNING=1`` is set, or when
    the user already chose settings through the ``MALLOC_*_`` environment variables.
    """
    ok = _apply(_libc(), _SETTINGS)
    _state["process"] = _state["process"] or ok
    logger.debug("malloc tuning %s", "applied" if ok else "not applied")
    return ok


@contextlib.contextmanager
def tuned_malloc() -> Iterator[bool]:
    """The allocator settings of :func:`tune_malloc` inside the block (yields whether they apply), then glibc's
    defaults again and ``malloc_trim(0)``: the Python API's training, scoring and prediction calls run as fast as
    the CLI's, and a notebook gets its memory back after each. Nested blocks and a process the CLI tuned change
    nothing."""
    outer = _state["depth"] == 0 and not _state["process"]
    libc = _libc() if outer else None
    applied = _apply(libc, _SETTINGS)
    if outer:
        _state["block"] = applied
    _state["depth"] += 1
    try:
        yield bool(_state["process"] or _state["block"])
    finally:
        _state["depth"] -= 1
        if applied:
            _state["block"] = False
            _apply(libc, _GLIBC_DEFAULTS)
            trim = _function(libc, "malloc_trim", ctypes.c_size_t) if libc is not None else None
            if trim is not None:
                trim(0)
