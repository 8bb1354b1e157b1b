"""A damaged or hand-edited run folder: a refusal naming the file, the problem and the fix, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from headstart import runner
from headstart.artifacts import evaluate_run, load_run, predict_files, predict_texts
from headstart.config import load_config
from headstart.errors import HeadstartError
from tests.console import headstart, refused

FIX = "copy it again from where it was trained, or train it again"


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory, elpv_folder: Path) -> Path:
    """A real mobilenet_v2 linear-probe run on the ELPV subset (a few seconds), copied before each damage."""
    overrides = [f"data.source={elpv_folder}", "model.backbone=mobilenet_v2", "strategy.name=linear-probe"]
    cfg = load_config(None, [*overrides, "train.batch_size=8"])
    return runner.train(cfg, tmp_path_factory.mktemp("runs") / "probe").out


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory: pytest.TempPathFactory, tweets_csv: Path) -> Path:
    """A real tf-idf text run (minilm + scratch) on the tweets subset."""
    cfg = load_config(None, [f"data.source={tweets_csv}", "model.backbone=minilm", "strategy.name=scratch"])
    return runner.train(cfg, tmp_path_factory.mktemp("runs") / "tfidf").out


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def _edit_manifest(run: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((run / "headstart.json").read_text())
    edit(manifest)
    (run / "headstart.json").write_text(json.dumps(manifest))


def test_truncated_weights_are_refused_by_evaluate_and_predict(
    image_run: Path, elpv_folder: Path, tmp_path: Path
) -> None:
    run = _copy(image_run, tmp_path)
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    cell = str(next(elpv_folder.rglob("*.png")))
    for args in (["evaluate", str(run)], ["predict", str(run), cell]):
        refused(headstart(*args), f"{weights} cannot be read as safetensors", "is damaged", FIX)


@pytest.mark.parametrize(
    "damage",
    [b"", os.urandom(4096), b'\x08\x00\x00\x00\x00\x00\x00\x00{"a":1}'],
    ids=["empty", "random", "bad-header"],
)
def test_unreadable_weights_name_the_file(image_run: Path, tmp_path: Path, damage: bytes) -> None:
    run = _copy(image_run, tmp_path)
    (run / "model.safetensors").write_bytes(damage)
    with pytest.raises(HeadstartError, match="model.safetensors cannot be read as safetensors") as err:
        load_run(run)
    assert FIX in str(err.value)


def test_weights_of_another_network_are_refused(image_run: Path, tmp_path: Path) -> None:
    run = _copy(image_run, tmp_path)
    state = load_file(str(run / "model.safetensors"))
    state["classifier.weight"] = torch.zeros(3, 1280)  # a 3-class head in a 2-class run
    save_file(state, str(run / "model.safetensors"))
    with pytest.raises(
        HeadstartError,
        match=r"does not match the network of headstart.json \(mobilenetv2_100 with 2 classes\): .*size mismatch",
    ):
        load_run(run)


def _set(section: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(manifest: dict[str, Any]) -> None:
        if section:
            manifest[section][key] = value
        else:
            manifest[key] = value

    return edit


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda manifest: manifest.pop(key)


MANIFEST_DAMAGE = [
    (_drop("labels"), "has labels=null; it must be a non-empty list of class names"),
    (_set("", "labels", []), "has labels=[]; it must be a non-empty list"),
    (_set("", "labels", ["defective", 7]), 'has labels=["defective", 7]'),
    (_set("", "labels", ["defective", "defective"]), "lists the label(s) 'defective' more than once"),
    (_drop("recipe"), "has no 'recipe' section (a JSON object); found null"),
    (_set("", "config", "train"), "has no 'config' section (a JSON object); found \"train\""),
    (_set("backbone", "architecture", 5), "has backbone.architecture=5; it must be the timm architecture name"),
    (_set("recipe", "kind", "video"), 'has recipe.kind="video"; it must be audio | image | mfcc | text | tfidf'),
    (_set("data", "source", None), "has data.source=null"),
    (_set("", "threshold", 2), "has threshold=2; it must be null or a number in [0, 1]"),
    (_set("recipe", "input_size", 100000), "has a bad recipe: recipe.input_size=100000 must be an integer in 16..2048"),
    (_set("recipe", "input_size", "224"), "recipe.input_size='224' must be an integer in 16..2048"),
    (_set("recipe", "crop_pct", 5), "recipe.crop_pct=5 must be a number in [0.1, 1]"),
    (_set("recipe", "interpolation", "lanczos"), "recipe.interpolation='lanczos' must be one of bilinear, bicubic"),
    (_set("recipe", "mean", [0.5, 0.5]), "recipe.mean=[0.5, 0.5] must be a list of 3 numbers"),
    (_set("recipe", "std", [0.5, 0, 0.5]), "recipe.std=[0.5, 0, 0.5] must be a list of 3 numbers > 0"),
    (lambda m: m["recipe"].pop("std"), "recipe.std is missing; it must be a list of 3 numbers > 0"),
    (lambda m: m["config"]["train"].update(epochs=0), "holds an invalid config: train.epochs=0 must be >= 1"),
    (lambda m: m["config"]["optim"].update(lr="fast"), "holds an invalid config: optim.lr must be of type float"),
    (
        lambda m: m["config"].update(extra={}),
        "holds an invalid config: unknown config key 'extra'; known: data, task, preprocess",
    ),
]


@pytest.mark.parametrize(("edit", "message"), MANIFEST_DAMAGE, ids=[m[:40] for _, m in MANIFEST_DAMAGE])
def test_malformed_manifest_names_the_key(
    image_run: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    run = _copy(image_run, tmp_path)
    _edit_manifest(run, edit)
    with pytest.raises(HeadstartError) as err:
        load_run(run)
    text = str(err.value)
    assert text.startswith(f"{run / 'headstart.json'} ") and message in text and FIX in text, text


@pytest.mark.parametrize("text", ['{"labels": ["a", "b"], "rec', "[1, 2]", "\udcff"], ids=["cut", "list", "binary"])
def test_manifest_that_is_not_a_json_object(image_run: Path, tmp_path: Path, text: str) -> None:
    run = _copy(image_run, tmp_path)
    (run / "headstart.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(HeadstartError, match=r"headstart.json (is not valid JSON|must hold a JSON object)") as err:
        load_run(run)
    assert FIX in str(err.value)


def test_huge_input_size_is_refused_before_any_image_is_read(
    image_run: Path, elpv_folder: Path, tmp_path: Path
) -> None:
    """``input_size: 100000`` used to allocate ~52 GB per batch; now `headstart predict` stops at the manifest."""
    run = _copy(image_run, tmp_path)
    _edit_manifest(run, _set("recipe", "input_size", 100000))
    result = headstart("predict", str(run), str(next(elpv_folder.rglob("*.png"))))
    refused(result, f"{run / 'headstart.json'} has a bad recipe", "recipe.input_size=100000", "16..2048", FIX)


def test_damaged_splits_name_the_file(image_run: Path, tmp_path: Path) -> None:
    run = _copy(image_run, tmp_path)
    (run / "splits.json").write_text('{"train": [')
    with pytest.raises(HeadstartError, match=r"splits.json cannot be read \(.*\)\. The run .* is damaged"):
        evaluate_run(load_run(run))


def test_tfidf_run_without_its_vocabulary(tfidf_run: Path, tmp_path: Path) -> None:
    run = _copy(tfidf_run, tmp_path)
    (run / "vocabulary.txt").unlink()
    with pytest.raises(HeadstartError, match=r"vocabulary.txt cannot be read"):
        load_run(run)
    shutil.copy(tfidf_run / "vocabulary.txt", run / "vocabulary.txt")
    _edit_manifest(run, lambda m: m["recipe"].pop("ngram_max"))
    with pytest.raises(HeadstartError, match=r"headstart.json has a recipe without the key 'ngram_max'"):
        load_run(run)


def _poison(run: Path, key: str) -> None:
    """Write NaN into one weight of the run, as a diverged training would have saved it."""
    state = load_file(str(run / "model.safetensors"))
    state[key][0, 0] = float("nan")
    save_file(state, str(run / "model.safetensors"))


NAN = ["produced NaN/inf probabilities for", "its weights hold NaN/inf (training diverged?)", "lower optim.lr"]


def test_nan_model_is_refused_by_predict_json(image_run: Path, elpv_folder: Path, tmp_path: Path) -> None:
    run = _copy(image_run, tmp_path)
    _poison(run, "classifier.weight")
    cells = [str(p) for p in sorted(elpv_folder.rglob("*.png"))[:3]]
    result = headstart("predict", str(run), *cells, "--format", "json")
    refused(result, f"the model in {run} produced NaN/inf probabilities for 3 input(s)", *NAN[1:])
    assert result.stdout == ""  # no half-written, invalid JSON


def test_nan_model_is_refused_by_evaluate_and_predict_files(image_run: Path, elpv_folder: Path, tmp_path: Path) -> None:
    run = _copy(image_run, tmp_path)
    _poison(run, "classifier.weight")
    loaded = load_run(run)
    n_test = len(loaded.splits()["test"])
    with pytest.raises(HeadstartError, match=f"probabilities for {n_test} input"):
        evaluate_run(loaded)
    cells = [str(p) for p in sorted(elpv_folder.rglob("*.png"))[:11]]
    with pytest.raises(HeadstartError, match="probabilities for 11 input") as err:
        predict_files(loaded, cells, batch_size=4)  # counted over every batch
    assert all(fragment in str(err.value) for fragment in NAN)


def test_nan_text_model_is_refused(tfidf_run: Path, tmp_path: Path) -> None:
    run = _copy(tfidf_run, tmp_path)
    _poison(run, "head.weight")
    with pytest.raises(HeadstartError, match="probabilities for 2 input") as err:
        predict_texts(load_run(run), ["thanks for the upgrade", "", "flight cancelled again"])
    assert all(fragment in str(err.value) for fragment in NAN)
