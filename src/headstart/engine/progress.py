"""Progress bars that the CLI switches on; the library itself stays quiet (it logs)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["enable_progress", "progress"]

T = TypeVar("T")
_ENABLED = False


def enable_progress(on: bool = True) -> None:
    global _ENABLED
    _ENABLED = on


def progress(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    if not _ENABLED:
        yield from items
        return
    from rich.progress import track

    yield from track(items, total=total, description=description, transient=True)
