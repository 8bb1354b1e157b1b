"""``--out`` safety: what check_out refuses, and how claim_out locks, hands over and tidies a folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from headstart.artifacts.out_dir import LOCK_FILE, check_out, check_out_file, claim_out, hand_over, is_headstart_folder
from headstart.errors import HeadstartError


def test_new_and_empty_folders_are_fine(tmp_path: Path) -> None:
    assert check_out(tmp_path / "new" / "run") == (tmp_path / "new" / "run").resolve()
    (tmp_path / "empty").mkdir()
    assert check_out(tmp_path / "empty") == (tmp_path / "empty").resolve()


def test_a_folder_with_user_files_is_refused_and_untouched(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "thesis.txt").write_text("x")
    with pytest.raises(HeadstartError, match="not a headstart run.*nothing was written"):
        check_out(keep)
    with pytest.raises(HeadstartError, match="not a headstart run"):
        claim_out(keep)
    assert sorted(p.name for p in keep.iterdir()) == ["thesis.txt"]


def test_working_folder_and_its_parents_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    for out in (".", "..", str(work)):
        with pytest.raises(HeadstartError, match="working folder"):
            check_out(out)
    with pytest.raises(HeadstartError, match="working folder"):
        check_out(Path.home())


def test_data_folder_inside_and_around_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "cats").mkdir(parents=True)
    with pytest.raises(HeadstartError, match="is the data folder"):
        check_out(data, str(data))
    with pytest.raises(HeadstartError, match="inside the data folder"):
        check_out(data / "cats" / "run", str(data))
    with pytest.raises(HeadstartError, match="holds the data"):
        check_out(tmp_path, str(data))
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n")
    with pytest.raises(HeadstartError, match="holds the data"):
        check_out(tmp_path, str(csv))
    assert check_out(tmp_path / "runs" / "a", str(csv))  # beside a CSV is fine
    assert check_out(tmp_path / "runs" / "a", "builtin:elpv")


def test_a_file_or_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x")
    with pytest.raises(HeadstartError, match="existing file"):
        check_out(f)
    with pytest.raises(HeadstartError, match="is a file, not a folder"):
        check_out(f / "run")
    assert f.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(HeadstartError, match="not writable"):
            check_out(ro / "run")
    finally:
        ro.chmod(0o755)


def test_an_interrupted_run_is_refused_unless_resuming(tmp_path: Path) -> None:
    (tmp_path / "r" / "checkpoint").mkdir(parents=True)
    (tmp_path / "r" / "checkpoint" / "state.json").write_text("{}")
    with pytest.raises(HeadstartError, match="--resume"):
        check_out(tmp_path / "r")
    assert check_out(tmp_path / "r", resuming=True)


def test_headstart_folders_are_recognized(tmp_path: Path) -> None:
    run = tmp_path / "cmp" / "finetune"
    run.mkdir(parents=True)
    (run / "headstart.json").write_text("{}")
    assert is_headstart_folder(run) and is_headstart_folder(tmp_path / "cmp")  # a container of runs
    (tmp_path / "cmp" / "notes.txt").write_text("mine")
    assert not is_headstart_folder(tmp_path / "cmp")


def test_claim_creates_locks_and_removes_an_unused_folder(tmp_path: Path) -> None:
    out = tmp_path / "a" / "run"
    lock = claim_out(out)
    assert (out / LOCK_FILE).read_text().strip() == str(os.getpid())
    lock.release()
    assert not out.exists()  # nothing was written: the folder it made is gone again


def test_a_second_writer_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from headstart.artifacts.out_dir import claim_out; claim_out({str(out)!r}); input()"],
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300  # the holder imports torch first: slow on a busy machine
        while not ((out / LOCK_FILE).is_file() and (out / LOCK_FILE).read_text().strip()):
            assert time.monotonic() < deadline and holder.poll() is None, "the holder never took the lock"
            time.sleep(0.05)
        with pytest.raises(HeadstartError, match=f"another headstart run \\(pid {holder.pid}\\)"):
            check_out(out)
        with pytest.raises(HeadstartError, match=f"pid {holder.pid}"):
            claim_out(out)
    finally:
        holder.communicate("\n", timeout=60)
    claim_out(out).release()  # free again once the first one ended
    assert out.is_dir() and not any(out.iterdir())  # a folder the user made stays, empty as it was


def test_a_folder_left_by_a_killed_run_can_be_used_again(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_FILE).write_text("12345\n")  # what kill -9 before the first checkpoint leaves
    (out / "tb").mkdir()
    assert check_out(out) == out.resolve()
    claim_out(out).release()
    assert (out / LOCK_FILE).is_file()  # still the folder's only mark of being headstart's


def test_hand_over_keeps_the_run_locked_across_the_swap(tmp_path: Path) -> None:
    out = tmp_path / "run"
    lock = claim_out(out)
    new = tmp_path / ".run.tmp"
    new.mkdir()
    (new / "headstart.json").write_text("{}")
    hand_over(out, new)
    old = tmp_path / ".run.old"
    os.replace(out, old)
    os.replace(new, out)
    probe = subprocess.run(
        [sys.executable, "-c", f"from headstart.artifacts.out_dir import claim_out; claim_out({str(out)!r})"],
        capture_output=True,
        text=True,
    )
    assert "another headstart run" in probe.stderr
    lock.release()
    assert sorted(p.name for p in out.iterdir()) == ["headstart.json"]  # a finished run keeps no lock file


def test_output_files_only_replace_what_headstart_wrote(tmp_path: Path) -> None:
    mine = tmp_path / "m.json"
    mine.write_text('{"my": "notes"}')
    with pytest.raises(HeadstartError, match="not written by headstart"):
        check_out_file(mine, "headstart evaluate")
    with pytest.raises(HeadstartError, match="is a folder"):
        check_out_file(tmp_path, "headstart evaluate")
    mine.write_text('{"written_by": "headstart evaluate"}')
    assert check_out_file(mine, "headstart evaluate") == mine.resolve()
    assert check_out_file(tmp_path / "new.json", "headstart evaluate")
