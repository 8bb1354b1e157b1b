"""``README.md``, the model card every run folder gets (``artifacts/model_card.py``): a real image run through
the console script, and real small runs of each task, modality and kind of strategy (probe, scratch baselines)
through the runner; each card has its sections in order, the run's numbers with their intervals, its warnings,
commands that name the run's folder, and equals what :func:`model_card` renders from the written folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from PIL import Image

import headstart as hs
from headstart import runner
from headstart.artifacts.model_card import SECTIONS, card_markdown, model_card
from headstart.artifacts.names import MANIFEST, METRICS, MODEL_CARD
from headstart.config import load_config
from headstart.data import ImageSet, load_images
from headstart.report.metric_keys import metric_name
from headstart.tasks import task_of_manifest
from tests.console import headstart


def _config(source: Path, task: str, strategy: str, backbone: str = "mobilenet_v2") -> Any:
    sets = [f"data.source={source}", f"task.kind={task}", f"strategy.name={strategy}", f"model.backbone={backbone}"]
    return load_config(None, [*sets, "train.epochs=1", "train.batch_size=8", "eval.n_boot=200"])


def _section(card: str, title: str) -> str:
    """The text under ``## title`` up to the next section."""
    return card.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _with_ci(metrics: dict[str, Any], key: str) -> str:
    lo, hi = metrics["ci95"][key]
    return f"{metrics[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def _check_card(run: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """What every card holds; returns the card, the manifest and the metrics."""
    card = (run / MODEL_CARD).read_text()
    manifest, metrics = (json.loads((run / name).read_text()) for name in (MANIFEST, METRICS))
    assert card == model_card(run)  # one builder: the written card re-renders to the same text
    assert card.splitlines()[0] == f"# {run.name}: {manifest['task']} model"
    assert [line[3:] for line in card.splitlines() if line.startswith("## ")] == list(SECTIONS)
    primary = task_of_manifest(manifest).primary
    assert f"Test {metric_name(primary)}: {_with_ci(metrics, primary)} (95% CI) on {metrics['n']} held-out" in card
    evaluation = _section(card, "Evaluation")
    for key in metrics["ci95"]:
        if metrics["ci95"][key]:
            assert _with_ci(metrics, key) in evaluation, key
    warnings = _section(card, "Warnings")
    assert all(w in warnings for w in metrics["warnings"])
    assert f"headstart shift {manifest['data']['source']} NEW_DATA" in warnings  # shift is not recorded by a run
    usage = _section(card, "How to use")
    assert f"headstart predict {run} " in usage and f"headstart evaluate {run}  #" in usage
    assert f"headstart evaluate {run} NEW_DATA" in usage and f'model = hs.load("{run}")' in usage
    return card, manifest, metrics


def test_a_trained_image_run_carries_its_card(elpv_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "cells"
    args = ["train", str(elpv_folder), "--backbone", "mobilenet_v2", "--strategy", "linear-probe", "--out", str(run)]
    result = headstart(*args)
    assert result.returncode == 0, result.stderr
    card, manifest, metrics = _check_card(run)
    summary = _section(card, "Summary")
    assert "`linear-probe` on `mobilenet_v2` (pretraining: " + manifest["backbone"]["source"] + ")" in summary
    assert f"predicts one of 2 classes ({', '.join(manifest['labels'])}) for image inputs" in summary
    data = _section(card, "Data")
    counts = manifest["data"]["class_counts"]
    assert f"- Examples: {manifest['data']['n']} ({', '.join(f'{k} {v}' for k, v in counts.items())})" in data
    assert "train {train}, val {val}, test {test}".format(**manifest["data"]["split_sizes"]) in data
    assert "identity" in manifest["data"] and "identity" not in data  # compare --resume's hashes are not for readers
    model = _section(card, "Model")
    assert f"- Trainable parameters: {manifest['trainable_params']:,} of " in model
    assert "Fitted in closed form" in model and "| head | " in model
    assert "- input_size: 224" in _section(card, "Preprocessing recipe")
    evaluation = _section(card, "Evaluation")
    for label, row in metrics["per_class"].items():  # one row per class, the recorded numbers
        assert f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |" in (
            evaluation
        )
    assert f"Calibration: expected calibration error (ECE) {metrics['ece']:.3f} over 15 confidence bins" in evaluation
    assert "Decision: the most probable class" in evaluation
    small = [w for w in metrics["warnings"] if "test examples; its precision/recall are unreliable" in w]
    assert small and all(f"- {w}\n" in _section(card, "Warnings") for w in small)  # 14 cells a class: thin
    assert "one of its 2 classes" in _section(card, "Limitations")
    usage = _section(card, "How to use")
    assert f"headstart predict {run} photo1.png 'photos/*.jpg' --format json" in usage
    image = next(elpv_folder.glob("*/*.png"))
    record = hs.load(run).predict([str(image)])[0]
    assert f"Each record holds {', '.join(f'`{k}`' for k in record)};" in usage  # the fields predict returns


@pytest.fixture(scope="module")
def severity_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real ELPV cells, 8 per graded defect probability (0, 1/3, 2/3, 1), as a path,label CSV of values."""
    elpv = load_images("builtin:elpv")
    return _image_table(tmp_path_factory.mktemp("severity"), elpv, "defect_probability", per_value=8)


def _image_table(root: Path, images: ImageSet, column: str, per_value: int) -> Path:
    values = np.asarray(images.meta[column], dtype=float)
    rng, rows = np.random.RandomState(0), []
    for value in np.unique(values):
        for i in rng.permutation(np.flatnonzero(values == value))[:per_value]:
            assert images.arrays is not None
            Image.fromarray(images.arrays[i]).resize((64, 64)).save(root / f"cell{i}.png")
            rows.append((f"cell{i}.png", f"{value:.4f}"))
    with (root / "cells.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return root / "cells.csv"


@pytest.fixture(scope="module")
def outfits_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Fashion-MNIST items composed 2-4 per image, 48 as a path,label CSV with labels joined by |."""
    root = tmp_path_factory.mktemp("outfits")
    outfits = load_images("builtin:fashion-multilabel")
    assert outfits.arrays is not None
    rows = []
    for i in range(48):
        Image.fromarray(outfits.arrays[i]).save(root / f"o{i}.png")
        rows.append((f"o{i}.png", outfits.labels[int(outfits.targets[i])]))
    with (root / "outfits.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return root / "outfits.csv"


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real decaying tones with noise, a class folder per pitch (10 clips of 0.5 s each)."""
    root, rate = tmp_path_factory.mktemp("tones") / "clips", 16000
    rng, t = np.random.default_rng(0), np.arange(rate // 2) / rate
    for label, pitch in {"low": 150.0, "mid": 600.0, "high": 2400.0}.items():
        (root / label).mkdir(parents=True)
        for i in range(10):
            f = pitch * (1 + rng.uniform(-0.03, 0.03))
            wave = 0.4 * np.exp(-4 * t) * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(len(t))
            soundfile.write(root / label / f"{i}.wav", wave.astype(np.float32), rate)
    return root


def test_a_regression_probe_card_has_values_and_no_calibration(severity_csv: Path, tmp_path: Path) -> None:
    run = runner.train(_config(severity_csv, "regression", "linear-probe"), tmp_path / "severity").out
    card, manifest, metrics = _check_card(run)
    target = manifest["data"]["target"]
    assert "predicts a number (the target value) for image inputs" in card
    assert f"target from {target['min']:.3f} to {target['max']:.3f}" in _section(card, "Data")
    assert f"{int(target['distinct'])} distinct values" in _section(card, "Data")
    evaluation = _section(card, "Evaluation")
    assert f"| R² | {_with_ci(metrics, 'r2')} |" in evaluation and f"| MAE | {_with_ci(metrics, 'mae')} |" in evaluation
    assert f"| RMSE | {metrics['rmse']:.3f} |" in evaluation and "Per class" not in evaluation
    assert "Calibration: not measured for regression runs" in evaluation and "Decision:" not in evaluation
    assert "predictions outside that range are extrapolations" in _section(card, "Limitations")
    assert "Each record holds `path`, `value`;" in card


def test_a_multilabel_probe_card_has_per_label_thresholds(outfits_csv: Path, tmp_path: Path) -> None:
    run = runner.train(_config(outfits_csv, "multilabel", "linear-probe"), tmp_path / "outfits").out
    card, manifest, metrics = _check_card(run)
    assert f"predicts any subset of {len(manifest['labels'])} labels" in card
    evaluation = _section(card, "Evaluation")
    assert f"| mean AP | {_with_ci(metrics, 'mean_average_precision')} |" in evaluation
    assert "| label | precision | recall | F1 | AP | ROC-AUC | support | threshold |" in evaluation
    for label, row in metrics["per_label"].items():
        assert f"| {label} | {row['precision']:.3f} | " in evaluation
        assert f" | {row['threshold']:.3f} |" in evaluation.split(f"| {label} | ", 1)[1].split("\n", 1)[0]
    assert "Decision: each label whose probability reaches its own threshold" in evaluation
    assert "Each record holds `path`, `labels`, `probabilities`;" in card


def test_scratch_baseline_cards_say_there_was_no_pretraining(
    tweets_csv: Path, tones: Path, elpv_folder: Path, tmp_path: Path
) -> None:
    text = runner.train(_config(tweets_csv, "classification", "scratch", "minilm"), tmp_path / "tweets").out
    card, manifest, _ = _check_card(text)
    assert manifest["recipe"]["kind"] == "tfidf" and "(pretraining: none: a baseline fitted on this data alone)" in card
    assert "- Backbone: `tfidf` (architecture `tfidf`): scikit-learn TfidfVectorizer" in card
    assert "- Strategy: `scratch` (tf-idf + logistic regression (no pretraining))" in card
    assert f'headstart predict {text} --text "the first text" --text "another one" --format json' in card
    assert "Each record holds `text`, `label`, `probabilities`;" in card
    audio = runner.train(_config(tones, "classification", "scratch", "aisfx"), tmp_path / "tones").out
    card, manifest, _ = _check_card(audio)
    assert manifest["recipe"]["kind"] == "mfcc" and "`mfcc` (architecture `mfcc`): librosa MFCC" in card
    assert f"headstart predict {audio} clip1.wav 'clips/*.flac' --format json" in card
    assert "- audio: seconds min 0.500" in _section(card, "Data")  # the modality's own data facts
    image = runner.train(_config(elpv_folder, "classification", "scratch"), tmp_path / "random").out
    card, manifest, _ = _check_card(image)
    assert "none: random initial weights (the checkpoint, " + manifest["backbone"]["source"] in card
    assert "- Best epoch (on the validation split): 1 of 1" in _section(card, "Model")


def test_the_card_of_an_older_manifest_reads_what_it_has(tmp_path: Path) -> None:
    """A manifest without data facts, plan or recipe (runs saved before those were recorded) still gets a card."""
    manifest = {"task": "classification", "strategy": "finetune", "labels": ["a", "b"], "recipe": {"modality": "image"}}
    metrics = {"accuracy": 0.75, "macro_f1": 0.7, "ci95": {"macro_f1": [0.6, 0.8]}, "n": 40, "warnings": []}
    card = card_markdown(manifest, metrics, tmp_path / "old")
    assert [line[3:] for line in card.splitlines() if line.startswith("## ")] == list(SECTIONS)
    assert "Test macro-F1: 0.700 [0.600, 0.800] (95% CI) on 40 held-out examples" in card
    assert "| ROC-AUC | n/a |" not in card and "| accuracy | 0.750 |" in card
