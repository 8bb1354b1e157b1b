"""Atomic writes, implemented once: build beside the target, then rename into place.

A reader (or a kill at any moment) sees the old file or folder or the new one, never half of one. The
temporary lies in the target's folder (``os.replace`` is atomic only within one file system) and gets
the mode a plain ``open`` / ``mkdir`` would give (:mod:`headstart._permissions`), so runs, checkpoints,
feature caches and reports stay readable by teammates.

Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "sub" / "report.md"
    >>> write_text_atomic(target, "# hello\\n").read_text()
    '# hello\\n'
    >>> with atomic_dir(target.parent / "run") as tmp:
    ...     _ = (tmp / "a.txt").write_text("a")
    >>> sorted(p.name for p in (target.parent / "run").iterdir())
    ['a.txt']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from headstart._permissions import share_dir, share_file

__all__ = ["atomic_path", "atomic_dir", "write_bytes_atomic", "write_text_atomic"]


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary file path beside ``path`` (its folder is created); when the block ends without error
    the file gets the shared mode and replaces ``path``, and on error it is removed and ``path`` is untouched.

    The temporary exists (empty) when yielded: writers that open it by name (safetensors' ``save_file``,
    ``Path.write_bytes``) overwrite it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        share_file(tmp)  # mkstemp (and safetensors) create 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    return write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def atomic_dir(path: Path, previous: Path | None = None) -> Iterator[Path]:
    """Yield a new empty folder beside ``path`` to fill; when the block ends without error its files get the
    shared mode and it replaces ``path``. On error it is removed and ``path`` is untouched.

    An existing ``path`` is first renamed to ``previous`` (default ``.NAME.old-PID`` beside it) and removed
    after the swap, so between the two renames the old contents are still complete under ``previous``:
    a reader that finds no ``path`` can fall back to it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = previous if previous is not None else path.with_name(f".{path.name}.old-{os.getpid()}")
    tmp = share_dir(Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-")))  # mkdtemp makes it 0700
    try:
        yield tmp
        for folder, _, names in os.walk(tmp):
            for name in names:
                if not os.path.islink(file := Path(folder) / name):
                    share_file(file)  # safetensors writes 0600
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
