"""Real datasets that install offline from package registries (``builtin:NAME``)."""

from __future__ import annotations

import gzip
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

import numpy as np

from headstart._cache import cached_arrays
from headstart.data.audio import AudioSet
from headstart.data.images import ImageSet
from headstart.data.texts import TextSet
from headstart.errors import HeadstartError
from headstart.registry import unknown_choice

__all__ = ["BUILTINS", "Builtin", "builtin_modality", "known_builtins", "load_builtin", "register_builtin"]

Dataset = ImageSet | TextSet | AudioSet

logger = logging.getLogger(__name__)

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_LABELS = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
]


@dataclass(frozen=True)
class Builtin:
    """One ``builtin:NAME`` data set: its modality and the function that loads it."""

    modality: str  # image | text (the reader that is_text_source / load_data pick)
    load: Callable[[], Dataset]


BUILTINS: dict[str, Builtin] = {}  # name -> data set, every modality (filled by register_builtin)


def register_builtin(name: str, modality: str) -> Callable[[Callable[[], Dataset]], Callable[[], Dataset]]:
    """Decorator: make ``load`` reachable as ``builtin:NAME`` (the data set's own room registers it)."""

    def add(load: Callable[[], Dataset]) -> Callable[[], Dataset]:
        if name in BUILTINS:
            raise ValueError(f"builtin:{name} is registered twice")
        BUILTINS[name] = Builtin(modality, load)
        return load

    return add


def _elpv() -> ImageSet:
    """ELPV solar cells: 2,624 grey 300x300 electroluminescence images; defective = probability >= 0.5."""
    if importlib.util.find_spec("elpv_dataset") is None:
        raise HeadstartError("builtin:elpv needs the PyPI package elpv-dataset; run `pip install elpv-dataset`")
    from elpv_dataset.utils import load_dataset

    def decode() -> dict[str, np.ndarray]:
        images, proba, types = load_dataset()
        return {
            "images": np.asarray(images, dtype=np.uint8),
            "proba": np.asarray(proba, dtype=float),
            "types": np.asarray(types).astype(str),
        }

    cells = cached_arrays("elpv", f"elpv-dataset-{version('elpv-dataset')}", decode)  # decoding: ~4 s a process
    targets = (cells["proba"] >= 0.5).astype(np.int64)
    return ImageSet(
        source="builtin:elpv",
        ids=[f"builtin:elpv/{i}" for i in range(len(targets))],
        targets=targets,
        labels=["functional", "defective"],
        arrays=cells["images"],
        meta={"cell_type": cells["types"], "defect_probability": cells["proba"]},
    )


def _elpv_cells(cell_type: str) -> Callable[[], ImageSet]:
    """ELPV restricted to one cell type (mono or poly): a built-in domain shift with the same classes."""

    def load() -> ImageSet:
        cells = _elpv()
        part = cells.subset(np.flatnonzero(cells.meta["cell_type"] == cell_type))
        name = f"builtin:elpv-{cell_type}"
        return replace(part, source=name, ids=[i.replace("builtin:elpv/", name + "/") for i in part.ids])

    return load


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def _fashion_mnist() -> ImageSet:
    """Fashion-MNIST from Debian's dataset-fashion-mnist: 60k train + 10k test, 28x28 grey, 10 classes."""
    files = {
        split: (FASHION_DIR / f"{split}-images-idx3-ubyte.gz", FASHION_DIR / f"{split}-labels-idx1-ubyte.gz")
        for split in ("train", "t10k")
    }
    if not all(p.is_file() for pair in files.values() for p in pair):
        raise HeadstartError(
            f"builtin:fashion-mnist reads {FASHION_DIR}, which is missing; install Debian's package with "
            "`sudo apt-get install dataset-fashion-mnist`"
        )
    images, targets, split = [], [], []
    for name, (img_path, lab_path) in files.items():
        imgs = _read_idx(img_path, 16).reshape(-1, 28, 28)
        images.append(imgs)
        targets.append(_read_idx(lab_path, 8).astype(np.int64))
        split.append(np.full(len(imgs), "train" if name == "train" else "test"))
    all_split = np.concatenate(split)
    return ImageSet(
        source="builtin:fashion-mnist",
        ids=[f"builtin:fashion-mnist/{s}/{i}" for s, n in (("train", 60000), ("test", 10000)) for i in range(n)],
        targets=np.concatenate(targets),
        labels=list(FASHION_LABELS),
        arrays=np.concatenate(images),
        given_split=all_split,
    )


def _elpv_severity() -> ImageSet:
    """ELPV with each cell's defect probability (0, 1/3, 2/3, 1: the experts' graded severity) as its label,
    a real regression target (``--task regression``)."""
    cells = _elpv()
    proba = np.asarray(cells.meta["defect_probability"], dtype=float)
    values = sorted(set(proba.tolist()))
    index = {v: k for k, v in enumerate(values)}
    name = "builtin:elpv-severity"
    return replace(
        cells,
        source=name,
        ids=[i.replace("builtin:elpv/", name + "/") for i in cells.ids],
        targets=np.asarray([index[v] for v in proba.tolist()], dtype=np.int64),
        labels=[repr(v) for v in values],  # the readers' label strings; the regression task parses them
    )


FASHION_ITEMS = (2, 4)  # items per composed image (inclusive)
FASHION_MULTI_N = 3000  # composed images: 2,400 from the training items, 600 from the test items


def _fashion_multilabel() -> ImageSet:
    """Fashion-MNIST items composed two to four per 56x56 image (a 2x2 grid, empty cells black); the labels of
    an image are the item types present: a real-image multi-label set (``--task multilabel``)."""
    items = _fashion_mnist()
    rng = np.random.default_rng(0)
    canvases, label_sets, split = [], [], []
    for part, count in (("train", FASHION_MULTI_N * 4 // 5), ("test", FASHION_MULTI_N // 5)):
        pool = np.flatnonzero(items.given_split == part)
        for _ in range(count):
            k = int(rng.integers(FASHION_ITEMS[0], FASHION_ITEMS[1] + 1))
            chosen, cells = rng.choice(pool, size=k, replace=False), rng.permutation(4)[:k]
            canvas = np.zeros((56, 56), dtype=np.uint8)
            for item, cell in zip(chosen, cells, strict=True):
                r, c = divmod(int(cell), 2)
                canvas[28 * r : 28 * r + 28, 28 * c : 28 * c + 28] = items.arrays[item]  # type: ignore[index]
            canvases.append(canvas)
            label_sets.append("|".join(sorted({FASHION_LABELS[int(items.targets[i])] for i in chosen})))
            split.append(part)
    names = sorted(set(label_sets))
    index = {name: k for k, name in enumerate(names)}
    return ImageSet(
        source="builtin:fashion-multilabel",
        ids=[f"builtin:fashion-multilabel/{i}" for i in range(len(canvases))],
        targets=np.asarray([index[name] for name in label_sets], dtype=np.int64),
        labels=names,  # label sets joined by |; the multi-label task splits them
        arrays=np.stack(canvases),
        given_split=np.asarray(split),
    )


register_builtin("elpv", "image")(_elpv)
register_builtin("elpv-mono", "image")(_elpv_cells("mono"))
register_builtin("elpv-poly", "image")(_elpv_cells("poly"))
register_builtin("fashion-mnist", "image")(_fashion_mnist)
register_builtin("elpv-severity", "image")(_elpv_severity)
register_builtin("fashion-multilabel", "image")(_fashion_multilabel)


def known_builtins() -> list[str]:
    """Every ``builtin:NAME`` data set, of every modality, in registry order (for errors and the DATA help)."""
    return [f"builtin:{name}" for name in BUILTINS]


def builtin_modality(name: str) -> str | None:
    """The modality of ``builtin:NAME`` (``image``, ``text``), or None for an unknown name."""
    return BUILTINS[name].modality if name in BUILTINS else None


def load_builtin(name: str) -> Dataset:
    """The data set ``builtin:NAME``; an unknown name lists every builtin (with a did-you-mean)."""
    if name not in BUILTINS:
        raise unknown_choice("builtin dataset", f"builtin:{name}", known_builtins())
    logger.info("loading builtin:%s", name)
    return BUILTINS[name].load()


# the other modalities' data sets register when their rooms are imported
from headstart.data import audio_builtins as _audio_builtins  # noqa: E402, F401
from headstart.data import text_builtins as _text_builtins  # noqa: E402, F401
