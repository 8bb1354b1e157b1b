"""Regression and multi-label runs end to end on small real data: every kind of strategy, the files a run
writes, predict and evaluate agreeing with the run, resume, and the refusals of bad task data."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from headstart import runner
from headstart.artifacts import load_run
from headstart.config import RunConfig, load_config
from headstart.data import ImageSet, load_images
from headstart.engine.checkpoint import load_checkpoint
from headstart.engine.train import Trainer
from tests.console import headstart, refused

REGRESSION_KEYS = {"mae", "rmse", "r2", "spearman", "pearson", "n", "ci95"}
MULTILABEL_KEYS = {"micro_f1", "macro_f1", "mean_average_precision", "micro_average_precision", "subset_accuracy"}


@pytest.fixture(scope="session")
def severity_csv(tmp_path_factory: pytest.TempPathFactory, elpv: ImageSet) -> Path:
    """Real ELPV cells, 12 per graded defect probability (0, 1/3, 2/3, 1), as a path,label CSV of values."""
    root = tmp_path_factory.mktemp("severity")
    proba = np.asarray(elpv.meta["defect_probability"], dtype=float)
    rng = np.random.RandomState(0)
    rows = []
    for value in np.unique(proba):
        for i in rng.permutation(np.flatnonzero(proba == value))[:12]:
            assert elpv.arrays is not None
            Image.fromarray(elpv.arrays[i]).resize((96, 96)).save(root / f"cell{i}.png")
            rows.append((f"cell{i}.png", f"{value:.4f}"))
    with (root / "cells.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return root / "cells.csv"


@pytest.fixture(scope="session")
def outfits_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Fashion-MNIST items composed 2-4 per image (builtin:fashion-multilabel), 72 of them as a path,label
    CSV with labels joined by |, plus 6 images with an empty label (no item of interest)."""
    root = tmp_path_factory.mktemp("outfits")
    outfits = load_images("builtin:fashion-multilabel")
    assert outfits.arrays is not None
    rows = []
    for i in range(78):
        Image.fromarray(outfits.arrays[i]).save(root / f"o{i}.png")
        label = "" if i >= 72 else outfits.labels[int(outfits.targets[i])]
        rows.append((f"o{i}.png", label))
    with (root / "outfits.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return root / "outfits.csv"


def _config(source: Path, task: str, strategy: str, epochs: int = 1) -> RunConfig:
    sets = [f"data.source={source}", f"task.kind={task}", f"strategy.name={strategy}", "model.backbone=mobilenet_v2"]
    return load_config(None, [*sets, f"train.epochs={epochs}", "train.batch_size=8", "eval.n_boot=200"])


def _predictions(run: Path) -> list[dict[str, str]]:
    with (run / "predictions.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["linear-probe", "lp-ft", "progressive", "scratch"])
def test_regression_with_every_kind_of_strategy(severity_csv: Path, tmp_path: Path, strategy: str) -> None:
    summary = runner.train(_config(severity_csv, "regression", strategy, epochs=2), tmp_path / strategy)
    assert REGRESSION_KEYS <= set(summary.metrics) and summary.metrics["n"] > 0
    assert summary.metrics["mae"] == pytest.approx(np.mean([abs(float(r["error"])) for r in _predictions(summary.out)]))
    manifest = json.loads((summary.out / "headstart.json").read_text())
    assert manifest["task"] == "regression" and manifest["labels"] == ["label"]
    state = manifest["task_state"]  # the training split's mean and std, inverted on output
    assert 0.0 < state["mean"] < 1.0 and state["std"] > 0.1
    assert manifest["data"]["target"]["distinct"] == 4


def test_regression_fine_tuning_defaults_to_its_own_lr_and_an_explicit_one_stays(severity_csv: Path) -> None:
    def head_lr(*sets: str) -> str:
        args = [
            "plan",
            str(severity_csv),
            "--task",
            "regression",
            "--backbone",
            "mobilenet_v2",
            "--strategy",
            "finetune",
        ]
        result = headstart(*args, *[a for s in sets for a in ("--set", s)])
        assert result.returncode == 0, result.stderr
        return next(line for line in result.stdout.splitlines() if "head" in line).split("│")[4].strip()

    assert head_lr() == "0.0001"  # the regression task's default (bench/README.md: 1e-3 collapses lp-ft)
    assert head_lr("optim.lr=1e-3") == "0.001"


def test_regression_predict_and_evaluate_give_the_runs_numbers(severity_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "probe"
    result = headstart("train", str(severity_csv), "--task", "regression", "--strategy", "linear-probe",
                       "--backbone", "mobilenet_v2", "--out", str(run))  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = _predictions(run)
    files = [str(severity_csv.parent / r["id"]) for r in rows]
    records = json.loads(headstart("predict", str(run), *files, "--format", "json").stdout)
    assert [set(r) for r in records] == [{"path", "value"}] * len(rows)
    np.testing.assert_allclose([r["value"] for r in records], [float(r["pred"]) for r in rows], atol=1e-4)
    out = tmp_path / "eval.json"
    assert headstart("evaluate", str(run), "--out", str(out)).returncode == 0
    metrics, evaluated = json.loads((run / "metrics.json").read_text()), json.loads(out.read_text())
    assert evaluated["mae"] == pytest.approx(metrics["mae"], abs=1e-5) and evaluated["n"] == metrics["n"]


@pytest.mark.slow
def test_interrupted_regression_run_resumes_to_the_same_model(
    severity_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(severity_csv, "regression", "progressive", epochs=2)
    full = runner.train(cfg, tmp_path / "full")

    def killed(self: Trainer, path: Path) -> None:
        if self.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "on_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        runner.train(cfg, tmp_path / "cut")
    assert load_checkpoint(tmp_path / "cut").state["epoch"] == 1
    monkeypatch.undo()
    resumed = runner.resume(tmp_path / "cut")
    assert resumed.metrics == full.metrics
    a, b = load_run(full.out).model.state_dict(), load_run(resumed.out).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["linear-probe", "lp-ft"])
def test_multilabel_runs_tune_a_threshold_per_label(outfits_csv: Path, tmp_path: Path, strategy: str) -> None:
    summary = runner.train(_config(outfits_csv, "multilabel", strategy), tmp_path / strategy)
    assert MULTILABEL_KEYS <= set(summary.metrics) and set(summary.metrics["ci95"]) == {
        "macro_f1",
        "mean_average_precision",
    }
    manifest = json.loads((summary.out / "headstart.json").read_text())
    labels = manifest["labels"]
    assert manifest["task"] == "multilabel" and len(labels) == 10 and manifest["data"]["without_label"] == 6
    thresholds = manifest["threshold"]
    assert len(thresholds) == len(labels) and all(0 <= t <= 1 for t in thresholds)
    assert [summary.metrics["per_label"][label]["threshold"] for label in labels] == pytest.approx(thresholds)


def test_multilabel_predict_and_evaluate_give_the_runs_numbers(outfits_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "probe"
    result = headstart("train", str(outfits_csv), "--task", "multilabel", "--strategy", "linear-probe",
                       "--backbone", "mobilenet_v2", "--out", str(run))  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = _predictions(run)
    files = [str(outfits_csv.parent / r["id"]) for r in rows]
    records = json.loads(headstart("predict", str(run), *files, "--format", "json").stdout)
    assert ["|".join(r["labels"]) for r in records] == [r["pred"] for r in rows]
    labels = json.loads((run / "headstart.json").read_text())["labels"]
    np.testing.assert_allclose(
        [[r["probabilities"][label] for label in labels] for r in records],
        [[float(r[f"p_{label}"]) for label in labels] for r in rows],
        atol=1e-4,
    )
    out = tmp_path / "eval.json"
    assert headstart("evaluate", str(run), "--out", str(out)).returncode == 0
    metrics, evaluated = json.loads((run / "metrics.json").read_text()), json.loads(out.read_text())
    assert evaluated["mean_average_precision"] == pytest.approx(metrics["mean_average_precision"], abs=1e-6)


def test_multilabel_text_scratch_reads_jsonl_label_lists(tmp_path: Path) -> None:
    """TF-IDF + one-vs-rest logistic regression on real tweets whose labels are JSON lists (some empty)."""
    from headstart.data import load_texts

    tweets = load_texts("builtin:tweets")
    data = tmp_path / "tweets.jsonl"
    with data.open("w") as f:
        for i in range(240):
            text, sentiment = tweets.texts[i], tweets.labels[int(tweets.targets[i])]
            labels = ([sentiment] if sentiment != "neutral" else []) + (["question"] if "?" in text else [])
            f.write(json.dumps({"text": text, "label": labels}) + "\n")
    cfg = _config(data, "multilabel", "scratch")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backbone="minilm"))  # scratch: TF-IDF
    summary = runner.train(cfg, tmp_path / "run")
    assert MULTILABEL_KEYS <= set(summary.metrics)
    assert set(json.loads((summary.out / "headstart.json").read_text())["labels"]) <= {
        "negative",
        "positive",
        "question",
    }


def test_bad_task_data_is_refused_before_any_work(severity_csv: Path, elpv_folder: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "run")
    refused(headstart("train", str(elpv_folder), "--task", "regression", "--out", out), "folder layout", "CSV")
    refused(headstart("train", str(elpv_folder), "--task", "multilabel", "--out", out), "folder layout")
    refused(headstart("train", str(severity_csv), "--task", "regresion", "--out", out), "did you mean regression")
    words = tmp_path / "words.csv"
    words.write_text(severity_csv.read_text().replace(",0.0000", ",none"))
    for png in severity_csv.parent.glob("*.png"):
        (tmp_path / png.name).symlink_to(png)
    refused(headstart("train", str(words), "--task", "regression", "--out", out), "needs a number", "'none'")
    refused(
        headstart("train", str(severity_csv), "--task", "regression", "--set", "eval.threshold=f1", "--out", out),
        "eval.threshold",
        "not to --task regression",
    )
    assert not Path(out).exists()


def test_iterative_splits_keep_every_label_in_every_split(outfits_csv: Path) -> None:
    cfg = _config(outfits_csv, "multilabel", "linear-probe")
    data, splits = runner.prepare_data(dataclasses.replace(cfg))
    y = np.asarray(data.targets)
    for name, index in splits.items():
        missing = [data.labels[j] for j in np.flatnonzero(y[index].sum(0) == 0) if y[:, j].sum() >= 3]
        assert missing == [], f"{name} lacks {missing}"


def test_python_api_fits_and_predicts_values_and_label_sets(tmp_path: Path) -> None:
    """hs.fit(..., task=...) on in-memory arrays: values for regression, label sets and probabilities for
    multi-label (label lists, some empty)."""
    import headstart as hs

    outfits = load_images("builtin:fashion-multilabel")
    assert outfits.arrays is not None
    images = list(outfits.arrays[:60])
    sets = [outfits.labels[int(t)].split("|") for t in outfits.targets[:60]]
    sets[:4] = [[], [], [], []]  # images without an item of interest
    common = {"backbone": "mobilenet_v2", "strategy": "linear-probe", "verbose": False}
    ml = hs.fit((images, sets), task="multilabel", out=tmp_path / "ml", **common)
    assert ml.task == "multilabel" and "mean_average_precision=" in repr(ml)
    model = hs.load(ml.path)
    records = model.predict(images[:3])
    assert all(set(r["labels"]) <= set(model.labels) for r in records)
    proba = model.predict_proba(images[10:13])  # two to four items each: several labels are likely at once
    assert proba.shape == (3, len(model.labels)) and (proba.sum(1) > 1.0).any()  # independent per label
    assert model.predict_proba(images[:1]).max() < 0.5  # an image without an item of interest: no label likely

    counts = np.array([len(s) for s in sets], dtype=float)  # how many items: a real count to regress
    reg = hs.fit((images, counts.tolist()), task="regression", out=tmp_path / "reg", **common)
    values = [r["value"] for r in hs.load(reg.path).predict(images[:5])]
    assert all(isinstance(v, float) for v in values)
    with pytest.raises(hs.HeadstartError, match="predicts values, not probabilities"):
        hs.load(reg.path).predict_proba(images[:2])


@pytest.mark.slow
def test_regression_under_two_gloo_processes_matches_one_process(severity_csv: Path, tmp_path: Path) -> None:
    from tests.engine.test_distributed import _spawn

    cfg = _config(severity_csv, "regression", "finetune")
    cfg = dataclasses.replace(  # no dropout (its masks are per rank) and fp32, as the classification test
        cfg,
        model=dataclasses.replace(cfg.model, drop_rate=0.0),
        train=dataclasses.replace(cfg.train, precision="fp32"),
    )
    single = runner.train(cfg, tmp_path / "one").out
    _spawn(cfg, tmp_path / "two")
    one, two = _predictions(single), _predictions(tmp_path / "two")
    assert [r["id"] for r in one] == [r["id"] for r in two]
    # all-reduce sums in another order; Adam's first steps (about lr x sign of the gradient) carry that rounding
    # into the weights, so on a 0..1 target the two agree to a few hundredths, not bit for bit
    np.testing.assert_allclose([float(r["pred"]) for r in one], [float(r["pred"]) for r in two], atol=0.03)
    m1, m2 = (json.loads((run / "metrics.json").read_text()) for run in (single, tmp_path / "two"))
    assert m2["mae"] == pytest.approx(m1["mae"], abs=0.01) and m2["n"] == m1["n"]
