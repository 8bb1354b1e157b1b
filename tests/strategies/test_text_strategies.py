"""Every strategy on a small real text subset (tweets, minilm): groups, parameter changes, runs, resume."""

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from headstart import runner
from headstart.artifacts import evaluate_run, load_run, predict_texts
from headstart.config import RunConfig

from .test_strategies import _one_step, _trainer, _with

STRATEGIES = ["linear-probe", "finetune", "partial", "progressive", "plateau", "lp-ft", "scratch"]


@pytest.mark.parametrize(
    ("name", "extra", "expected"),
    [
        ("finetune", {}, "all"),
        ("partial", {"train_groups": 2}, {"layer.5", "head"}),
        ("partial", {"groups": ["embeddings", "head"]}, {"embeddings", "head"}),
        ("progressive", {}, {"head"}),
    ],
)
def test_one_step_changes_exactly_the_trainable_text_groups(
    text_config: RunConfig, name: str, extra: dict, expected: object
) -> None:
    trainer = _trainer(_with(text_config, name, **extra))
    assert trainer.names == ["embeddings"] + [f"layer.{i}" for i in range(6)] + ["head"]
    before, after = _one_step(trainer)
    names = set(trainer.names) if expected == "all" else expected
    for g in trainer.groups:
        changed = [p for p in g.params if not torch.equal(before[p], after[p])]
        if g.name in names:
            assert changed, f"{name}: group {g.name} should have changed"
        else:
            assert not changed, f"{name}: frozen group {g.name} changed: {changed[:3]}"


def test_text_backbone_gets_the_transformer_lr_factor(text_config: RunConfig) -> None:
    trainer = _trainer(_with(text_config, "finetune", layer_decay=0.8))
    lrs = {g["name"]: g["base_lr"] for g in trainer.optimizer.param_groups}
    assert lrs["layer.5"] == pytest.approx(1e-3 * 0.05 * 0.8)  # BERT-scale LR below the (default 1e-3) head
    assert lrs["layer.4"] == pytest.approx(lrs["layer.5"] * 0.8) and lrs["embeddings"] < lrs["layer.0"]


@pytest.mark.slow
@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_trains_saves_and_predicts_text(text_config: RunConfig, tmp_path: Path, name: str) -> None:
    summary = runner.train(_with(text_config, name), tmp_path / name)
    metrics = json.loads((summary.out / "metrics.json").read_text())
    assert metrics["n"] == 9  # 3 per class held out for testing
    rows = list(csv.DictReader(io.StringIO((summary.out / "predictions.csv").read_text())))
    assert metrics["accuracy"] == pytest.approx(np.mean([r["true"] == r["pred"] for r in rows]))
    manifest = json.loads((summary.out / "headstart.json").read_text())
    assert manifest["data"]["skipped_rows"] == [] and manifest["config"]["strategy"]["backbone_lr_factor"] == 0.05
    run = load_run(summary.out)
    assert run.modality == "text"
    # the reloaded run scores its test split exactly as training did, and predicts strings in input order
    assert evaluate_run(run).metrics["confusion_matrix"] == metrics["confusion_matrix"]
    texts = ["what a lovely flight, thank you!", "", "my bag is lost and nobody answers"]
    records = predict_texts(run, texts)
    assert [r["text"] for r in records] == texts and records[1]["error"] == "empty text"
    for r in (records[0], records[2]):
        assert r["label"] in run.labels and sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    if name == "scratch":
        assert manifest["backbone"]["name"] == "tfidf" and (summary.out / "vocabulary.txt").is_file()
    else:
        assert manifest["recipe"]["pooling"] == "mean" and (summary.out / "encoder" / "tokenizer.json").is_file()


@pytest.mark.slow
def test_text_resume_matches_uninterrupted(
    text_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ..engine.test_checkpoint import Killed, _kill_after

    cfg = dataclasses.replace(_with(text_config, "progressive"), train=dataclasses.replace(text_config.train, epochs=2))
    full = runner.train(cfg, tmp_path / "full")
    _kill_after(monkeypatch, 1)
    with pytest.raises(Killed):
        runner.train(cfg, tmp_path / "cut")
    monkeypatch.undo()
    resumed = runner.resume(tmp_path / "cut")
    assert resumed.metrics == full.metrics
    a, b = load_run(full.out).model.state_dict(), load_run(resumed.out).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_text_data_with_an_image_backbone_is_a_clear_error(text_config: RunConfig, tmp_path: Path) -> None:
    from headstart.errors import HeadstartError

    cfg = dataclasses.replace(text_config, model=dataclasses.replace(text_config.model, backbone="mobilenet_v2"))
    with pytest.raises(HeadstartError, match="holds text data but backbone 'mobilenet_v2' is an image model"):
        runner.train(cfg, tmp_path / "x")
