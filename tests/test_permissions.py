"""Runs, checkpoints, caches and reports get the modes of a plain write under the user's umask, not mkdtemp's 0700."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from headstart._permissions import share_dir, share_file, umask
from tests.console import headstart


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask for the test (subprocesses inherit it), restored after."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_umask_is_the_process_umask_and_left_unchanged() -> None:
    mask = umask()
    assert os.umask(mask) == mask  # reading it left the process umask as it was
    status = Path("/proc/self/status")
    if status.is_file():  # Linux reports it directly
        line = next(x for x in status.read_text().splitlines() if x.startswith("Umask:"))
        assert int(line.split()[1], 8) == mask


def test_temporaries_get_the_modes_of_plain_writes(tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    fd, name = tempfile.mkstemp(dir=tmp_path)
    os.close(fd)
    assert _mode(folder) == 0o700 and _mode(Path(name)) == 0o600  # what mkdtemp / mkstemp make
    assert _mode(share_dir(folder)) == 0o777 & ~umask()
    assert _mode(share_file(name)) == 0o666 & ~umask()


def test_trained_run_is_readable_by_the_team(umask_022: None, elpv_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--backbone", "mobilenet_v2", "--strategy", "linear-probe", "--set", "train.batch_size=8"]
    result = headstart("train", str(elpv_folder), *args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert _mode(out) == 0o755 and _mode(out / "model.safetensors") == 0o644
    modes = {p.name: _mode(p) for p in out.iterdir() if p.is_file()}
    assert "report.html" in modes and set(modes.values()) == {0o644}, modes  # manifest, metrics, report too
