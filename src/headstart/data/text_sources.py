"""Reading text DATA arguments: CSV / TSV / JSONL files, folders of ``.txt`` class folders, split files
(``train.csv`` + ``val.csv`` + ``test.csv``), split folders, and ``builtin:tweets`` / ``builtin:bbc-news``.

One table file is read by :mod:`headstart.data.text_tables`; ``.txt`` files are decoded file by file, so
one file that is not valid UTF-8 is skipped and reported in ``TextSet.skipped`` instead of failing the set.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from headstart.data.sources import SPLIT_NAMES, count_txt_and_images, mixed_folder_hint
from headstart.data.text_tables import (
    TABLE_SUFFIXES,
    TextRows,
    clean_text,
    describe_undecodable,
    is_text_table,
    read_table,
    to_textset,
)
from headstart.data.texts import TextSet
from headstart.errors import HeadstartError

__all__ = ["is_text_source", "load_texts", "read_txt_folder"]

logger = logging.getLogger(__name__)

SHOWN = 3  # skipped-row messages quoted in warnings and errors


def is_text_source(source: str, text_column: str = "text") -> bool:
    """Whether ``source`` is text data that :func:`load_texts` reads (cheap: reads headers, walks folders).

    True for ``builtin:tweets`` / ``builtin:bbc-news``, ``.jsonl`` files, ``.csv`` / ``.tsv`` files without a
    ``path`` column (unless ``text_column`` is missing and the first row names an image file: an image CSV with
    other column names), folders holding ``train.csv|tsv|jsonl``, and folders whose subfolders hold more
    ``.txt`` files than images (:func:`~headstart.data.sources.count_txt_and_images`).
    """
    if source.startswith("builtin:"):
        from headstart.data.builtin import builtin_modality  # builtin registers this module's readers' users

        return builtin_modality(source.removeprefix("builtin:")) == "text"
    path = Path(source)
    if path.is_file():
        return is_text_table(path, text_column)
    if path.is_dir():
        train = _split_file_candidates(path).get("train")
        if train:
            return is_text_table(train[0], text_column)
        n_txt, n_images = count_txt_and_images(path)
        return n_txt > n_images
    return False


def load_texts(
    source: str, text_column: str = "text", label_column: str = "label", empty_labels: bool = False
) -> TextSet:
    """Read ``source`` into a :class:`TextSet` (non-empty; the task checks its labels). ``empty_labels``: a row
    may leave its label empty (a multi-label example with none); a JSONL label may be a list of labels.

    ``text_column`` / ``label_column`` name the CSV / TSV column or JSONL key; an optional ``split`` column
    (train / val / test) becomes ``given_split``. Rows that are not valid UTF-8 or have an empty text are
    skipped and listed in ``skipped``; an empty label is an error.
    """
    if not source:
        raise HeadstartError(
            "no data given; pass a CSV / TSV / JSONL file, a folder of .txt class folders, or builtin:tweets"
        )
    if source.startswith("builtin:"):
        from headstart.data.builtin import load_builtin

        loaded = load_builtin(source.removeprefix("builtin:"))
        assert isinstance(loaded, TextSet), f"{source} is not text data"  # is_text_source sent it here
        texts = replace(loaded, layout="builtin")
    else:
        path = Path(source)
        if not path.exists():
            raise HeadstartError(
                f"data path {source!r} does not exist; pass a CSV / TSV / JSONL file with text,label columns, "
                "a folder with one subfolder of .txt files per class, or builtin:tweets / builtin:bbc-news"
            )
        layout = "table"
        if path.is_dir():
            rows = _read_folder(path, text_column, label_column, empty_labels)
            layout = "table" if _split_file_candidates(path) else "folders"
        elif path.suffix.lower() in TABLE_SUFFIXES:
            rows = read_table(path, text_column, label_column, empty_labels=empty_labels)
        else:
            raise HeadstartError(
                f"data file {source!r} is not a .csv, .tsv or .jsonl file; text data needs one of those"
            )
        texts = replace(to_textset(source, rows), layout=layout)
    _check_counts(texts)
    if texts.skipped:
        logger.warning("%s: skipped %d row(s): %s", texts.source, len(texts.skipped), _first(texts.skipped))
    return texts


def _read_folder(root: Path, text_column: str, label_column: str, empty_labels: bool = False) -> TextRows:
    """Split files (train.csv ...), split folders (train/<class>/...) or a class folder, in that order."""
    candidates = _split_file_candidates(root)
    if candidates:
        ambiguous = [f"{', '.join(p.name for p in paths)}" for paths in candidates.values() if len(paths) > 1]
        if ambiguous:
            raise HeadstartError(
                f"{root} holds more than one file per split ({'; '.join(ambiguous)}); keep one of each"
            )
        if "train" not in candidates:
            raise HeadstartError(
                f"{root} holds {', '.join(p[0].name for p in candidates.values())} but no train.csv / .tsv / .jsonl"
            )
        parts = {
            s: read_table(p[0], text_column, label_column, empty_labels=empty_labels) for s, p in candidates.items()
        }
        return _merge_splits(root, parts)
    if (root / "train").is_dir():
        parts = {s: read_txt_folder(root / s, f"{s}/") for s in SPLIT_NAMES if (root / s).is_dir()}
        return _merge_splits(root, parts)
    return read_txt_folder(root, "")


def read_txt_folder(root: Path, id_prefix: str, fallback_latin1: bool = False) -> TextRows:
    """``root/<class>/**/*.txt``; label = class folder name, id = ``id_prefix`` + path relative to root."""
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise HeadstartError(
            f"folder {str(root)!r} has no class subfolders; lay it out as {root}/<class name>/<.txt files>"
        )
    files = {c.name: sorted(p for p in c.rglob("*") if _is_txt(p)) for c in classes}
    empty = [label for label, paths in files.items() if not paths]
    hint = mixed_folder_hint(root)
    if empty:
        raise HeadstartError(
            f"class folder(s) {', '.join(empty)} in {str(root)!r} hold no .txt files{hint}; "
            "add texts or remove the folder"
        )
    if hint:
        logger.warning("%s: reading the .txt files as text data; the images are ignored%s", root, hint)
    rows = TextRows()
    for label, paths in files.items():
        for path in paths:
            id_ = id_prefix + path.relative_to(root).as_posix()
            raw = path.read_bytes()
            try:
                text = clean_text(raw.decode("utf-8-sig"))
            except UnicodeDecodeError as exc:
                if not fallback_latin1:
                    rows.skipped.append(f"{id_}: {describe_undecodable(exc)}")
                    continue
                text = clean_text(raw.decode("latin1"))
            if not text:
                rows.skipped.append(f"{id_}: empty text")
                continue
            rows.ids.append(id_)
            rows.texts.append(text)
            rows.labels.append(label)
    return rows


def _merge_splits(root: Path, parts: dict[str, TextRows]) -> TextRows:
    """One ``TextRows`` with ``split`` set from the part each row came from; every class must be in train."""
    train = set(parts["train"].labels)
    unseen: dict[str, list[str]] = {}
    for name, part in parts.items():
        for label in sorted(set(part.labels) - train):
            unseen.setdefault(label, []).append(name)
    if unseen:
        listed = ", ".join(f"{label!r} ({'/'.join(splits)})" for label, splits in sorted(unseen.items()))
        raise HeadstartError(
            f"class(es) {listed} appear in val/test of {root} but not in train; "
            "add training examples of them or remove them from val/test"
        )
    merged, split = TextRows(), []
    for name, part in parts.items():
        merged.ids += part.ids
        merged.texts += part.texts
        merged.labels += part.labels
        merged.skipped += part.skipped
        split += [name] * len(part.ids)
    merged.split = split
    return merged


def _check_counts(texts: TextSet) -> None:
    if len(texts) == 0:
        if texts.skipped:
            raise HeadstartError(
                f"every row of {texts.source!r} was skipped ({len(texts.skipped)}): {_first(texts.skipped)}; "
                "texts must be non-empty and UTF-8 encoded"
            )
        raise HeadstartError(f"{texts.source!r} holds no texts")


def _split_file_candidates(root: Path) -> dict[str, list[Path]]:
    """``{"train": [root/train.csv], ...}`` for every split with at least one table file."""
    found = {s: [root / f"{s}{x}" for x in TABLE_SUFFIXES if (root / f"{s}{x}").is_file()] for s in SPLIT_NAMES}
    return {s: paths for s, paths in found.items() if paths}


def _is_txt(path: Path) -> bool:
    return path.suffix.lower() == ".txt" and not path.name.startswith(".") and path.is_file()


def _first(messages: list[str]) -> str:
    more = f"; ... and {len(messages) - SHOWN} more" if len(messages) > SHOWN else ""
    return "; ".join(messages[:SHOWN]) + more
