"""The probabilities a run records are what evaluate and predict give, on any machine (issue 13).

One run trained through the console script with ``train.precision=bf16`` (bf16 autocast for the
training steps); "another machine" is a process whose oneDNN may use at most AVX2 (no native bf16):
bf16 results there differ from this CPU's, fp32 results do not.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from headstart.artifacts import evaluate_run, load_run, predict_files
from headstart.engine import runtime as runtime_module
from headstart.engine.inference import head_logits, pooled_features
from headstart.engine.runtime import Runtime
from headstart.errors import HeadstartError
from tests.console import headstart

AVX2_MACHINE = {"ONEDNN_MAX_CPU_ISA": "AVX2"}  # a CPU without AVX-512 or native bf16


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory: pytest.TempPathFactory, elpv_folder: Path) -> Path:
    """mobilenet_v2 fine-tuned one epoch on 28 real ELPV cells with bf16 autocast."""
    tmp = tmp_path_factory.mktemp("bf16_run")
    out = tmp / "run"
    args = ["--backbone", "mobilenet_v2", "--strategy", "finetune", "--epochs", "1"]
    sets = ["--set", "train.batch_size=8", "--set", "train.precision=bf16"]
    result = headstart("train", str(elpv_folder), *args, *sets, "--out", str(out), HEADSTART_CACHE_DIR=str(tmp / "c"))
    assert result.returncode == 0, result.stderr
    return out


def _recorded(run: Path) -> dict[str, np.ndarray]:
    """predictions.csv as {id: probabilities in label order}."""
    labels = json.loads((run / "headstart.json").read_text())["labels"]
    with (run / "predictions.csv").open(newline="") as f:
        return {r["id"]: np.array([float(r[f"p_{label}"]) for label in labels]) for r in csv.DictReader(f)}


def _predicted(records: list[dict], labels: list[str], root: Path) -> dict[str, np.ndarray]:
    return {
        Path(r["path"]).relative_to(root).as_posix(): np.array([r["probabilities"][label] for label in labels])
        for r in records
    }


def _largest_gap(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def test_manifest_records_fp32_probabilities_and_bf16_training(bf16_run: Path) -> None:
    runtime = json.loads((bf16_run / "headstart.json").read_text())["runtime"]
    assert runtime["precision"] == "fp32"  # what metrics.json and predictions.csv were computed in
    assert runtime["train_precision"] == "bf16"  # the training steps' autocast


@pytest.mark.parametrize("machine", [{}, AVX2_MACHINE], ids=["this-cpu", "avx2-cpu"])
def test_predict_gives_the_recorded_test_probabilities(bf16_run: Path, elpv_folder: Path, machine: dict) -> None:
    recorded = _recorded(bf16_run)
    assert len(recorded) >= 4  # the test split of 28 cells
    files = [str(elpv_folder / k) for k in recorded]
    result = headstart("predict", str(bf16_run), *files, "--format", "json", **machine)
    assert result.returncode == 0, result.stderr
    labels = json.loads((bf16_run / "headstart.json").read_text())["labels"]
    predicted = _predicted(json.loads(result.stdout), labels, elpv_folder)
    assert _largest_gap(predicted, recorded) <= 1e-4


@pytest.mark.parametrize("machine", [{}, AVX2_MACHINE], ids=["this-cpu", "avx2-cpu"])
def test_evaluate_gives_the_recorded_metrics(bf16_run: Path, machine: dict) -> None:
    result = headstart("evaluate", str(bf16_run), "--format", "json", **machine)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    saved = json.loads((bf16_run / "metrics.json").read_text())
    assert got["split"] == "test" and got["n"] == saved["n"]
    assert got["confusion_matrix"] == saved["confusion_matrix"]
    for key in ("accuracy", "macro_f1", "roc_auc", "pr_auc", "log_loss", "ece"):
        assert got[key] == pytest.approx(saved[key], abs=1e-4), key


@pytest.mark.parametrize("machine_precision", ["fp32", "bf16", "auto"])
def test_predicting_machines_precision_changes_nothing(
    bf16_run: Path, elpv_folder: Path, machine_precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forcing fp32 (or bf16) where the run is loaded, or a CPU without native bf16, gives the recorded numbers."""
    monkeypatch.setattr(runtime_module, "cpu_has_fast_bf16", lambda: False)
    run = load_run(bf16_run)
    run.config = dataclasses.replace(
        run.config, train=dataclasses.replace(run.config.train, precision=machine_precision)
    )
    recorded = _recorded(bf16_run)
    records = predict_files(run, [str(elpv_folder / k) for k in recorded], batch_size=3)
    assert _largest_gap(_predicted(records, run.labels, elpv_folder), recorded) <= 1e-4
    metrics, saved = evaluate_run(run).metrics, json.loads((bf16_run / "metrics.json").read_text())
    assert metrics["confusion_matrix"] == saved["confusion_matrix"]
    for key in ("roc_auc", "log_loss", "ece"):
        assert metrics[key] == pytest.approx(saved[key], abs=1e-4), key


def _as_bf16_run(src: Path, dst: Path) -> Path:
    """A copy of ``src`` whose manifest says its probabilities were computed in bf16 (as runs saved before)."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "headstart.json").read_text())
    manifest["runtime"] = {"device": "cpu", "precision": "bf16", "channels_last": True, "processes": 1}
    (dst / "headstart.json").write_text(json.dumps(manifest))
    return dst


def _bf16_probabilities(run_dir: Path, files: list[str]) -> np.ndarray:
    from headstart.data.images import read_image
    from headstart.data.transforms import eval_transform

    run = load_run(run_dir)
    rt = Runtime(device=torch.device("cpu"), precision="bf16", channels_last=True)
    x = torch.stack([eval_transform(run.recipe)(read_image(f)) for f in files])
    with torch.inference_mode():
        return head_logits(rt.model(run.model), pooled_features(run.model, x, rt)).softmax(-1).numpy()


def test_run_with_bf16_probabilities_is_scored_in_bf16_and_warns_without_native_bf16(
    bf16_run: Path, elpv_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    old = _as_bf16_run(bf16_run, tmp_path / "old")
    files = [str(elpv_folder / k) for k in _recorded(bf16_run)]
    expected = _bf16_probabilities(old, files)
    fp32 = np.stack([r for r in _recorded(bf16_run).values()])
    assert np.abs(expected - fp32).max() > 1e-4  # bf16 and fp32 really differ on this run

    monkeypatch.setattr(runtime_module, "cpu_has_fast_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="headstart"):
        records = predict_files(load_run(old), files)
    got = np.stack([[r["probabilities"][label] for label in load_run(old).labels] for r in records])
    assert np.abs(got - expected).max() <= 1e-4  # the recorded precision, not this machine's choice
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "in bf16 on cpu" in warning and "no native bf16" in warning
    assert "train the run again" in warning


def test_unknown_recorded_precision_is_refused(bf16_run: Path, tmp_path: Path) -> None:
    bad = _as_bf16_run(bf16_run, tmp_path / "bad")
    manifest = json.loads((bad / "headstart.json").read_text())
    manifest["runtime"]["precision"] = "fp8"
    (bad / "headstart.json").write_text(json.dumps(manifest))
    with pytest.raises(HeadstartError, match=r"runtime.precision='fp8'.*fp32, bf16.*copy the run again or re-train"):
        evaluate_run(load_run(bad))
