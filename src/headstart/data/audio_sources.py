"""Reading audio DATA arguments: class folders, split folders (``train/`` ``val/`` ``test/``), CSV / TSV / JSONL
tables of ``path,label`` rows and ``builtin:drums``.

Files are checked at load time by their header only (``soundfile.info``: no decoding): an empty file, a file
soundfile cannot open and a header without samples are skipped and named in ``AudioSet.skipped``. Tables are
parsed by the text readers (:func:`headstart.data.text_tables.read_table`), so labels follow the same rules:
kept as strings (numbers for regression, ``a|b`` or a JSON list for multi-label), an optional ``split`` column.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from headstart.data import audio_builtins as _audio_builtins  # noqa: F401  (registers builtin:drums)
from headstart.data.audio import AUDIO_EXTENSIONS, AudioSet, UnreadableAudio, probe_audio
from headstart.data.builtin import builtin_modality, load_builtin
from headstart.data.sources import IMAGE_EXTENSIONS, SPLIT_NAMES
from headstart.data.text_tables import TABLE_SUFFIXES, read_table
from headstart.errors import HeadstartError

__all__ = ["is_audio_source", "load_audio"]

logger = logging.getLogger(__name__)

SHOWN = 3  # skipped-file messages quoted in warnings and errors
SCAN_FOLDERS = 16  # class folders is_audio_source looks into (per split)
SCAN_FILES = 16  # audio / image / .txt files it looks at per class folder
SCAN_ROWS = 5  # table rows whose path it checks
BOM = b"\xef\xbb\xbf"
EXTENSIONS = ", ".join(AUDIO_EXTENSIONS)


def is_audio_source(source: str, audio_column: str = "path") -> bool:
    """Whether ``source`` is audio data that :func:`load_audio` reads (cheap: no decoding).

    True for an audio builtin (``builtin:drums``), a ``.csv`` / ``.tsv`` / ``.jsonl`` file whose
    ``audio_column`` names audio files (:data:`~headstart.data.audio.AUDIO_EXTENSIONS`) in most of its first
    rows, and a folder whose class folders (directly, or under ``train/`` ``val/`` ``test/``) hold more audio
    files than images and ``.txt`` files among the first few looked at. Image folders and CSVs and text tables
    are not claimed.
    """
    if source.startswith("builtin:"):
        return builtin_modality(source.removeprefix("builtin:")) == "audio"
    path = Path(source)
    if path.is_file():
        return _is_audio_table(path, audio_column)
    if path.is_dir():
        return _is_audio_folder(path)
    return False


def _is_audio_name(value: str) -> bool:
    return os.path.splitext(value.strip())[1].lower() in AUDIO_EXTENSIONS


def _is_audio_table(path: Path, column: str) -> bool:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        return False
    try:
        with path.open("rb") as f:
            head = f.read(1 << 16).removeprefix(BOM).decode("utf-8", "replace")
    except OSError:
        return False
    values = _jsonl_values(head, column) if suffix == ".jsonl" else _csv_values(head, column, _delimiter(path))
    return bool(values) and 2 * sum(_is_audio_name(v) for v in values) > len(values)


def _csv_values(head: str, column: str, delimiter: str) -> list[str]:
    """The first :data:`SCAN_ROWS` non-empty cells of ``column`` ([] when there is no such column)."""
    reader = csv.reader(io.StringIO(head, newline=""), delimiter=delimiter)
    try:
        header = [c.strip() for c in next(reader, [])]
        if column not in header:
            return []
        at = header.index(column)
        values = []
        for row in reader:
            if len(row) > at and row[at].strip():
                values.append(row[at])
            if len(values) == SCAN_ROWS:
                break
        return values
    except csv.Error:
        return []


def _jsonl_values(head: str, column: str) -> list[str]:
    """The string values of ``column`` in the first :data:`SCAN_ROWS` objects that have one."""
    values = []
    for line in head.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get(column), str) and obj[column].strip():
            values.append(obj[column])
        if len(values) == SCAN_ROWS:
            break
    return values


def _is_audio_folder(root: Path) -> bool:
    bases = [root / s for s in SPLIT_NAMES if (root / s).is_dir()] if (root / "train").is_dir() else [root]
    audio = other = 0
    for base in bases:
        for folder in _class_dirs(base)[:SCAN_FOLDERS]:
            a, o = _scan(folder)
            audio, other = audio + a, other + o
    return audio > other


def _scan(folder: Path) -> tuple[int, int]:
    """(audio files, images and .txt files) among the first :data:`SCAN_FILES` of them under ``folder``."""
    audio = other = 0
    for _dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            suffix = os.path.splitext(name)[1].lower()
            audio += suffix in AUDIO_EXTENSIONS
            other += suffix in IMAGE_EXTENSIONS or suffix == ".txt"
            if audio + other >= SCAN_FILES:
                return audio, other
    return audio, other


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


# --- loading -----------------------------------------------------------------------------------------------


@dataclass
class _Clips:
    """Clips read from one folder or table, before class names become indices."""

    ids: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # label string per kept clip
    rates: list[int] = field(default_factory=list)  # native sample rate per kept clip (file header)
    split: list[str] | None = None  # "train" / "val" / "test" per kept clip, when the source says
    skipped: list[str] = field(default_factory=list)  # one message per skipped file or row

    def add(self, id_: str, path: Path, label: str, split: str = "") -> None:
        """Keep the clip when its header reads (``split``: its split, when ``self.split`` is kept); else name it
        in ``skipped``."""
        try:
            rate, _ = probe_audio(path)
        except UnreadableAudio as exc:
            self.skipped.append(str(exc))
            return
        self.ids.append(id_)
        self.paths.append(path)
        self.labels.append(label)
        self.rates.append(rate)
        if self.split is not None:
            self.split.append(split)

    def to_set(self, source: str, layout: str) -> AudioSet:
        """The clips as an :class:`AudioSet`: class names sorted, each clip's label as its index among them."""
        labels = sorted(set(self.labels))
        index = {label: k for k, label in enumerate(labels)}
        return AudioSet(
            source=source,
            ids=self.ids,
            targets=np.asarray([index[label] for label in self.labels], dtype=np.int64),
            labels=labels,
            paths=self.paths,
            rates=np.asarray(self.rates, dtype=np.int64),
            given_split=np.asarray(self.split, dtype=str) if self.split is not None else None,
            skipped=self.skipped,
            layout=layout,
        )


def load_audio(
    source: str, path_column: str = "path", label_column: str = "label", empty_labels: bool = False
) -> AudioSet:
    """Read ``source`` into an :class:`AudioSet` (non-empty; the task checks its labels).

    A folder holds one subfolder of audio files per class, or ``train/`` (and ``val/``, ``test/``) folders
    that each do (``given_split``). A CSV / TSV / JSONL table has a column of audio files (``path_column``,
    relative to the table's folder) and one of labels (``label_column``), and optionally ``split``.
    ``empty_labels``: a row may leave its label empty (a multi-label example with none).
    """
    if not source:
        raise HeadstartError(
            "no data given; pass a folder with one subfolder of audio files per class, a CSV / TSV / JSONL "
            "file with path,label columns, or builtin:drums"
        )
    if source.startswith("builtin:"):
        loaded = load_builtin(source.removeprefix("builtin:"))
        if not isinstance(loaded, AudioSet):
            raise HeadstartError(f"{source} holds {loaded.modality} data, not audio; pass it as DATA on its own")
        data = replace(loaded, layout="builtin")
    else:
        data = _load_path(source, path_column, label_column, empty_labels)
    _check_counts(data)
    if data.skipped:
        logger.warning("%s: skipped %d file(s): %s", data.source, len(data.skipped), _first(data.skipped))
    return data


def _load_path(source: str, path_column: str, label_column: str, empty_labels: bool) -> AudioSet:
    path = Path(source)
    if not path.exists():
        raise HeadstartError(
            f"data path {source!r} does not exist; pass a folder with one subfolder of audio files per class, "
            "a CSV / TSV / JSONL file with path,label columns, or builtin:drums"
        )
    if path.is_dir():
        if (path / "train").is_dir():
            parts = {s: _class_folder(path / s, f"{s}/") for s in SPLIT_NAMES if (path / s).is_dir()}
            return _merge_splits(path, parts).to_set(source, "folders")
        return _class_folder(path, "").to_set(source, "folders")
    if path.suffix.lower() in TABLE_SUFFIXES:
        return _table(path, path_column, label_column, empty_labels).to_set(source, "table")
    raise HeadstartError(
        f"data file {source!r} is not a folder or a .csv / .tsv / .jsonl file; pass a folder with one subfolder "
        "of audio files per class, or a table with a column of audio files and a column of labels"
    )


def _list_audio(folder: Path) -> list[Path]:
    found = (p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."))
    return sorted(p for p in found if p.is_file())


def _class_folder(root: Path, id_prefix: str) -> _Clips:
    """``root/<class>/**/<audio files>``; label = class folder name, id = ``id_prefix`` + path relative to root."""
    classes = _class_dirs(root)
    if not classes:
        raise HeadstartError(
            f"folder {str(root)!r} has no class subfolders; lay it out as {root}/<class name>/<audio files> "
            f"({EXTENSIONS})"
        )
    files = {c.name: _list_audio(c) for c in classes}
    empty = [label for label, found in files.items() if not found]
    if empty:
        raise HeadstartError(
            f"class folder(s) {', '.join(empty)} in {str(root)!r} hold no audio files ({EXTENSIONS}); "
            "add clips or remove the folder"
        )
    clips = _Clips()
    for label, found in files.items():
        for path in found:
            clips.add(id_prefix + path.relative_to(root).as_posix(), path, label)
    unreadable = [label for label in files if label not in set(clips.labels)]
    if unreadable:
        raise HeadstartError(
            f"no file in class folder(s) {', '.join(unreadable)} of {str(root)!r} can be read "
            f"({_first(clips.skipped)}); re-export the clips as WAV or FLAC or remove the folder"
        )
    return clips


def _merge_splits(root: Path, parts: dict[str, _Clips]) -> _Clips:
    """One ``_Clips`` with ``split`` set from the folder each clip came from; every class must be in train."""
    train = set(parts["train"].labels)
    unseen = sorted({label for part in parts.values() for label in part.labels} - train)
    if unseen:
        raise HeadstartError(
            f"class(es) {', '.join(unseen)} appear in val/test of {root} but not in {root / 'train'}; "
            "add training clips of them or remove them from val/test"
        )
    merged, split = _Clips(), []
    for name, part in parts.items():
        merged.ids += part.ids
        merged.paths += part.paths
        merged.labels += part.labels
        merged.rates += part.rates
        merged.skipped += part.skipped
        split += [name] * len(part.ids)
    merged.split = split
    return merged


def _table(path: Path, path_column: str, label_column: str, empty_labels: bool) -> _Clips:
    """Rows of a CSV / TSV / JSONL table (parsed by the text readers); the files are checked by header."""
    _check_columns(path, path_column, label_column)
    rows = read_table(path, path_column, label_column, empty_labels=empty_labels)
    files = _table_files(path, rows.texts, rows.ids)
    clips = _Clips(split=[] if rows.split is not None else None)
    clips.skipped = [_path_cell_message(m, path_column) for m in rows.skipped]
    splits = rows.split if rows.split is not None else [""] * len(files)
    for id_, file, label, split in zip(rows.ids, files, rows.labels, splits, strict=True):
        clips.add(id_, file, label, split)
    return clips


def _path_cell_message(message: str, path_column: str) -> str:
    """A row the text reader skipped for an "empty text" is, here, a row with no audio file."""
    tail = ": empty text"
    if not message.endswith(tail):
        return message
    return message.removesuffix(tail) + f": empty {path_column!r} cell (no audio file)"


def _table_columns(path: Path) -> list[str]:
    """The header of a CSV / TSV, or every key of a JSONL file's objects (lines that do not parse are left to
    the reader, which reports them)."""
    try:
        raw = path.read_bytes().removeprefix(BOM)
    except OSError as exc:
        raise HeadstartError(f"cannot read {path} ({exc.strerror}); check that the file is readable") from exc
    if not raw.strip():
        raise HeadstartError(
            f"{path} is empty; an audio table needs a header line such as path,label and one row per clip "
            '(JSONL: one object per line, e.g. {"path": "clips/a.wav", "label": "dog"})'
        )
    text = raw.decode("utf-8", "replace")
    if path.suffix.lower() != ".jsonl":
        try:
            return [c.strip() for c in next(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(path)))]
        except csv.Error as exc:
            raise HeadstartError(f"{path}: cannot parse the header line ({exc}); check its quoting") from exc
    keys: dict[str, None] = {}
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            keys.update(dict.fromkeys(obj))
    return list(keys)


def _check_columns(path: Path, path_column: str, label_column: str) -> None:
    columns = _table_columns(path)
    missing = [c for c in (path_column, label_column) if c not in columns]
    if missing:
        raise HeadstartError(
            f"{path} has no {' and no '.join(repr(c) for c in missing)} column "
            f"(found: {', '.join(columns) or 'none'}); "
            f"an audio table names its audio files (relative to the table's folder) in column {path_column!r} "
            f"and their labels in column {label_column!r}: rename your columns (the label column may also be "
            "chosen with --set data.label_column=NAME)"
        )


def _table_files(path: Path, cells: list[str], ids: list[str]) -> list[Path]:
    """The file of each row: relative paths from the table's folder; missing files and folders are errors."""
    files = [path.parent / c for c in cells]  # an absolute path replaces the folder
    rows = list(zip(ids, cells, files, strict=True))
    folders = [(i, c) for i, c, f in rows if f.is_dir()]
    missing = [(i, c) for i, c, f in rows if not f.exists()]
    for problem, bad in (("folder(s) instead of audio files", folders), ("file(s) that do not exist", missing)):
        if bad:
            where, cell = bad[0]
            raise HeadstartError(
                f"{path} lists {len(bad)} {problem}, e.g. {where}: {cell!r}; list one audio file per row "
                f"({EXTENSIONS}); relative paths are read from the table's folder ({path.parent})"
            )
    return files


def _check_counts(data: AudioSet) -> None:
    if len(data) == 0:
        if data.skipped:
            raise HeadstartError(
                f"every clip of {data.source!r} was skipped ({len(data.skipped)}): {_first(data.skipped)}; "
                f"clips must be readable audio files ({EXTENSIONS}) with at least one sample"
            )
        raise HeadstartError(f"{data.source!r} holds no audio clips")


def _first(messages: list[str]) -> str:
    more = f"; ... and {len(messages) - SHOWN} more" if len(messages) > SHOWN else ""
    return "; ".join(messages[:SHOWN]) + more
