"""In-memory data for the Python API: ``(images, labels)``, ``(texts, labels)``, a pandas DataFrame or a
torch ``Dataset`` yielding ``(input, label)``, made into the same ``ImageSet`` / ``TextSet`` as files.

Images may be file paths, PIL images, (H, W) / (H, W, C) arrays or (C, H, W) tensors (uint8, or
floats in [0, 1] as torchvision's ``ToTensor`` makes them, or 16-bit); every one is decoded by the
same rules as an image file (:func:`headstart.data.images.read_image`). In-memory sets are split,
fingerprinted, cached and recorded exactly like files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from headstart.data.images import ImageSet, UnreadableImage, decode_pil, read_image, scale_to_uint8
from headstart.data.targets import LABEL_SET_SEPARATOR
from headstart.data.texts import TextSet
from headstart.errors import HeadstartError

__all__ = ["MEMORY_SOURCE", "from_memory", "image_array", "describe_input", "is_path"]

MEMORY_SOURCE = "<memory>"  # the ``source`` of every in-memory set (no file to re-read; never a path)


def is_path(x: object) -> bool:
    return isinstance(x, (str, Path))


def describe_input(x: object) -> str:
    """A short name for an input in records and messages: the path, or its type and shape."""
    if is_path(x):
        return str(x)
    if isinstance(x, Image.Image):
        return f"PIL image {x.mode} {x.width}x{x.height}"
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return f"{type(x).__name__} {tuple(x.shape)} {x.dtype}"
    return type(x).__name__


def _missing(path: str) -> str:
    """Why ``path`` is not an image file: a folder without images, a pattern that matched nothing, or absent."""
    if Path(path).is_dir():
        return "a folder holding no image files"
    if any(c in path for c in "*?["):
        return "no file matches this pattern"
    return "no such file"


def image_array(x: object, name: str | None = None) -> np.ndarray:
    """One image input as (H, W) or (H, W, 3) uint8; raises :class:`UnreadableImage` with the reason.

    >>> image_array(np.zeros((2, 3), dtype=np.float32) + 0.5).tolist()
    [[128, 128, 128], [128, 128, 128]]
    """
    name = name or describe_input(x)
    if is_path(x):
        if not Path(str(x)).is_file():
            raise UnreadableImage(f"{x}: {_missing(str(x))}")
        t = read_image(str(x))
        return t[0].numpy() if t.shape[0] == 1 else t.permute(1, 2, 0).numpy()
    if isinstance(x, Image.Image):
        return decode_pil(x, name)
    if isinstance(x, torch.Tensor):
        return _hwc(_chw_to_hwc(x.detach().cpu().numpy(), name), name)
    if isinstance(x, np.ndarray):
        return _hwc(x, name)
    raise UnreadableImage(
        f"{name}: not an image input; pass a file path, a PIL image, an (H, W[, C]) array or a (C, H, W) tensor"
    )


def _chw_to_hwc(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4):
        return np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        return arr
    raise UnreadableImage(f"{name}: a tensor image must be (C, H, W) with C = 1, 3 or 4, or (H, W)")


def _hwc(arr: np.ndarray, name: str) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of any numeric dtype -> (H, W) or (H, W, 3) uint8."""
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]  # alpha dropped, as for image files
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 3)) or min(arr.shape[:2]) < 1:
        raise UnreadableImage(
            f"{name}: an array image must be (H, W) or (H, W, C) with C = 1, 3 or 4 (channels last); "
            "for (C, H, W) pass a torch tensor or use numpy.moveaxis(x, 0, -1)"
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise UnreadableImage(f"{name}: pixel values of dtype {arr.dtype} are not numbers")
    return np.ascontiguousarray(scale_to_uint8(arr, name, sixteen_bit=arr.dtype == np.uint16))


def _label_value(label: Any) -> Any:
    """A label as given, or a list / tuple / set of labels as one string (items joined by
    :data:`~headstart.data.targets.LABEL_SET_SEPARATOR`, in a stable order) for the multi-label task."""
    if isinstance(label, (list, tuple, set, frozenset)):
        return LABEL_SET_SEPARATOR.join(sorted(str(v) for v in label))
    return label


def _class_names(labels: Sequence[Any], empty_labels: bool = False) -> tuple[list[str], np.ndarray]:
    """Class names (sorted by value when the labels compare, e.g. 2 < 10) and a target index per label.
    ``empty_labels``: an empty label (set) is kept as the name ``""``."""
    labels = [_label_value(label) for label in labels]
    values = list(dict.fromkeys(labels))
    try:
        values.sort()
    except TypeError:
        values.sort(key=str)
    names = [str(v) for v in values]
    if ("" in names and not empty_labels) or len(set(names)) < len(names):
        raise HeadstartError(
            "labels must be non-empty and distinct as text (e.g. 1 and '1' are the same class name); "
            "use one spelling per class"
        )
    index = {v: k for k, v in enumerate(values)}
    return names, np.asarray([index[v] for v in labels], dtype=np.int64)


def _pair(data: Any) -> tuple[Sequence[Any], Sequence[Any]]:
    """``(inputs, labels)`` of a tuple, a DataFrame or a torch Dataset."""
    if isinstance(data, tuple) and len(data) == 2:
        inputs, labels = data
        return list(inputs), labels.tolist() if isinstance(labels, (np.ndarray, torch.Tensor)) else list(labels)
    if type(data).__name__ == "DataFrame":
        return _frame(data)
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        items = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
        if any(not (isinstance(it, (tuple, list)) and len(it) == 2) for it in items[:1]):
            raise HeadstartError("a torch Dataset for headstart must yield (input, label) pairs")
        return [it[0] for it in items], [it[1].item() if isinstance(it[1], torch.Tensor) else it[1] for it in items]
    raise HeadstartError(
        f"cannot read data of type {type(data).__name__}; pass a path or builtin:NAME, (inputs, labels), "
        "a pandas DataFrame with path|image|text and label columns, or a torch Dataset of (input, label)"
    )


def _frame(df: Any) -> tuple[list[Any], list[Any]]:
    columns = [str(c) for c in df.columns]
    inputs = next((c for c in ("path", "image", "text") if c in columns), None)
    if inputs is None or "label" not in columns:
        raise HeadstartError(
            f"a DataFrame needs a label column and one of path, image, text (found: {', '.join(columns)}); "
            "rename yours, e.g. df.rename(columns={'review': 'text', 'stars': 'label'})"
        )
    return list(df[inputs]), list(df["label"])


def from_memory(data: Any, empty_labels: bool = False) -> ImageSet | TextSet:
    """An ``ImageSet`` (image inputs) or ``TextSet`` (strings that are not image files) from in-memory data.
    Labels are class names, numbers (regression) or lists of labels (multi-label; empty lists with
    ``empty_labels``); the task turns them into targets."""
    inputs, labels = _pair(data)
    if len(inputs) != len(labels):
        raise HeadstartError(f"got {len(inputs)} inputs but {len(labels)} labels; pass one label per input")
    if len(inputs) == 0:
        raise HeadstartError("the data holds no examples")
    names, targets = _class_names(labels, empty_labels)
    if all(isinstance(x, str) for x in inputs) and not all(Path(x).is_file() for x in inputs[:20]):
        made: ImageSet | TextSet = _texts(list(inputs), names, targets)
    else:
        made = _images(inputs, names, targets)
    return replace(made, layout="memory")


def _texts(texts: list[str], names: list[str], targets: np.ndarray) -> TextSet:
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise HeadstartError(f"{len(empty)} text(s) are empty (e.g. index {empty[0]}); remove them or fill them in")
    ids = [f"memory:{i}" for i in range(len(texts))]
    return TextSet(MEMORY_SOURCE, ids, targets, names, [t.strip() for t in texts])


def _images(inputs: Sequence[Any], names: list[str], targets: np.ndarray) -> ImageSet:
    ids = [f"memory:{i}" for i in range(len(inputs))]
    if all(is_path(x) for x in inputs):  # files stay files: decoded lazily, like a CSV of paths
        missing = [str(x) for x in inputs if not Path(str(x)).is_file()]
        if missing:
            raise HeadstartError(f"{len(missing)} image path(s) do not exist, e.g. {missing[0]!r}")
        return ImageSet(MEMORY_SOURCE, [str(x) for x in inputs], targets, names, paths=[Path(str(x)) for x in inputs])
    arrays = []
    for i, x in enumerate(inputs):
        try:
            arrays.append(image_array(x, f"image {i} ({describe_input(x)})"))
        except UnreadableImage as exc:
            raise HeadstartError(f"{exc}; fix or remove that example") from exc
    if any(a.ndim == 3 for a in arrays):  # one layout for all: grey becomes RGB where colour images are mixed in
        arrays = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
    if len({a.shape for a in arrays}) == 1:
        stacked = np.stack(arrays)
    else:
        stacked = np.empty(len(arrays), dtype=object)
        for i, a in enumerate(arrays):
            stacked[i] = a
    return ImageSet(MEMORY_SOURCE, ids, targets, names, arrays=stacked)
