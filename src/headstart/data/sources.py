"""Reading DATA arguments: class folders, split folders, ``path,label`` CSVs and ``builtin:NAME``."""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from headstart.data.builtin import load_builtin
from headstart.data.images import ImageSet
from headstart.errors import HeadstartError

__all__ = [
    "load_images",
    "check_class_counts",
    "count_txt_and_images",
    "mixed_folder_hint",
    "IMAGE_EXTENSIONS",
    "SPLIT_NAMES",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
SPLIT_NAMES = ("train", "val", "test")
BOM = b"\xef\xbb\xbf"
SAVE_AS_UTF8 = "save the file as UTF-8 (Excel: Save As 'CSV UTF-8'; or `iconv -f latin1 -t utf-8 OLD.csv > NEW.csv`)"


def load_images(source: str, empty_labels: bool = False) -> ImageSet:
    """Dispatch on the DATA argument; the result is non-empty (the task checks its labels: classes need >= 2
    examples each). ``empty_labels``: a CSV row may leave its label empty (a multi-label example with none)."""
    if not source:
        raise HeadstartError("no data given; pass a class folder, a CSV with path,label columns, or builtin:elpv")
    if source.startswith("builtin:"):
        loaded = load_builtin(source.removeprefix("builtin:"))
        if not isinstance(loaded, ImageSet):
            raise HeadstartError(f"{source} holds {loaded.modality} data, not images; pass it as DATA on its own")
        images = replace(loaded, layout="builtin")
    else:
        path = Path(source)
        if not path.exists():
            raise HeadstartError(
                f"data path {source!r} does not exist; pass a folder with one subfolder per class, "
                "a CSV with path,label columns, or builtin:elpv / builtin:fashion-mnist"
            )
        if path.is_dir():
            images = _from_split_folders(path) if (path / "train").is_dir() else _from_class_folder(path, source)
            images = replace(images, layout="folders")
        elif path.suffix.lower() in (".csv", ".tsv"):
            images = _from_csv(path, empty_labels)
        else:
            raise HeadstartError(
                f"data file {source!r} is not a folder or a .csv / .tsv file; pass a folder with one subfolder "
                "per class or a CSV with path,label columns"
            )
    _check_counts(images)
    return images


def count_txt_and_images(root: Path) -> tuple[int, int]:
    """(.txt files, image files) in the subfolders of ``root``, hidden files and folders skipped.

    A folder is text data when it holds more ``.txt`` files than images (a tie is image data), so one stray
    image does not turn a text set into an image set, nor a ``notes.txt`` an image set into a text set.
    """
    n_txt = n_images = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if Path(dirpath) == root:
            continue
        for name in filenames:
            suffix = os.path.splitext(name)[1].lower()
            n_txt += suffix == ".txt" and not name.startswith(".")
            n_images += suffix in IMAGE_EXTENSIONS
    return n_txt, n_images


def mixed_folder_hint(root: Path) -> str:
    """What a folder's class folders hold and what to do, when they mix .txt files and images; else ""."""
    n_txt, n_images = count_txt_and_images(root)
    if not (n_txt and n_images):
        return ""
    return (
        f" (its class folders hold {n_txt} .txt file(s) and {n_images} image(s): if this is text data, "
        "remove the images; if it is image data, remove the .txt files)"
    )


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
    files = {c.name: _list_images(c) for c in classes}
    empty = [name for name, found in files.items() if not found]
    if empty:
        raise HeadstartError(
            f"class folder(s) {', '.join(empty)} in {source!r} hold no images "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))}){mixed_folder_hint(root)}; add images or remove the folder"
        )
    paths = [p for found in files.values() for p in found]
    targets = [k for k, found in enumerate(files.values()) for _ in found]
    return ImageSet(
        source=source,
        ids=[p.relative_to(root).as_posix() for p in paths],
        targets=np.asarray(targets, dtype=np.int64),
        labels=list(files),
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


# --- CSV ---------------------------------------------------------------------------------------------------


def _from_csv(path: Path, empty_labels: bool = False) -> ImageSet:
    """``path,label[,split]`` rows; a path is read relative to the CSV's folder (``../`` and absolute work too).

    The id of a row is its path as written (stable wherever the run is started); a path listed again gets
    `` (row N)`` appended, so ids stay unique and ``splits.json`` round-trips.
    """
    columns, rows = _read_csv(path)
    _check_cells(path, rows, empty_labels)
    files = _files(path, rows)
    labels = sorted({r["label"] for r in rows})
    index = {label: k for k, label in enumerate(labels)}
    return ImageSet(
        source=str(path),
        ids=_unique_ids([r["path"] for r in rows]),
        targets=np.asarray([index[r["label"]] for r in rows], dtype=np.int64),
        labels=labels,
        paths=files,
        given_split=_split_column(path, rows) if "split" in columns else None,
    )


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows (cells stripped); names the line of a byte that is not UTF-8 or a row that cannot be parsed."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HeadstartError(f"cannot read {path} ({exc.strerror}); check that the file is readable") from exc
    reader = csv.DictReader(io.StringIO(_decode(path, raw), newline=""), delimiter=_delimiter(path))
    try:
        columns = [c.strip() for c in (reader.fieldnames or [])]
        if "path" not in columns or "label" not in columns:
            raise HeadstartError(
                f"CSV {str(path)!r} needs columns path,label (found: {', '.join(columns) or 'none'}); name the "
                "column of image files path (relative to the CSV's folder) and the column of classes label"
            )
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except csv.Error as exc:
        raise HeadstartError(
            f"{path}: cannot parse the CSV after line {reader.line_num} ({exc}); check its quoting and delimiter"
        ) from exc
    if not rows:
        raise HeadstartError(f"CSV {str(path)!r} has a header but no rows; add one row per image: path,label")
    return columns, rows


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 text (a leading byte-order mark dropped); else which line and byte are not UTF-8, and the fix."""
    raw = raw.removeprefix(BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = sum(1 for chunk in raw.split(b"\n") if not _is_utf8(chunk))
        raise HeadstartError(
            f"{path} is not UTF-8: line {line} has byte 0x{raw[exc.start]:02x} at column {column} "
            f"({bad} line(s) in all); {SAVE_AS_UTF8}"
        ) from exc


def _is_utf8(chunk: bytes) -> bool:
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_cells(path: Path, rows: list[dict[str, str]], empty_labels: bool = False) -> None:
    """Every row needs a path and a label (an empty label would become a class named ''), unless
    ``empty_labels`` (multi-label: an empty label set)."""
    for number, row in enumerate(rows, start=1):
        for column in ("path",) if empty_labels else ("path", "label"):
            if not row.get(column):
                raise HeadstartError(f"{path.name}: row {number} has an empty {column}; fill it in or remove the row")


def _files(path: Path, rows: list[dict[str, str]]) -> list[Path]:
    """The file of each row: relative paths from the CSV's folder; missing files and folders are errors."""
    files = [path.parent / r["path"] for r in rows]  # an absolute path replaces the folder
    folders = [(n, r["path"]) for n, (r, f) in enumerate(zip(rows, files, strict=True), start=1) if f.is_dir()]
    if folders:
        number, where = folders[0]
        raise HeadstartError(
            f"CSV {str(path)!r} lists {len(folders)} folder(s) instead of image files, e.g. row {number}: {where!r}; "
            "list one image file per row (or pass a folder with one subfolder per class as DATA)"
        )
    missing = [(n, r["path"]) for n, (r, f) in enumerate(zip(rows, files, strict=True), start=1) if not f.is_file()]
    if missing:
        number, where = missing[0]
        raise HeadstartError(
            f"CSV {str(path)!r} lists {len(missing)} file(s) that do not exist, e.g. row {number}: {where!r}; "
            f"relative paths are read from the CSV's folder ({path.parent})"
        )
    return files


def _unique_ids(paths: list[str]) -> list[str]:
    """The path as written; a repeat gets `` (row N)`` appended (N counts data rows from 1)."""
    seen: set[str] = set()
    ids = []
    for number, id_ in enumerate(paths, start=1):
        while id_ in seen:
            id_ = f"{id_} (row {number})"
        seen.add(id_)
        ids.append(id_)
    return ids


def _split_column(path: Path, rows: list[dict[str, str]]) -> np.ndarray:
    split = [r.get("split", "").lower() for r in rows]
    for number, value in enumerate(split, start=1):
        if value not in SPLIT_NAMES:
            raise HeadstartError(
                f"{path.name}: row {number} has split {value!r}; use train, val or test "
                "(or drop the column: headstart then splits)"
            )
    return np.asarray(split)


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _check_counts(images: ImageSet) -> None:
    if len(images) == 0:
        raise HeadstartError(f"{images.source!r} holds no images")


def check_class_counts(data: Any, noun: str) -> None:
    """At least 2 classes, and at least 2 ``noun`` (examples, texts) per class, for any labelled set."""
    if len(data.labels) < 2:
        raise HeadstartError(f"{data.source!r} has a single class ({data.labels[0]!r}); classification needs >= 2")
    small = [f"{label} ({n})" for label, n in data.class_counts().items() if n < 2]
    if small:
        raise HeadstartError(
            f"class(es) with fewer than 2 {noun} in {data.source!r}: {', '.join(small)}; "
            f"add {noun} (a class needs at least one for training and one for evaluation) or remove the class"
        )
