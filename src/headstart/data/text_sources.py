"""Reading text DATA arguments: CSV / TSV / JSONL files, folders of ``.txt`` class folders, split files
(``train.csv`` + ``val.csv`` + ``test.csv``), split folders, and ``builtin:tweets`` / ``builtin:bbc-news``.

Files are read as bytes and decoded row by row (file by file for ``.txt``), so one row that is not valid
UTF-8 is skipped and reported in ``TextSet.skipped`` instead of failing the whole file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headstart.data.sources import (
    IMAGE_EXTENSIONS,
    SPLIT_NAMES,
    check_class_counts,
    count_txt_and_images,
    mixed_folder_hint,
)
from headstart.data.texts import TextSet
from headstart.errors import HeadstartError

__all__ = ["is_text_source", "load_texts", "read_table", "read_txt_folder", "to_textset"]

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")
BOM = b"\xef\xbb\xbf"
SHOWN = 3  # skipped-row messages quoted in warnings and errors


@dataclass
class _Rows:
    """Texts read from one file or folder, before class names become indices."""

    ids: list[str] = field(default_factory=list)  # stable id per kept text
    texts: list[str] = field(default_factory=list)  # cleaned text per kept row
    labels: list[str] = field(default_factory=list)  # class name per kept row
    split: list[str] | None = None  # "train" / "val" / "test" per kept row, when the source says
    skipped: list[str] = field(default_factory=list)  # one message per skipped row
    extra: dict[str, list[str]] = field(default_factory=dict)  # further requested columns, per kept row


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
        return _is_text_table(path, text_column)
    if path.is_dir():
        train = _split_file_candidates(path).get("train")
        if train:
            return _is_text_table(train[0], text_column)
        n_txt, n_images = count_txt_and_images(path)
        return n_txt > n_images
    return False


def load_texts(source: str, text_column: str = "text", label_column: str = "label") -> TextSet:
    """Read ``source`` into a :class:`TextSet` and validate it (non-empty, >= 2 classes, >= 2 texts per class).

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
        texts = loaded
    else:
        path = Path(source)
        if not path.exists():
            raise HeadstartError(
                f"data path {source!r} does not exist; pass a CSV / TSV / JSONL file with text,label columns, "
                "a folder with one subfolder of .txt files per class, or builtin:tweets / builtin:bbc-news"
            )
        if path.is_dir():
            rows = _read_folder(path, text_column, label_column)
        elif path.suffix.lower() in TABLE_SUFFIXES:
            rows = read_table(path, text_column, label_column)
        else:
            raise HeadstartError(
                f"data file {source!r} is not a .csv, .tsv or .jsonl file; text data needs one of those"
            )
        texts = to_textset(source, rows)
    _check_counts(texts)
    if texts.skipped:
        logger.warning("%s: skipped %d row(s): %s", texts.source, len(texts.skipped), _first(texts.skipped))
    return texts


# --- files -------------------------------------------------------------------------------------------------


def read_table(
    path: Path, text_column: str, label_column: str, encoding: str = "utf-8", extra: tuple[str, ...] = ()
) -> _Rows:
    """One CSV / TSV / JSONL file; ``extra`` columns are kept (as strings) in ``_Rows.extra``."""
    name = path.name
    rows = _Rows(extra={c: [] for c in extra})
    records: Iterable[tuple[str, dict[str, object]]]
    if path.suffix.lower() == ".jsonl":
        columns, records = _jsonl_records(path, rows)
        if not records and rows.skipped:
            return rows  # every line was undecodable: load_texts reports the reasons
    else:
        columns, records = _csv_records(path, encoding)
    wanted = {"text": text_column, "label": label_column}
    if any(column not in columns for column in wanted.values()):
        raise HeadstartError(_missing_columns(path, columns, wanted, next(iter(records), ("", {}))[1]))
    if "split" in columns:
        rows.split = []
    count = 0
    for where, record in records:
        _add_record(rows, name, where, record, text_column, label_column)
        count += 1
    if count == 0:
        raise HeadstartError(f"{path} has a header but no rows; add rows of {text_column},{label_column}")
    return rows


def _csv_records(path: Path, encoding: str) -> tuple[list[str], Iterator[tuple[str, dict[str, object]]]]:
    """Header and (``"row N"``, record) pairs; undecodable bytes survive as surrogates for :func:`_add_record`."""
    raw = _read_bytes(path)
    if not raw.strip():
        raise HeadstartError(
            f"{path} is empty; a text CSV needs a header line such as text,label and one row per text "
            "(an image CSV: path,label and one row per image)"
        )
    reader = csv.reader(io.StringIO(raw.decode(encoding, "surrogateescape"), newline=""), delimiter=_delimiter(path))
    try:
        columns = [c.strip() for c in next(reader)]
    except csv.Error as exc:
        raise HeadstartError(f"{path}: cannot parse the header line ({exc}); check its quoting and delimiter") from exc

    def records() -> Iterator[tuple[str, dict[str, object]]]:
        number = 0
        try:
            for values in reader:
                if not values:  # blank line
                    continue
                number += 1
                yield f"row {number}", dict(zip(columns, values, strict=False))
        except csv.Error as exc:
            raise HeadstartError(
                f"{path}: cannot parse the row after row {number} (line {reader.line_num}): {exc}; "
                "check its quoting, or store very long texts as JSONL or .txt files"
            ) from exc

    return columns, records()


def _jsonl_records(path: Path, rows: _Rows) -> tuple[list[str], list[tuple[str, dict[str, object]]]]:
    """Keys seen and (``"line N"``, object) pairs; lines that are not UTF-8 go to ``rows.skipped``."""
    raw = _read_bytes(path)
    if not raw.strip():
        raise HeadstartError(
            f'{path} is empty; a JSONL file needs one object per line, e.g. {{"text": "...", "label": "..."}}'
        )
    keys: dict[str, None] = {}
    records: list[tuple[str, dict[str, object]]] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            rows.skipped.append(f"{path.name}: line {number}: {_describe(exc)}")
            continue
        except json.JSONDecodeError as exc:
            raise HeadstartError(
                f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno}); "
                'each line must hold one object such as {"text": "...", "label": "..."}'
            ) from exc
        if not isinstance(obj, dict):
            raise HeadstartError(f"{path}: line {number} holds a JSON {type(obj).__name__}, not an object {{...}}")
        keys.update(dict.fromkeys(obj))
        records.append((f"line {number}", obj))
    return list(keys), records


def _add_record(rows: _Rows, name: str, where: str, record: dict[str, object], text_col: str, label_col: str) -> None:
    """Keep one row, skip it (not UTF-8, empty text) or raise (empty label, bad split)."""
    for column in (text_col, label_col):
        problem = _utf8_problem(_as_str(record.get(column), name, where))
        if problem:
            suffix = "" if column == text_col else f" in column {column!r}"
            rows.skipped.append(f"{name}: {where}: {problem}{suffix}")
            return
    text = _clean(_as_str(record.get(text_col), name, where))
    if not text:
        rows.skipped.append(f"{name}: {where}: empty text")
        return
    label = _as_str(record.get(label_col), name, where).strip()
    if not label:
        raise HeadstartError(f"{name}: {where} has an empty label (column {label_col!r}); fill it in or remove the row")
    if rows.split is not None:
        rows.split.append(_split_value(record.get("split"), name, where))
    for column, values in rows.extra.items():
        values.append(_as_str(record.get(column), name, where).strip())
    rows.ids.append(f"{name}:{where}")
    rows.texts.append(text)
    rows.labels.append(label)


def _split_value(value: object, name: str, where: str) -> str:
    split = _as_str(value, name, where).strip().lower()
    if split not in SPLIT_NAMES:
        raise HeadstartError(
            f"{name}: {where} has split {split!r}; use train, val or test (or drop the column: headstart then splits)"
        )
    return split


def _as_str(value: object, name: str, where: str) -> str:
    """A CSV cell or JSON value as text: null -> "", numbers and booleans as JSON writes them."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise HeadstartError(f"{name}: {where} holds a {type(value).__name__} where a string was expected")


# --- folders -----------------------------------------------------------------------------------------------


def _read_folder(root: Path, text_column: str, label_column: str) -> _Rows:
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
        parts = {s: read_table(p[0], text_column, label_column) for s, p in candidates.items()}
        return _merge_splits(root, parts)
    if (root / "train").is_dir():
        parts = {s: read_txt_folder(root / s, f"{s}/") for s in SPLIT_NAMES if (root / s).is_dir()}
        return _merge_splits(root, parts)
    return read_txt_folder(root, "")


def read_txt_folder(root: Path, id_prefix: str, fallback_latin1: bool = False) -> _Rows:
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
    rows = _Rows()
    for label, paths in files.items():
        for path in paths:
            id_ = id_prefix + path.relative_to(root).as_posix()
            raw = path.read_bytes()
            try:
                text = _clean(raw.decode("utf-8-sig"))
            except UnicodeDecodeError as exc:
                if not fallback_latin1:
                    rows.skipped.append(f"{id_}: {_describe(exc)}")
                    continue
                text = _clean(raw.decode("latin1"))
            if not text:
                rows.skipped.append(f"{id_}: empty text")
                continue
            rows.ids.append(id_)
            rows.texts.append(text)
            rows.labels.append(label)
    return rows


def _merge_splits(root: Path, parts: dict[str, _Rows]) -> _Rows:
    """One ``_Rows`` with ``split`` set from the part each row came from; every class must be in train."""
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
    merged, split = _Rows(), []
    for name, part in parts.items():
        merged.ids += part.ids
        merged.texts += part.texts
        merged.labels += part.labels
        merged.skipped += part.skipped
        split += [name] * len(part.ids)
    merged.split = split
    return merged


# --- helpers -----------------------------------------------------------------------------------------------


def to_textset(source: str, rows: _Rows, meta: dict[str, np.ndarray] | None = None) -> TextSet:
    labels = sorted(set(rows.labels))
    index = {label: k for k, label in enumerate(labels)}
    return TextSet(
        source=source,
        ids=rows.ids,
        targets=np.asarray([index[label] for label in rows.labels], dtype=np.int64),
        labels=labels,
        texts=rows.texts,
        given_split=np.asarray(rows.split, dtype=str) if rows.split is not None else None,
        meta=meta or {},
        skipped=rows.skipped,
    )


def _check_counts(texts: TextSet) -> None:
    if len(texts) == 0:
        if texts.skipped:
            raise HeadstartError(
                f"every row of {texts.source!r} was skipped ({len(texts.skipped)}): {_first(texts.skipped)}; "
                "texts must be non-empty and UTF-8 encoded"
            )
        raise HeadstartError(f"{texts.source!r} holds no texts")
    check_class_counts(texts, "texts")


def _missing_columns(path: Path, columns: list[str], wanted: dict[str, str], first: dict[str, object]) -> str:
    """``wanted`` maps role ("text" / "label") to column name: the message names the found columns and the fix."""
    missing = [role for role, column in wanted.items() if column not in columns]
    what = " and ".join(f"no {role} column {wanted[role]!r}" for role in missing)
    guess = _guess_columns(columns, wanted, missing, first)
    flags = " ".join(f"--set data.{role}_column={guess.get(role, 'NAME')}" for role in missing)
    images = "" if path.suffix.lower() == ".jsonl" else "; image data needs columns path,label instead"
    return f"{path} has {what} (found: {', '.join(columns) or 'none'}); choose the column(s) with {flags}{images}"


def _guess_columns(columns: list[str], wanted: dict[str, str], missing: list[str], first: dict[str, object]) -> dict:
    """The unused columns for the missing roles when their numbers match; of two, the longer first value is text."""
    free = [c for c in columns if c not in wanted.values() and c != "split"]
    if len(free) != len(missing):
        return {}
    free.sort(key=lambda c: -len(str(first.get(c) or "")))
    return dict(zip(missing, free, strict=True))


def _split_file_candidates(root: Path) -> dict[str, list[Path]]:
    """``{"train": [root/train.csv], ...}`` for every split with at least one table file."""
    found = {s: [root / f"{s}{x}" for x in TABLE_SUFFIXES if (root / f"{s}{x}").is_file()] for s in SPLIT_NAMES}
    return {s: paths for s, paths in found.items() if paths}


def _is_text_table(path: Path, text_column: str) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return True
    if suffix not in (".csv", ".tsv"):
        return False
    with path.open("rb") as f:
        head = f.read(1 << 16).removeprefix(BOM).decode("utf-8", "replace")
    reader = csv.reader(io.StringIO(head, newline=""), delimiter=_delimiter(path))
    header, first = next(reader, []), next(reader, [])
    columns = {c.strip() for c in header}
    if "path" in columns:
        return False
    return text_column in columns or not any(Path(v.strip()).suffix.lower() in IMAGE_EXTENSIONS for v in first)


def _is_txt(path: Path) -> bool:
    return path.suffix.lower() == ".txt" and not path.name.startswith(".") and path.is_file()


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, a leading UTF-8 byte-order mark dropped."""
    try:
        return path.read_bytes().removeprefix(BOM)
    except OSError as exc:
        raise HeadstartError(f"cannot read {path} ({exc.strerror}); check that the file is readable") from exc


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _clean(text: str) -> str:
    """Line ends to "\\n", surrounding whitespace stripped."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _utf8_problem(value: str) -> str | None:
    """None for valid text; else which byte broke UTF-8 (undecodable bytes arrive as surrogate escapes)."""
    try:
        value.encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    try:
        value.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeDecodeError as exc:
        return _describe(exc)
    except UnicodeEncodeError:
        return "not valid UTF-8 (an unpaired surrogate)"
    return "not valid UTF-8"


def _describe(exc: UnicodeDecodeError) -> str:
    return f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"


def _first(messages: list[str]) -> str:
    more = f"; ... and {len(messages) - SHOWN} more" if len(messages) > SHOWN else ""
    return "; ".join(messages[:SHOWN]) + more
