"""``ImageSet``: a labelled collection of images held as file paths or as in-memory uint8 arrays."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

__all__ = ["ImageSet", "UnreadableImage", "read_image"]


class UnreadableImage(Exception):
    """An image file that cannot be decoded; the loaders skip it and count it."""


def read_image(path: str | Path) -> torch.Tensor:
    """Decode an image file into a uint8 tensor (C, H, W) with C = 1 (grey) or 3 (RGB)."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("L", "I;16", "I", "F", "1"):
                arr = np.array(im.convert("L"))
            else:
                arr = np.array(im.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"{path}: {exc.__class__.__name__}: {exc}") from exc
    return array_to_tensor(arr)


def array_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, 3) uint8 -> (C, H, W) uint8 tensor; grey stays 1-channel until the transform."""
    if arr.ndim == 2:
        return torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(0)
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


@dataclass
class ImageSet:
    """Labelled images. Exactly one of ``paths`` / ``arrays`` is set."""

    modality: ClassVar[str] = "image"

    source: str  # what the user passed (folder, CSV, builtin:NAME)
    ids: list[str]  # stable identifier per image (relative path, or builtin:NAME/index)
    targets: np.ndarray  # (N,) int64 class index into `labels`
    labels: list[str]  # class names in index order
    paths: list[Path] | None = None  # image files
    arrays: np.ndarray | None = None  # (N, H, W) or (N, H, W, 3) uint8
    given_split: np.ndarray | None = None  # (N,) of "train" / "val" / "test" when the source defines splits
    meta: dict[str, np.ndarray] = field(default_factory=dict)  # extra per-image columns (e.g. cell type)

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` as a uint8 tensor (C, H, W); raises :class:`UnreadableImage`."""
        if self.arrays is not None:
            return array_to_tensor(self.arrays[i])
        assert self.paths is not None
        return read_image(self.paths[i])

    def subset(self, index: np.ndarray) -> ImageSet:
        index = np.asarray(index, dtype=np.int64)
        return replace(
            self,
            ids=[self.ids[i] for i in index],
            targets=self.targets[index],
            paths=[self.paths[i] for i in index] if self.paths is not None else None,
            arrays=self.arrays[index] if self.arrays is not None else None,
            given_split=self.given_split[index] if self.given_split is not None else None,
            meta={k: v[index] for k, v in self.meta.items()},
        )

    def fingerprint(self) -> str:
        """Changes whenever an image, a label or the class list changes (files: size + mtime)."""
        h = hashlib.blake2b(digest_size=16)
        h.update("\x1f".join(self.labels).encode())
        h.update(self.targets.astype(np.int64).tobytes())
        h.update("\x1f".join(self.ids).encode())
        if self.arrays is not None:
            h.update(np.ascontiguousarray(self.arrays).data)
        else:
            assert self.paths is not None
            for p in self.paths:
                st = p.stat()
                h.update(f"{st.st_size}:{st.st_mtime_ns};".encode())
        return h.hexdigest()

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.targets, minlength=len(self.labels))
        return {label: int(c) for label, c in zip(self.labels, counts, strict=True)}
