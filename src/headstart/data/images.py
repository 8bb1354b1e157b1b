"""``ImageSet``: a labelled collection of images held as file paths or as in-memory uint8 arrays.

:func:`read_image` is the one decoder of image files, for training, evaluation and predict alike.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image, ImageOps

from headstart.data.targets import target_bytes

__all__ = ["ImageSet", "UnreadableImage", "read_image", "decode_pil", "scale_to_uint8", "LARGE_PIXELS", "MAX_PIXELS"]

logger = logging.getLogger(__name__)

LARGE_PIXELS = 89_478_485  # over this many pixels an image is reduced on decode (Pillow's bomb-warning size)
MAX_PIXELS = 2 * LARGE_PIXELS  # over this many pixels an image is refused (Pillow's decompression-bomb error)

_warned: set[str] = set()  # keys of the one-time warnings this process has logged


class UnreadableImage(Exception):
    """An image file that cannot be decoded; the loaders skip it and count it."""


def read_image(path: str | Path) -> torch.Tensor:
    """Decode an image file into a uint8 tensor (C, H, W): C = 1 for grey images, 3 for colour.

    The EXIF orientation is applied (``PIL.ImageOps.exif_transpose``). Every Pillow mode lands in
    the 0..255 range the preprocessing recipe expects, scaled, never clipped:

    * ``L``, ``RGB``: unchanged. ``1`` (bilevel): 0 / 255. ``LA``: its grey channel.
    * alpha (``LA``, ``RGBA``, ``PA``, ``P`` with transparency) is dropped, not composited, as
      torchvision's and timm's ``convert("RGB")`` do.
    * ``P``: the palette's colours; 1 channel when every palette entry is grey, else RGB.
    * ``CMYK``, ``YCbCr``, ``HSV``, ``LAB`` and other colour modes: Pillow's ``convert("RGB")``
      (no ICC colour management).
    * 16-bit grey (``I;16``, ``I;16B``/``L``/``N``; ``I`` from a 16-bit PNG or PGM): 0..65535 to
      0..255 by dividing by 257, rounded (65535 -> 255, v * 257 -> v). 16-bit RGB(A) files are
      reduced to their high byte by Pillow itself.
    * other ``I`` (32-bit int) and ``F`` (float), per image: floats within [0, 1] are fractions
      (x 255, the torchvision / scikit-image convention); values within [0, 255] are 8-bit
      (rounded); within [0, 65535] 16-bit (/ 257); anything else (negative or larger) is stretched
      from the image's own min..max to 0..255, with one warning per process. NaN or infinite
      pixels make the image unreadable (the loaders skip and report it, predict reports it).

    Size: an image over ``LARGE_PIXELS`` (89,478,485, Pillow's warning size) is reduced on decode
    by the smallest integer factor that brings it under (a JPEG decodes at 1/2..1/8 scale, then
    ``Image.reduce`` averages boxes), with one warning per process instead of Pillow's
    ``DecompressionBombWarning``; the recipe's resize to a few hundred pixels discards that
    resolution anyway. An image over ``MAX_PIXELS`` (178,956,970) is unreadable, with the limit in
    the message. Smaller images decode exactly as they are stored.

    Raises :class:`UnreadableImage` (the path and the reason) for a file that cannot be decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # replaced by one logged warning
            with Image.open(path) as im:
                arr = _decode(im, path)
    except Image.DecompressionBombError as exc:
        raise UnreadableImage(f"{path}: {str(exc).rstrip('.')}; {_LIMIT_FIX}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadableImage(f"{path}: {exc.__class__.__name__}: {exc}") from exc
    return array_to_tensor(arr)


def _decode(im: Image.Image, path: str | Path) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 from an opened image: size limits, EXIF orientation, mode mapping."""
    size = im.size
    _check_size(path, size)
    _draft(im)
    im.load()
    _upright(im, path)
    pic = _reduce(_canonical(im))
    if pic.width * pic.height < size[0] * size[1]:
        _warn_once(
            "large",
            "%s is %dx%d (over %s pixels): reduced to %dx%d on decode; later large images are reduced the "
            "same way without another warning",
            path,
            *size,
            f"{LARGE_PIXELS:,}",
            *pic.size,
        )
    return _to_uint8(pic, path, _is_16bit(im))


_LIMIT_FIX = (
    f"headstart refuses images over {MAX_PIXELS:,} pixels (Pillow's decompression-bomb limit); "
    "downscale the file (the recipe resizes it to a few hundred pixels anyway) and try again"
)


def _warn_once(key: str, msg: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(msg, *args)


def _check_size(path: str | Path, size: tuple[int, int]) -> None:
    w, h = size
    if w * h > MAX_PIXELS:
        raise UnreadableImage(f"{path}: {w}x{h} image ({w * h:,} pixels) is too large; {_LIMIT_FIX}")


def _factor(size: tuple[int, int]) -> int:
    """The smallest integer factor that brings ``size`` under ``LARGE_PIXELS`` (1 when it is already)."""
    return max(1, math.ceil(math.sqrt(size[0] * size[1] / LARGE_PIXELS)))


def _draft(im: Image.Image) -> None:
    """Let a large JPEG decode at 1/2, 1/4 or 1/8 scale (a no-op for other formats and normal sizes)."""
    f = _factor(im.size)
    if f > 1:
        im.draft(None, (math.ceil(im.width / f), math.ceil(im.height / f)))


def _reduce(im: Image.Image) -> Image.Image:
    """Box-average an image that is still over ``LARGE_PIXELS`` after decoding."""
    f = _factor(im.size)
    return im if f == 1 else im.reduce(f)


def _upright(im: Image.Image, path: str | Path) -> None:
    """Apply the EXIF orientation in place; a malformed EXIF block leaves the image as stored."""
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError) as exc:
        logger.warning("%s: ignoring its unreadable EXIF orientation (%s: %s)", path, type(exc).__name__, exc)


def _canonical(im: Image.Image) -> Image.Image:
    """``L`` or ``RGB`` (8-bit), or ``I`` / ``F`` (scaled later by :func:`_to_uint8`)."""
    if im.mode in ("L", "RGB", "I", "F"):
        return im
    if im.mode in ("1", "LA"):
        return im.convert("L")
    if im.mode.startswith("I;16"):
        return im.convert("I")
    if im.mode in ("P", "PA"):
        palette = np.asarray(im.getpalette("RGB") or [0, 0, 0], dtype=np.uint8).reshape(-1, 3)
        grey = bool((palette == palette[:, :1]).all())
        return im.convert("L" if grey else "RGB")
    return im.convert("RGB")


def _is_16bit(im: Image.Image) -> bool:
    """A 16-bit container: ``I;16*`` modes, and ``I`` from a PNG (older Pillow) or a 16-bit PGM / PPM."""
    return im.mode.startswith("I;16") or (im.mode == "I" and im.format in ("PNG", "PPM"))


def _to_uint8(im: Image.Image, path: str | Path, sixteen_bit: bool) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 from a :func:`_canonical` image; ``I`` / ``F`` scaled as read_image says."""
    arr = np.array(im)
    if im.mode in ("L", "RGB"):
        return arr
    return scale_to_uint8(arr, path, sixteen_bit=sixteen_bit, fractions=im.mode == "F")


def decode_pil(im: Image.Image, name: str = "<PIL image>") -> np.ndarray:
    """An in-memory PIL image as (H, W) or (H, W, 3) uint8, exactly as :func:`read_image` decodes a file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _decode(im.copy(), name)
    except (OSError, ValueError) as exc:
        raise UnreadableImage(f"{name}: {exc.__class__.__name__}: {exc}") from exc


def scale_to_uint8(arr: np.ndarray, name: str | Path, sixteen_bit: bool = False, fractions: bool = True) -> np.ndarray:
    """Pixel values of any range as uint8, by :func:`read_image`'s rule (16-bit / 257, float fractions x 255,
    0..255 as is, else the image's own min..max stretched with one warning); NaN / inf: :class:`UnreadableImage`."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    x = arr.astype(np.float32, copy=False)  # exact for 16-bit and 24-bit values; ample for 8-bit output
    bad = int(np.size(x) - np.isfinite(x).sum())
    if bad:
        raise UnreadableImage(
            f"{name}: {bad} of {x.size} pixels are NaN or infinite; replace them (e.g. numpy.nan_to_num) "
            "and save the image again"
        )
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if sixteen_bit or (lo >= 0 and 255 < hi <= 65535):
        return np.rint(x / 257).astype(np.uint8)
    if fractions and lo >= 0 and hi <= 1:
        return np.rint(x * 255).astype(np.uint8)
    if lo >= 0 and hi <= 255:
        return np.rint(x).astype(np.uint8)
    _warn_once(
        "stretch",
        "%s holds values in [%g, %g], outside 0..65535: stretched its min..max to 0..255 "
        "(later such images are stretched without another warning)",
        name,
        lo,
        hi,
    )
    scale = 255 / (hi - lo) if hi > lo else 0.0
    return np.rint((x - lo) * scale).astype(np.uint8)


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
    targets: np.ndarray  # (N,) int64 class index into `labels` (a task may re-encode: values, multi-hot rows)
    labels: list[str]  # class names in index order
    paths: list[Path] | None = None  # image files
    arrays: np.ndarray | None = None  # (N, H, W) or (N, H, W, 3) uint8; an object array of such when sizes differ
    given_split: np.ndarray | None = None  # (N,) of "train" / "val" / "test" when the source defines splits
    meta: dict[str, np.ndarray] = field(default_factory=dict)  # extra per-image columns (e.g. cell type)
    layout: str = "table"  # folders (the class is the folder name) | table (a label column) | builtin | memory

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` as a uint8 tensor (C, H, W); raises :class:`UnreadableImage`."""
        if self.arrays is not None:
            return array_to_tensor(self.arrays[i])
        assert self.paths is not None
        return read_image(self.paths[i])

    def example(self, i: int) -> np.ndarray | None:
        """Image ``i`` as a report shows it: (H, W) grey or (H, W, C) uint8; None when unreadable."""
        try:
            x = self.load(i)  # (C, H, W) uint8
        except UnreadableImage:
            return None
        return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()

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
        h.update(target_bytes(self.targets))
        h.update("\x1f".join(self.ids).encode())
        if self.arrays is not None and self.arrays.dtype == object:  # images of different sizes
            for a in self.arrays:
                h.update(f"{a.shape};".encode())
                h.update(np.ascontiguousarray(a).data)
        elif self.arrays is not None:
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
