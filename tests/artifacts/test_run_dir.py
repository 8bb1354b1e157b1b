import json
from pathlib import Path

import numpy as np
import pytest
import torch

from headstart import runner
from headstart.artifacts import evaluate_run, load_run, predict_files
from headstart.config import RunConfig
from headstart.errors import HeadstartError

EXPECTED_FILES = {
    "model.safetensors",
    "headstart.json",
    "metrics.json",
    "history.jsonl",
    "splits.json",
    "plan.md",
    "predictions.csv",
    "report.html",
    "README.md",
}


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory: pytest.TempPathFactory, elpv_folder: Path) -> Path:
    from headstart.config import load_config

    cfg = load_config(None, [f"data.source={elpv_folder}", "strategy.name=linear-probe", "train.batch_size=8"])
    return runner.train(cfg, tmp_path_factory.mktemp("runs") / "probe").out


def test_run_directory_contents(probe_run: Path) -> None:
    assert {p.name for p in probe_run.iterdir()} == EXPECTED_FILES
    manifest = json.loads((probe_run / "headstart.json").read_text())
    for key in ("backbone", "recipe", "labels", "strategy", "config", "metrics", "versions", "data"):
        assert key in manifest
    assert manifest["recipe"]["input_size"] == 224 and manifest["recipe"]["mean"] == [0.5, 0.5, 0.5]
    assert manifest["data"]["fingerprint"] and manifest["versions"]["torch"]
    RunConfig.from_dict(manifest["config"])  # the resolved config is complete and valid
    metrics = json.loads((probe_run / "metrics.json").read_text())
    assert set(metrics) >= {
        "accuracy",
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "roc_auc",
        "per_class",
        "confusion_matrix",
        "labels",
        "n",
    }
    history = [json.loads(line) for line in (probe_run / "history.jsonl").read_text().splitlines()]
    assert set(history[0]) >= {
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_macro_f1",
        "lr",
        "trainable_params",
    }


def test_round_trip_gives_the_same_predictions(probe_run: Path) -> None:
    run = load_run(probe_run)
    saved = json.loads((probe_run / "metrics.json").read_text())
    again = evaluate_run(run)
    assert again.split == "test"
    assert again.metrics["confusion_matrix"] == saved["confusion_matrix"]
    assert again.metrics["accuracy"] == pytest.approx(saved["accuracy"])


def test_predict_matches_evaluate_on_the_test_split(probe_run: Path, elpv_folder: Path) -> None:
    run = load_run(probe_run)
    test_ids = run.splits()["test"]
    records = predict_files(run, [str(elpv_folder / i) for i in test_ids])
    labels = [i.split("/")[0] for i in test_ids]
    pred = [r["label"] for r in records]
    metrics = evaluate_run(run).metrics
    assert metrics["accuracy"] == pytest.approx(np.mean([p == t for p, t in zip(pred, labels, strict=True)]))
    cm = np.zeros((2, 2), dtype=int)
    for p, t in zip(pred, labels, strict=True):
        cm[run.labels.index(t), run.labels.index(p)] += 1
    assert cm.tolist() == metrics["confusion_matrix"]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in records)


def test_predict_reports_unreadable_files_in_order(probe_run: Path, elpv_folder: Path, tmp_path: Path) -> None:
    good = str(next(elpv_folder.rglob("*.png")))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    records = predict_files(load_run(probe_run), [good, str(bad), str(tmp_path / "missing.png"), good])
    assert [r["path"] for r in records] == [good, str(bad), str(tmp_path / "missing.png"), good]
    assert records[0]["label"] and records[1]["label"] is None and "error" in records[2]
    assert records[0]["probabilities"] == records[3]["probabilities"]


def test_loading_never_unpickles(probe_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("torch.load called while loading a run")

    monkeypatch.setattr(torch, "load", forbidden)
    load_run(probe_run)


def test_rewrite_is_atomic_and_replaces(probe_run: Path, tmp_path: Path) -> None:
    from headstart.artifacts.run_dir import RunFiles, write_run

    run = load_run(probe_run)
    files = RunFiles(run.model, run.manifest, {}, [], {})
    out = write_run(tmp_path / "r", files)
    write_run(out, files)
    assert {p.name for p in tmp_path.iterdir()} == {"r"}  # no temporary or backup folders left behind


def test_refuses_to_overwrite_a_foreign_folder(probe_run: Path, tmp_path: Path) -> None:
    from headstart.artifacts.run_dir import RunFiles, write_run

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    run = load_run(probe_run)
    with pytest.raises(HeadstartError, match="not a headstart run"):
        write_run(tmp_path / "mine", RunFiles(run.model, run.manifest, {}, [], {}))
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_load_non_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HeadstartError, match="is not a headstart run"):
        load_run(tmp_path)


def test_evaluate_with_unknown_labels(probe_run: Path, tmp_path: Path, elpv_folder: Path) -> None:
    import shutil

    shutil.copytree(elpv_folder / "defective", tmp_path / "d" / "cracked")
    shutil.copytree(elpv_folder / "functional", tmp_path / "d" / "functional")
    with pytest.raises(HeadstartError, match="'cracked'.*not among the run's labels"):
        evaluate_run(load_run(probe_run), str(tmp_path / "d"))
