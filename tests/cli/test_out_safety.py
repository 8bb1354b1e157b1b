"""A user's files are sacred: every command refuses an unsafe ``--out`` before any work, through the
console script as a user runs it (the ``--out`` deletion bug slipped past a test of ``write_run``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headstart.cli.app import app
from headstart.strategies import STRATEGIES
from tests.console import HEADSTART, headstart, refused

FAST = ("--backbone", "mobilenet_v2", "--set", "train.batch_size=8")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes): what must not change."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def keep(tmp_path: Path) -> Path:
    """A user's folder with a file in it."""
    folder = tmp_path / "keep"
    (folder / "chapter").mkdir(parents=True)
    (folder / "thesis.txt").write_text("four years of work\n")
    (folder / "chapter" / "1.tex").write_text("\\section{Intro}\n")
    return folder


def _no_work_done(tmp_path: Path) -> None:
    cache = tmp_path / "feature-cache"  # the autouse fixture's HEADSTART_CACHE_DIR
    assert not cache.exists() or not any(cache.rglob("*.safetensors")), "features were extracted before the refusal"


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_no_strategy_writes_into_a_user_folder(strategy: str, keep: Path, elpv_folder: Path, tmp_path: Path) -> None:
    before = snapshot(keep)
    result = CliRunner().invoke(
        app, ["train", str(elpv_folder), "--strategy", strategy, "--epochs", "1", "--out", str(keep), *FAST]
    )
    assert result.exit_code == 2, result.output
    assert "not a headstart run" in " ".join(result.output.split())
    assert snapshot(keep) == before and sorted(p.name for p in keep.iterdir()) == ["chapter", "thesis.txt"]
    _no_work_done(tmp_path)


def test_seeds_and_compare_refuse_before_the_first_run(keep: Path, elpv_folder: Path, tmp_path: Path) -> None:
    before = snapshot(keep)
    cli = CliRunner()
    for args in (
        ["train", str(elpv_folder), "--seeds", "2", "--out", str(keep)],
        ["compare", str(elpv_folder), "--strategies", "linear-probe,finetune", "--out", str(keep)],
    ):
        result = cli.invoke(app, [*args, "--epochs", "1", *FAST])
        assert result.exit_code == 2 and "not a headstart run" in " ".join(result.output.split()), result.output
    # a user folder where one of compare's run folders would go: refused before linear-probe trains
    cmp = tmp_path / "cmp"
    (cmp / "finetune").mkdir(parents=True)
    (cmp / "finetune" / "mine.txt").write_text("x")
    result = cli.invoke(
        app, ["compare", str(elpv_folder), "--strategies", "linear-probe,finetune", "--out", str(cmp), *FAST]
    )
    assert result.exit_code == 2 and "not a headstart run" in " ".join(result.output.split()), result.output
    assert sorted(p.name for p in cmp.iterdir()) == ["finetune"] and snapshot(keep) == before
    _no_work_done(tmp_path)


def test_console_train_never_deletes_a_folder_or_the_data(keep: Path, elpv_folder: Path, tmp_path: Path) -> None:
    before, data_before = snapshot(keep), snapshot(elpv_folder)
    result = headstart("train", str(elpv_folder), "--strategy", "finetune", "--epochs", "1", "--out", str(keep), *FAST)
    refused(result, "not a headstart run", "nothing was written")
    assert snapshot(keep) == before
    result = headstart("train", str(elpv_folder), "--epochs", "1", "--out", str(elpv_folder), *FAST)  # progressive
    refused(result, "is the data folder")
    result = headstart("train", str(elpv_folder), "--out", str(elpv_folder.parent), *FAST)
    refused(result, "holds the data")
    assert snapshot(elpv_folder) == data_before
    _no_work_done(tmp_path)


def test_console_out_places_that_cannot_hold_a_run(keep: Path, elpv_folder: Path, tmp_path: Path) -> None:
    refused(headstart("train", str(elpv_folder), "--out", ".", *FAST, cwd=keep), "working folder", "runs/NAME")
    thesis = keep / "thesis.txt"
    refused(headstart("train", str(elpv_folder), "--out", str(thesis), *FAST), "existing file")
    # not writable: under a file (what a read-only parent is to root, who may write anywhere else)
    refused(headstart("train", str(elpv_folder), "--out", str(thesis / "run"), *FAST), "is a file, not a folder")
    assert thesis.read_text() == "four years of work\n"
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        refused(headstart("train", str(elpv_folder), "--out", str(ro / "run"), *FAST), "not writable")
    _no_work_done(tmp_path)


@pytest.mark.slow
def test_console_lock_ctrl_c_and_resume_arguments(elpv_folder: Path, tmp_path: Path) -> None:
    """A second run into a busy --out is refused naming the first's pid; Ctrl-C says how to continue;
    --resume refuses the arguments it would ignore."""
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen(
        [HEADSTART, "train", str(elpv_folder), "--strategy", "finetune", "--epochs", "500", "--out", str(out), *FAST],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # a terminal's Ctrl-C: SIGINT at its default even when this suite was started in the background (a
        # non-interactive shell's `cmd &` ignores SIGINT, and children inherit that, so Python would ignore it too)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 600
        while not (out / "checkpoint" / "state.json").is_file():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr and first.stderr.read()
            time.sleep(0.2)
        second = headstart("train", str(elpv_folder), "--epochs", "1", "--out", str(out), *FAST)
        refused(second, f"another headstart run (pid {first.pid})")
        first.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    message = " ".join(err.split())
    assert first.returncode == 130, err
    assert "Traceback" not in err and f"headstart train --resume {out}" in message and "checkpoint" in message
    assert (out / "checkpoint" / "state.json").is_file()
    result = headstart("train", str(elpv_folder), "--resume", str(out), "--epochs", "3", "--strategy", "scratch")
    refused(result, "DATA, --strategy, --epochs would be ignored", f"headstart train --resume {out}")
    result = headstart("train", str(elpv_folder), "--epochs", "1", "--out", str(out), *FAST)
    refused(result, "interrupted run", "--resume")


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory: pytest.TempPathFactory, elpv_folder: Path) -> Path:
    out = tmp_path_factory.mktemp("safety") / "probe"
    result = headstart("train", str(elpv_folder), "--strategy", "linear-probe", "--out", str(out), *FAST)
    assert result.returncode == 0, result.stderr
    return out


def test_console_evaluate_out_never_replaces_a_user_file(probe_run: Path, keep: Path) -> None:
    refused(headstart("evaluate", str(probe_run), "--out", str(keep)), "is a folder", "metrics.json")
    thesis = keep / "thesis.txt"
    refused(headstart("evaluate", str(probe_run), "--out", str(thesis)), "not written by headstart")
    assert thesis.read_text() == "four years of work\n"
    metrics = keep.parent / "m.json"
    for _ in range(2):  # a file evaluate wrote may be written again
        result = headstart("evaluate", str(probe_run), "--out", str(metrics))
        assert result.returncode == 0, result.stderr
        assert json.loads(metrics.read_text())["written_by"] == "headstart evaluate"


def test_console_predict_expands_folders_and_globs_and_fails_when_nothing_worked(
    probe_run: Path, elpv_folder: Path, tmp_path: Path
) -> None:
    n = len(list(elpv_folder.rglob("*.png")))
    pattern = str(elpv_folder / "*" / "*.png")
    result = headstart("predict", str(probe_run), str(elpv_folder / "defective"), pattern, "--format", "json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert len(records) == 14 + n and all(r["label"] in ("defective", "functional") for r in records)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    empty = tmp_path / "empty"
    empty.mkdir()
    args = (str(tmp_path / "broken.png"), str(tmp_path / "nope*.png"), str(empty), "--format", "json")
    result = headstart("predict", str(probe_run), *args)
    refused(result, "none of the 3 input(s) could be predicted")
    errors = [r["error"] for r in json.loads(result.stdout)]
    assert "cannot identify image" in errors[0] and "no file matches this pattern" in errors[1]
    assert "a folder holding no image files" in errors[2]
    result = headstart("predict", str(probe_run), str(tmp_path / "broken.png"), pattern, "--format", "json")
    assert result.returncode == 0 and "1 of" in result.stderr and len(json.loads(result.stdout)) == n + 1
