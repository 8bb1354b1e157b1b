"""Exporting a trained run for use without headstart: ``headstart export`` and ``Model.export``.

:data:`FORMATS` maps a format's name to its :class:`Format`; ``onnx`` (:mod:`headstart.export.onnx`) is the
one format so far. Importing this module stays light (no torch): the CLI builds its help from the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from headstart.registry import unknown_choice

if TYPE_CHECKING:
    from headstart.artifacts.run_dir import LoadedRun

__all__ = ["FORMATS", "Format", "get_format", "export_run"]


@dataclass(frozen=True)
class Format:
    """One export format."""

    name: str  # what --format names
    suffix: str  # the output file's extension
    check: Callable[[str | Path], Path]  # refuses an unsafe output path before any work; returns it resolved
    write: Callable[[LoadedRun, str | Path], list[Path]]  # writes the run; returns the files, the model first


def _check_onnx(out: str | Path) -> Path:
    from headstart.export.onnx import check_onnx_out

    return check_onnx_out(out)


def _write_onnx(run: LoadedRun, out: str | Path) -> list[Path]:
    from headstart.export.onnx import export_onnx

    return export_onnx(run, out)


FORMATS: dict[str, Format] = {"onnx": Format("onnx", ".onnx", _check_onnx, _write_onnx)}


def get_format(name: str) -> Format:
    """The export format ``name``; an unknown one lists the known formats."""
    if name not in FORMATS:
        raise unknown_choice("export format", name, FORMATS)
    return FORMATS[name]


def export_run(run: LoadedRun, format: str, path: str | Path) -> list[Path]:
    """Write ``run`` in ``format`` at ``path``; returns the files written, the model file first."""
    return get_format(format).write(run, path)
