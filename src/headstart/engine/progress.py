"""Progress bars that the CLI switches on; the library itself stays quiet (it logs)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["enable_progress", "progress", "progress_shown"]

T = TypeVar("T")
_ENABLED = False


def enable_progress(on: bool = True) -> None:
    global _ENABLED
    _ENABLED = on


@contextmanager
def progress_shown(on: bool) -> Iterator[None]:
    """Progress bars on (or off) for the ``with`` block, then back as they were (the Python API's ``verbose``)."""
    global _ENABLED
    before, _ENABLED = _ENABLED, on
    try:
        yield
    finally:
        _ENABLED = before


def progress(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    """Iterate ``items``, drawing a transient bar on stderr when progress is enabled."""
    if not _ENABLED:
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        yield from bar.track(items, total=total, description=description)
