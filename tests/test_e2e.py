"""End to end through the installed console script, as a user runs it (slow: trains real models)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from headstart.data import ImageSet

HEADSTART = str(Path(sys.executable).parent / "headstart")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([HEADSTART, *args], capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"headstart {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.mark.slow
def test_finetune_evaluate_predict_on_real_elpv_subset(tmp_path: Path, elpv: ImageSet) -> None:
    out = tmp_path / "ft"
    run(
        "train",
        "builtin:elpv",
        "--strategy",
        "finetune",
        "--epochs",
        "2",
        "--limit-per-class",
        "40",
        "--out",
        str(out),
        "--set",
        "train.batch_size=16",
    )
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    lrs = history[0]["lr"]  # one entry per optimizer group, by name; the LR at the end of epoch 1
    assert {"stem", "stem/no_decay", "block.6", "head", "head/no_decay"} <= set(lrs)
    assert lrs["block.6"] == pytest.approx(lrs["head"] * 0.3) and lrs["stem"] == pytest.approx(lrs["block.6"])

    metrics_file = tmp_path / "m.json"
    run("evaluate", str(out), "--out", str(metrics_file))
    evaluated = json.loads(metrics_file.read_text())
    saved = json.loads((out / "metrics.json").read_text())
    assert evaluated["confusion_matrix"] == saved["confusion_matrix"] and evaluated["split"] == "test"

    # predict on the test images saved as files: the same labels evaluate scored, JSON on stdout
    test_ids = json.loads((out / "splits.json").read_text())["test"][:6]
    files = []
    for id_ in test_ids:
        i = int(id_.rsplit("/", 1)[1])
        files.append(str(tmp_path / f"cell{i}.png"))
        Image.fromarray(elpv.arrays[i]).save(files[-1])  # type: ignore[index]
    records = json.loads(run("predict", str(out), *files, "--format", "json").stdout)
    assert [r["path"] for r in records] == files
    with (out / "predictions.csv").open() as f:
        scored = {row["id"]: row["pred"] for row in csv.DictReader(f)}
    assert [r["label"] for r in records] == [scored[id_] for id_ in test_ids]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in records)


@pytest.mark.slow
def test_user_error_exit_code_and_no_traceback(tmp_path: Path) -> None:
    result = run("train", str(tmp_path / "missing"), check=False)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr + result.stdout
