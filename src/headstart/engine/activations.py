"""Where the frozen-prefix cache keeps activations: in memory up to a budget, then in a file under the cache folder.

The file is headstart's own (``$HEADSTART_CACHE_DIR/activations/``), written append-only while a run trains and
removed when the store is cleared, closed or garbage-collected. A folder that cannot be written is reported once;
the examples that do not fit are then recomputed instead of kept.
"""

from __future__ import annotations

import logging
import os
import tempfile
import weakref
from pathlib import Path

import torch

from headstart._cache import cache_dir, warn_unwritable

__all__ = ["ActivationStore", "Budget"]

logger = logging.getLogger(__name__)


def _remove(path: str, fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    Path(path).unlink(missing_ok=True)


class Budget:
    """Bytes of memory that the stores sharing it may still fill."""

    def __init__(self, left: int):
        self.left = left


class ActivationStore:
    """Tensors by key (an example's position in the data set): in memory while the shared ``budget`` allows,
    then spilled to a file. ``get`` returns a CPU tensor equal to what ``put`` was given; ``put`` returns False
    when the tensor could not be kept (no room in memory, and the cache folder is not writable)."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self.memory: dict[int, torch.Tensor] = {}
        self.on_disk: dict[int, tuple[int, torch.Size, torch.dtype]] = {}  # key -> (offset, shape, dtype)
        self.in_memory_bytes = 0
        self.spilled_bytes = 0
        self._file: tuple[str, int] | None = None  # (path, fd)
        self._finalizer: weakref.finalize | None = None
        self._unwritable = False

    def __contains__(self, key: int) -> bool:
        return key in self.memory or key in self.on_disk

    def __len__(self) -> int:
        return len(self.memory) + len(self.on_disk)

    def put(self, key: int, tensor: torch.Tensor) -> bool:
        if key in self:  # drawn twice in one batch (balanced sampling): kept once
            return True
        t = tensor.detach().to("cpu").clone()
        size = t.numel() * t.element_size()
        if size <= self.budget.left:
            self.memory[key] = t
            self.in_memory_bytes += size
            self.budget.left -= size
            return True
        fd = self._spill_fd()
        if fd is None:
            return False  # not kept: computed again when asked
        offset = os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        self.on_disk[key] = (offset, t.shape, t.dtype)
        self.spilled_bytes += size
        return True

    def get(self, key: int) -> torch.Tensor:
        if key in self.memory:
            return self.memory[key]
        offset, shape, dtype = self.on_disk[key]
        assert self._file is not None
        size = shape.numel() * torch.empty((), dtype=dtype).element_size()
        raw = bytearray(os.pread(self._file[1], size, offset))
        return torch.frombuffer(raw, dtype=dtype).reshape(shape)

    def _spill_fd(self) -> int | None:
        if self._file is not None:
            return self._file[1]
        if self._unwritable:
            return None
        folder = cache_dir() / "activations"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix="frozen-", suffix=".bin", dir=folder)
        except OSError as exc:
            self._unwritable = True
            redo = "activations over the memory budget are computed again"
            warn_unwritable(folder, exc, "frozen-prefix activation cache", redo, logger)
            return None
        self._file = (path, fd)
        self._finalizer = weakref.finalize(self, _remove, path, fd)
        return fd

    def clear(self) -> None:
        """Forget everything and remove the spill file."""
        self.budget.left += self.in_memory_bytes
        self.memory.clear()
        self.on_disk.clear()
        self.in_memory_bytes = self.spilled_bytes = 0
        if self._finalizer is not None:
            self._finalizer()
        self._file, self._finalizer = None, None
