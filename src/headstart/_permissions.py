"""File modes for atomic writes: what a plain ``open`` / ``mkdir`` would give under the user's umask.

Runs, checkpoints, feature caches and reports are built as a temporary beside their target and
renamed into place. ``tempfile.mkdtemp`` / ``mkstemp`` create them 0700 / 0600 (and safetensors
writes its files 0600), which would make every run private to whoever trained it; teammates must be
able to read runs, so each temporary gets the mode the umask allows (0755 / 0644 under umask 022).

Example:
    >>> import tempfile
    >>> folder = share_dir(Path(tempfile.mkdtemp()))
    >>> oct(folder.stat().st_mode & 0o777) == oct(0o777 & ~umask())
    True
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

__all__ = ["umask", "share_dir", "share_file"]

_LOCK = threading.Lock()


@functools.cache
def umask() -> int:
    """The process umask, read once.

    ``os.umask`` can only be read by setting it: it is set to the strict 0o077 for that instant (a
    file another thread creates meanwhile comes out private, never world-writable) and restored at once.
    """
    with _LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def share_dir(path: Path) -> Path:
    """Give the folder ``path`` the mode ``mkdir`` would (``0o777 & ~umask``); returns ``path``."""
    os.chmod(path, 0o777 & ~umask())
    return path


def share_file(path: str | Path) -> Path:
    """Give the file ``path`` the mode ``open(..., "w")`` would (``0o666 & ~umask``); returns it as a Path."""
    os.chmod(path, 0o666 & ~umask())
    return Path(path)
