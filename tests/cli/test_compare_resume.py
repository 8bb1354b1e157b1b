"""`headstart compare --resume` and `make demo` after an interruption, through the console script and make."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.console import HEADSTART, headstart, refused

ROOT = Path(__file__).resolve().parents[2]
FAST = ("--backbone", "mobilenet_v2", "--set", "train.batch_size=8")
KEYS = ("accuracy", "macro_f1", "roc_auc", "n_test")


def _kill_at_first_checkpoint(cmd: list[str], run: Path, env: dict[str, str], timeout: float = 600) -> None:
    """Start ``cmd`` and kill -9 it and its children (a machine losing power, the OOM killer) as soon as ``run``
    holds its first checkpoint, while it is still running."""
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + timeout
        while not (run / "checkpoint" / "state.json").is_file():
            assert proc.poll() is None, f"finished before it could be interrupted:\n{proc.communicate()[1]}"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def _rows(folder: Path) -> dict[str, dict]:
    return {row["strategy"]: row for row in json.loads((folder / "comparison.json").read_text())["runs"]}


@pytest.mark.slow
def test_compare_killed_during_its_second_run_resumes_to_the_uninterrupted_metrics(
    elpv_folder: Path, tmp_path: Path
) -> None:
    args = ("compare", str(elpv_folder), "--strategies", "linear-probe,finetune", "--epochs", "4", *FAST)
    whole = headstart(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "cut"
    _kill_at_first_checkpoint(
        [HEADSTART, *args, "--out", str(out)], out / "finetune", {**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert (out / "linear-probe" / "headstart.json").is_file() and not (out / "comparison.json").exists()

    # without --resume: refused, naming the command that continues the comparison; nothing changed
    again = refused(headstart(*args, "--out", str(out)), "interrupted run", "--resume", "nothing was overwritten")
    assert (out / "finetune" / "checkpoint" / "state.json").is_file()
    command = shlex.split(re.search(r"continue the comparison with `([^`]+)`", again).group(1))
    assert command[:2] == ["headstart", "compare"] and command[-1] == "--resume"

    resumed = headstart(*command[1:])  # the very command the message gave
    assert resumed.returncode == 0, resumed.stderr
    assert "linear-probe (reused)" in resumed.stdout and "finetune (resumed)" in resumed.stdout
    assert "continuing from its checkpoint" in resumed.stderr and "finished: reused" in resumed.stderr
    rows, expected = _rows(out), _rows(tmp_path / "whole")
    assert rows["linear-probe"]["origin"] == "reused" and rows["finetune"]["origin"] == "resumed"
    for name in ("linear-probe", "finetune"):
        for key in KEYS:
            assert rows[name][key] == pytest.approx(expected[name][key], abs=1e-6), (name, key)
        run_metrics = json.loads((out / name / "metrics.json").read_text())
        assert run_metrics["macro_f1"] == pytest.approx(expected[name]["macro_f1"], abs=1e-6)
    assert json.loads((out / "finetune" / "headstart.json").read_text())["resumed"] is True

    # other settings than the runs were made with: refused before any work, naming the difference
    before = (out / "comparison.json").read_bytes()
    changed = headstart(*args[:-4], "--epochs", "5", *FAST, "--out", str(out), "--resume")
    refused(changed, "train.epochs 4 then, 5 now", "choose another --out", "nothing was changed")
    other_split = headstart(*args, "--seed", "1", "--out", str(out), "--resume")
    refused(other_split, "data.seed 0 then, 1 now")
    assert (out / "comparison.json").read_bytes() == before

    # a new strategy joins a finished comparison: the others are reused, only it is trained
    more = headstart(*args[:3], "linear-probe,finetune,scratch", *args[4:], "--out", str(out), "--resume")
    assert more.returncode == 0, more.stderr
    assert "finetune (reused)" in more.stdout and set(_rows(out)) == {"linear-probe", "finetune", "scratch"}
    assert "origin" not in _rows(out)["scratch"]


@pytest.mark.slow
def test_a_second_make_demo_after_an_interruption_finishes_the_demo(tmp_path: Path) -> None:
    """`make demo`'s own command (the Makefile's demo-run), on a small subset: killed during the default strategy,
    run again, it prints the whole table."""
    venv = Path(sys.executable).parent.parent
    out = tmp_path / "demo"
    flags = "--limit-per-class 8 --epochs 4 --set train.batch_size=8"
    cmd = ["make", "-s", "-C", str(ROOT), "demo-run", f"VENV={venv}", f"DEMO_OUT={out}", f"DEMO_FLAGS={flags}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HEADSTART_CACHE_DIR": str(tmp_path / "cache")}
    _kill_at_first_checkpoint(cmd, out / "progressive", env)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stdout + second.stderr
    for shown in ("linear-probe (reused)", "progressive (resumed)", "scratch", "transfer"):
        assert shown in second.stdout, second.stdout
    assert set(_rows(out)) == {"linear-probe", "progressive", "scratch"}
    assert (out / "report.html").is_file()
