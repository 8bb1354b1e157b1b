"""headstart._atomic: the one implementation of write-beside-then-rename, for files and folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from headstart._atomic import atomic_dir, atomic_path, write_bytes_atomic, write_text_atomic
from tests.conftest import file_mode


def test_file_writes_replace_the_target_with_a_shared_mode(umask_022: None, tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "report.html"
    assert write_text_atomic(target, "héllo\n") == target and target.read_text(encoding="utf-8") == "héllo\n"
    write_bytes_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01" and file_mode(target) == 0o644  # not mkstemp's 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]  # no temporary left behind


def test_a_failed_file_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "cache.safetensors"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.exists()
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_folder_swap_keeps_one_complete_folder(umask_022: None, tmp_path: Path) -> None:
    target, previous = tmp_path / "checkpoint", tmp_path / ".checkpoint.old"
    with atomic_dir(target, previous=previous) as tmp:
        (tmp / "state.json").write_text("1")
        (tmp / "weights").write_bytes(b"w")
        os.chmod(tmp / "weights", 0o600)  # as safetensors writes it
    assert (target / "state.json").read_text() == "1" and file_mode(target) == 0o755
    assert file_mode(target / "weights") == 0o644
    with pytest.raises(RuntimeError), atomic_dir(target, previous=previous) as tmp:
        (tmp / "state.json").write_text("2")
        raise RuntimeError("killed mid-write")
    assert (target / "state.json").read_text() == "1"
    with atomic_dir(target, previous=previous) as tmp:
        (tmp / "state.json").write_text("3")
    assert (target / "state.json").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # neither previous nor temporaries remain
