"""Reading one text table: a CSV / TSV / JSONL file into :class:`TextRows`, and rows into a :class:`TextSet`.

Files are read as bytes and decoded row by row, so one row that is not valid UTF-8 is skipped and reported
in ``TextRows.skipped`` instead of failing the whole file. Folders and builtins: :mod:`headstart.data.text_sources`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headstart.data.sources import IMAGE_EXTENSIONS, SPLIT_NAMES
from headstart.data.targets import LABEL_SET_SEPARATOR
from headstart.data.texts import TextSet
from headstart.errors import HeadstartError

__all__ = [
    "TABLE_SUFFIXES",
    "TextRows",
    "clean_text",
    "describe_undecodable",
    "is_text_table",
    "read_table",
    "to_textset",
]

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")
BOM = b"\xef\xbb\xbf"


@dataclass
class TextRows:
    """Texts read from one file or folder, before class names become indices."""

    ids: list[str] = field(default_factory=list)  # stable id per kept text
    texts: list[str] = field(default_factory=list)  # cleaned text per kept row
    labels: list[str] = field(default_factory=list)  # class name per kept row
    split: list[str] | None = None  # "train" / "val" / "test" per kept row, when the source says
    skipped: list[str] = field(default_factory=list)  # one message per skipped row
    extra: dict[str, list[str]] = field(default_factory=dict)  # further requested columns, per kept row


def to_textset(source: str, rows: TextRows, meta: dict[str, np.ndarray] | None = None) -> TextSet:
    """``rows`` as a :class:`TextSet`: class names sorted, each row's label as its index among them."""
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


def is_text_table(path: Path, text_column: str) -> bool:
    """A ``.jsonl`` file, or a ``.csv`` / ``.tsv`` file that is not an image CSV (reads the first 64 KiB)."""
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


def read_table(
    path: Path,
    text_column: str,
    label_column: str,
    encoding: str = "utf-8",
    extra: tuple[str, ...] = (),
    empty_labels: bool = False,
) -> TextRows:
    """One CSV / TSV / JSONL file; ``extra`` columns are kept (as strings) in ``TextRows.extra``.
    ``empty_labels``: an empty label is kept (a multi-label example with none) instead of refused."""
    name = path.name
    rows = TextRows(extra={c: [] for c in extra})
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
        _add_record(rows, name, where, record, (text_column, label_column), empty_labels)
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


def _jsonl_records(path: Path, rows: TextRows) -> tuple[list[str], list[tuple[str, dict[str, object]]]]:
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
            rows.skipped.append(f"{path.name}: line {number}: {describe_undecodable(exc)}")
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


def _add_record(
    rows: TextRows, name: str, where: str, record: dict[str, object], columns: tuple[str, str], empty_labels: bool
) -> None:
    """Keep one row, skip it (not UTF-8, empty text) or raise (empty label, unless ``empty_labels``; bad split).
    A JSON list of labels is kept as one label string, its items joined by :data:`LABEL_SET_SEPARATOR`."""
    text_col, label_col = columns
    raw_label = record.get(label_col)
    if isinstance(raw_label, list):
        record = {**record, label_col: LABEL_SET_SEPARATOR.join(str(v) for v in raw_label)}
    for column in (text_col, label_col):
        problem = _utf8_problem(_as_str(record.get(column), name, where))
        if problem:
            suffix = "" if column == text_col else f" in column {column!r}"
            rows.skipped.append(f"{name}: {where}: {problem}{suffix}")
            return
    text = clean_text(_as_str(record.get(text_col), name, where))
    if not text:
        rows.skipped.append(f"{name}: {where}: empty text")
        return
    label = _as_str(record.get(label_col), name, where).strip()
    if not label and not empty_labels:
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


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, a leading UTF-8 byte-order mark dropped."""
    try:
        return path.read_bytes().removeprefix(BOM)
    except OSError as exc:
        raise HeadstartError(f"cannot read {path} ({exc.strerror}); check that the file is readable") from exc


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def clean_text(text: str) -> str:
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
        return describe_undecodable(exc)
    except UnicodeEncodeError:
        return "not valid UTF-8 (an unpaired surrogate)"
    return "not valid UTF-8"


def describe_undecodable(exc: UnicodeDecodeError) -> str:
    return f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
