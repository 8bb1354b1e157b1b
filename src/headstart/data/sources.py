"""Reading DATA arguments: class folders, split folders, ``path,label`` CSVs and ``builtin:NAME``."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from headstart.data.builtin import load_builtin
from headstart.data.images import ImageSet
from headstart.errors import HeadstartError

__all__ = ["load_images", "IMAGE_EXTENSIONS", "SPLIT_NAMES"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
SPLIT_NAMES = ("train", "val", "test")


def load_images(source: str) -> ImageSet:
    """Dispatch on the DATA argument and validate the result (non-empty, >= 2 examples per class)."""
    if not source:
        raise HeadstartError("no data given; pass a class folder, a CSV with path,label columns, or builtin:elpv")
    if source.startswith("builtin:"):
        images = load_builtin(source.removeprefix("builtin:"))
    else:
        path = Path(source)
        if not path.exists():
            raise HeadstartError(
                f"data path {source!r} does not exist; pass a folder with one subfolder per class, "
                "a CSV with path,label columns, or builtin:elpv / builtin:fashion-mnist"
            )
        if path.is_dir():
            images = _from_split_folders(path) if (path / "train").is_dir() else _from_class_folder(path, source)
        elif path.suffix.lower() in (".csv", ".tsv"):
            images = _from_csv(path)
        else:
            raise HeadstartError(f"data file {source!r} is not a folder or a .csv file")
    _check_counts(images)
    return images


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _from_class_folder(root: Path, source: str) -> ImageSet:
    classes = _class_dirs(root)
    if not classes:
        raise HeadstartError(
            f"folder {source!r} has no class subfolders; lay it out as {source}/<class name>/<image files>"
        )
    empty = [c.name for c in classes if not _list_images(c)]
    if empty:
        raise HeadstartError(
            f"class folder(s) {', '.join(empty)} in {source!r} hold no images "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))}); add images or remove the folder"
        )
    paths, targets = [], []
    for k, c in enumerate(classes):
        files = _list_images(c)
        paths += files
        targets += [k] * len(files)
    return ImageSet(
        source=source,
        ids=[p.relative_to(root).as_posix() for p in paths],
        targets=np.asarray(targets, dtype=np.int64),
        labels=[c.name for c in classes],
        paths=paths,
    )


def _from_split_folders(root: Path) -> ImageSet:
    parts = {s: _from_class_folder(root / s, str(root / s)) for s in SPLIT_NAMES if (root / s).is_dir()}
    labels = sorted({label for part in parts.values() for label in part.labels})
    missing = [label for label in labels if label not in parts["train"].labels]
    if missing:
        raise HeadstartError(
            f"classes {', '.join(missing)} appear in val/test but not in {root}/train; add training images"
        )
    ids, paths, targets, split = [], [], [], []
    for name, part in parts.items():
        ids += [f"{name}/{i}" for i in part.ids]
        paths += part.paths or []
        targets += [labels.index(part.labels[t]) for t in part.targets]
        split += [name] * len(part)
    return ImageSet(
        source=str(root),
        ids=ids,
        targets=np.asarray(targets, dtype=np.int64),
        labels=labels,
        paths=paths,
        given_split=np.asarray(split),
    )


def _from_csv(path: Path) -> ImageSet:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        if "path" not in columns or "label" not in columns:
            raise HeadstartError(
                f"CSV {str(path)!r} needs columns path,label (found: {', '.join(columns) or 'none'}); "
                "paths are relative to the CSV's folder"
            )
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    if not rows:
        raise HeadstartError(f"CSV {str(path)!r} has no rows")
    missing = [r["path"] for r in rows if not (path.parent / r["path"]).is_file()]
    if missing:
        raise HeadstartError(
            f"CSV {str(path)!r} lists {len(missing)} file(s) that do not exist, e.g. {missing[0]!r}; "
            "paths must be relative to the CSV's folder"
        )
    labels = sorted({r["label"] for r in rows})
    split = None
    if "split" in columns:
        bad = sorted({r["split"] for r in rows} - set(SPLIT_NAMES))
        if bad:
            raise HeadstartError(f"CSV column split has values {bad}; use train, val or test")
        split = np.asarray([r["split"] for r in rows])
    return ImageSet(
        source=str(path),
        ids=[r["path"] for r in rows],
        targets=np.asarray([labels.index(r["label"]) for r in rows], dtype=np.int64),
        labels=labels,
        paths=[path.parent / r["path"] for r in rows],
        given_split=split,
    )


def _check_counts(images: ImageSet) -> None:
    if len(images) == 0:
        raise HeadstartError(f"{images.source!r} holds no images")
    if len(images.labels) < 2:
        raise HeadstartError(f"{images.source!r} has a single class ({images.labels[0]!r}); classification needs >= 2")
    small = [f"{label} ({n})" for label, n in images.class_counts().items() if n < 2]
    if small:
        raise HeadstartError(
            f"class(es) with fewer than 2 examples in {images.source!r}: {', '.join(small)}; "
            "add examples (a class needs at least one for training and one for evaluation) or remove the class"
        )
