"""Runs, checkpoints, caches and reports get the modes of a plain write under the user's umask, not mkdtemp's 0700."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from headstart._permissions import share_dir, share_file, umask
from tests.conftest import file_mode
from tests.console import headstart


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
    assert file_mode(folder) == 0o700 and file_mode(Path(name)) == 0o600  # what mkdtemp / mkstemp make
    assert file_mode(share_dir(folder)) == 0o777 & ~umask()
    assert file_mode(share_file(name)) == 0o666 & ~umask()


def test_trained_run_is_readable_by_the_team(umask_022: None, elpv_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--backbone", "mobilenet_v2", "--strategy", "linear-probe", "--set", "train.batch_size=8"]
    result = headstart("train", str(elpv_folder), *args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert file_mode(out) == 0o755 and file_mode(out / "model.safetensors") == 0o644
    modes = {p.name: file_mode(p) for p in out.iterdir() if p.is_file()}
    assert "report.html" in modes and set(modes.values()) == {0o644}, modes  # manifest, metrics, report too
