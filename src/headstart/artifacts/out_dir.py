"""Where a command may write: ``--out`` checked before any work, then claimed with a lock for the run's life.

A user's files are sacred: headstart only ever replaces or adds to a folder that it created itself.
:func:`check_out` refuses, before any training or extraction, every ``--out`` that is not safe to
write: the working folder (or one above it), a file, the data or a folder holding it, a folder with
contents that is not a headstart run, and places that cannot be written. :func:`claim_out` then creates
the folder and holds an exclusive lock (``fcntl.flock`` on ``OUT/.headstart.lock``) until the run is
written, so a second run into the same ``--out`` is refused with the first one's pid.

The lock file doubles as the mark "headstart made this folder": a run killed before its first
checkpoint leaves only that file, and the next run may use the folder again.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from headstart.artifacts.names import COMPARISON, LOCK_FILE, MANIFEST
from headstart.errors import HeadstartError

__all__ = [
    "LOCK_FILE",
    "MANIFEST",
    "COMPARISON",
    "OutLock",
    "check_out",
    "check_out_file",
    "claim_out",
    "hand_over",
    "is_headstart_folder",
]

logger = logging.getLogger(__name__)

_CHECKPOINT_STATES = ("checkpoint/state.json", ".checkpoint.old/state.json")  # an interrupted run
_HELD: dict[Path, OutLock] = {}  # this process's claimed folders (write_run hands their lock over)


def is_headstart_folder(path: Path) -> bool:
    """Whether headstart wrote ``path``: a run, an interrupted run, a comparison, or a folder it claimed.

    A folder whose visible entries are all headstart folders (``--seeds`` and ``compare`` containers)
    counts too.
    """
    if any((path / name).is_file() for name in (MANIFEST, COMPARISON, LOCK_FILE, *_CHECKPOINT_STATES)):
        return True
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    return bool(entries) and all(p.is_dir() and is_headstart_folder(p) for p in entries)


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _data_folder(data: str | None) -> tuple[Path, bool] | None:
    """The data's folder (resolved) and whether DATA is that folder itself (False: a file in it)."""
    if not data or data.startswith(("builtin:", "<")):  # a builtin, or in-memory data ("<memory>")
        return None
    path = Path(data).expanduser().resolve()
    if path.is_dir():
        return path, True
    return path.parent, False


def _check_place(out: Path, flag: str) -> None:
    """Not the working folder, home or root, nor a folder holding the working folder."""
    here = Path.cwd().resolve()
    if _is_within(here, out) or out in (Path.home().resolve(), Path(out.anchor)):
        what = "the working folder" if out == here else f"a folder that holds the working folder ({here})"
        raise HeadstartError(
            f"{flag} {out} is {what}; headstart writes a run by replacing its whole folder. "
            f"Choose a new folder for it, e.g. {flag} runs/NAME (nothing was written)"
        )


def _check_data(out: Path, data: str | None, flag: str) -> None:
    """Not the data, not inside a data folder, not a folder that holds the data."""
    found = _data_folder(data)
    if found is None:
        return
    folder, is_folder = found
    if is_folder and _is_within(out, folder):
        where = "is the data folder" if out == folder else f"is inside the data folder {folder}"
        raise HeadstartError(
            f"{flag} {out} {where}; a run written there would become part of the data (or replace it). "
            f"Choose a folder outside it, e.g. {flag} runs/NAME (nothing was written)"
        )
    if _is_within(folder, out):
        raise HeadstartError(
            f"{flag} {out} holds the data {data}; writing a run there would replace it. Choose a folder "
            f"that does not contain your data, e.g. {flag} runs/NAME (nothing was written)"
        )


def _check_writable(out: Path, flag: str) -> None:
    """The nearest existing folder at or above ``out`` must be a folder this user may write."""
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise HeadstartError(
            f"{flag} {out} cannot be created: {probe} is a file, not a folder; "
            f"choose another {flag} (nothing was written)"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise HeadstartError(
            f"{flag} {out} cannot be created: {probe} is not writable by this user; choose a folder you can "
            f"write to, e.g. {flag} runs/NAME under your project (nothing was written)"
        )


def _busy(folder: Path, owner: str) -> HeadstartError:
    return HeadstartError(
        f"{folder} is being written by another headstart run (pid {owner}); wait for it to finish, "
        "or choose another --out (nothing was written)"
    )


def _check_not_locked(folder: Path) -> None:
    """Refuse a folder another process holds the lock of (probing the lock, then letting go at once)."""
    lock = folder / LOCK_FILE
    if folder in _HELD or not lock.is_file():  # this process's own claim is no obstacle
        return
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(folder, os.read(fd, 64).decode(errors="replace").strip() or "unknown") from None
    finally:
        os.close(fd)


def check_out(
    out: str | Path, data: str | None = None, resuming: bool = False, flag: str = "--out", check_lock: bool = True
) -> Path:
    """Refuse an unsafe ``--out`` before any work; returns it resolved.

    Safe: a folder that does not exist yet (its nearest existing parent writable), an empty folder, or
    a folder headstart wrote (:func:`is_headstart_folder`). An interrupted run is refused unless
    ``resuming``: its checkpoint is continued with ``headstart train --resume``, not overwritten.
    ``check_lock=False`` skips the probe of another writer's lock (the other ranks of a distributed run,
    whose rank 0 holds it).
    """
    path = Path(out).expanduser().resolve()
    _check_place(path, flag)
    _check_data(path, data, flag)
    if path.exists() and not path.is_dir():
        raise HeadstartError(
            f"{flag} {out} is an existing file, not a folder; headstart writes a run folder there. "
            f"Choose a new folder name, e.g. {flag} runs/NAME (the file was not touched)"
        )
    if path.is_dir():
        if check_lock:
            _check_not_locked(path)
        if any(path.iterdir()) and not is_headstart_folder(path):
            raise HeadstartError(
                f"{flag} {out} already exists, holds files, and is not a headstart run; headstart never "
                f"writes into a folder it did not create. Choose a new folder, e.g. {flag} {out}-run "
                "(nothing was written)"
            )
        if not resuming and any((path / name).is_file() for name in _CHECKPOINT_STATES):
            raise HeadstartError(
                f"{out} holds an interrupted run; continue it with `headstart train --resume {out}` "
                f"or choose another {flag} (nothing was overwritten)"
            )
    _check_writable(path, flag)
    return path


def check_out_file(out: str | Path, marker: str, flag: str = "--out") -> Path:
    """Refuse an unsafe output FILE before any work: not a folder, and an existing file only if headstart
    wrote it (its text holds ``marker``). Returns the path resolved."""
    path = Path(out).expanduser().resolve()
    if path.is_dir():
        raise HeadstartError(
            f"{flag} {out} is a folder; pass a file path to write, e.g. {flag} {Path(out) / 'metrics.json'}"
        )
    if path.exists():
        try:
            ours = marker in path.read_text(encoding="utf-8", errors="replace")[:4096]
        except OSError:
            ours = False
        if not ours:
            raise HeadstartError(
                f"{flag} {out} exists and was not written by headstart; it is left as it is. "
                f"Choose another file name (or delete it yourself first)"
            )
    _check_writable(path.parent, flag)
    return path


@dataclass
class OutLock:
    """An exclusive lock on a claimed ``--out`` folder; release it with :meth:`release` (or ``with``)."""

    folder: Path  # the claimed folder (resolved)
    created: bool  # True when this claim created the folder (it is removed again if left empty)
    _fd: int | None = field(default=None, repr=False)

    def _lock_in(self, folder: Path) -> int:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise _busy(self.folder, owner) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def acquire(self) -> OutLock:
        self._fd = self._lock_in(self.folder)
        _HELD[self.folder] = self
        return self

    def move_into(self, folder: Path) -> None:
        """Lock ``folder/.headstart.lock`` too, then let go of the old one: ``folder`` is about to replace
        the claimed folder (an atomic run write), and the run must stay locked across the swap."""
        new = self._lock_in(folder)
        self._close()
        self._fd = new

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def release(self) -> None:
        """Unlock. The lock file stays only where it is the folder's one mark of being headstart's."""
        lock = self.folder / LOCK_FILE
        try:
            if lock.is_file():
                rest = [p for p in self.folder.iterdir() if p.name != LOCK_FILE]
                lock.unlink()
                if not rest and self.created:
                    self.folder.rmdir()
                elif rest and not is_headstart_folder(self.folder):
                    lock.touch()  # e.g. only live TensorBoard files: keep the mark for the next run
        except OSError as exc:  # never hide the run's own outcome behind a cleanup problem
            logger.warning("could not tidy the lock of %s (%s)", self.folder, exc)
        self._close()
        _HELD.pop(self.folder, None)

    def __enter__(self) -> OutLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def hand_over(out: Path, replacement: Path) -> None:
    """Before ``replacement`` is renamed onto ``out``: keep ``out`` locked across the swap (if this
    process claimed it), by locking the lock file inside ``replacement`` first."""
    lock = _HELD.get(Path(out).resolve())
    if lock is not None:
        lock.move_into(replacement)


def claim_out(out: str | Path, data: str | None = None, resuming: bool = False) -> OutLock:
    """:func:`check_out`, then create the folder and lock it (a second writer is refused with our pid)."""
    path = check_out(out, data, resuming)
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HeadstartError(
            f"cannot create --out {out}: {exc.strerror or exc}; choose a folder you can write to (nothing was written)"
        ) from exc
    return OutLock(path, created).acquire()
