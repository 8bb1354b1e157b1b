"""ONNX export on small real runs: onnxruntime alone gives what ``predict`` gives (images of any size through
the graph's own resize and crop; texts through the tokenizer.json written beside it), the graph passes the
checker with a dynamic batch and carries its labels and recipe; unsafe outputs and uncovered runs are refused.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

import headstart as hs
from headstart.artifacts import load_run
from headstart.backbones.recipe import ImageRecipe
from headstart.cli.app import app
from headstart.config import INTERPOLATIONS
from headstart.data.memory import image_array
from headstart.data.transforms import eval_transform
from headstart.errors import HeadstartError
from headstart.export import onnx as onnx_export
from headstart.export.graphs import ImagePreprocess
from tests.console import headstart, refused

FAST = {"train.batch_size": 8, "train.epochs": 1, "eval.n_boot": 50}


@pytest.fixture(scope="module")
def runs(elpv_folder: Path, tweets_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Real runs: mobilenet_v2 linear probe and 1-epoch fine-tune on ELPV cells, minilm probe on tweets, and the
    text scratch baseline (TF-IDF), which ONNX export does not cover."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEADSTART_CACHE_DIR", str(root / "feature-cache"))
        plan = {
            "probe": (elpv_folder, "mobilenet_v2", "linear-probe", {}),
            # a smaller recipe than the checkpoint's (resize 146, crop 128): the graph follows the run's recipe
            "finetune": (elpv_folder, "mobilenet_v2", "finetune", {"preprocess.input_size": 128}),
            "text": (tweets_csv, "minilm", "linear-probe", {}),
            "tfidf": (tweets_csv, "minilm", "scratch", {}),
        }
        yield {
            name: hs.fit(
                data, backbone=net, strategy=how, out=root / name, settings={**FAST, **extra}, verbose=False
            ).path
            for name, (data, net, how, extra) in plan.items()
        }


@pytest.fixture(scope="module")
def exported(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each covered run exported once: the probe by the CLI (its default place in the run), the others by the API."""
    result = CliRunner().invoke(app, ["export", str(runs["probe"])])
    assert result.exit_code == 0 and "model written to" in result.output, result.output
    out = tmp_path_factory.mktemp("exported")
    (out / "text").mkdir()
    return {
        "probe": runs["probe"] / "export" / "model.onnx",
        "finetune": hs.load(runs["finetune"]).export("onnx", out / "finetune.onnx"),
        "text": hs.load(runs["text"]).export("onnx", out / "text" / "model.onnx"),
    }


def _metadata(path: Path) -> dict[str, str]:
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert {(o.domain or "ai.onnx", o.version) for o in model.opset_import} >= {("ai.onnx", onnx_export.OPSET)}
    assert onnx_export.OPSET >= 17 and model.producer_name == "headstart"
    return {p.key: p.value for p in model.metadata_props}


def _scores(session: ort.InferenceSession, feeds: dict[str, np.ndarray], sizes: tuple[int, ...]) -> np.ndarray:
    """The graph's scores in batches of each size in turn (1, 5, 1, 5, ...): the batch axis is dynamic."""
    n, out, start = len(next(iter(feeds.values()))), [], 0
    while start < n:
        size = sizes[len(out) % len(sizes)]
        out.append(session.run(None, {k: v[start : start + size] for k, v in feeds.items()})[0])
        start += size
    return np.concatenate(out)


def _agree(run: Path, records: list[dict[str, Any]], scores: np.ndarray, tolerance: float) -> float:
    """Assert the labels agree on >= 99.5% of inputs and the probabilities within ``tolerance``; the largest gap."""
    loaded = load_run(run)
    expected = np.asarray([[r["probabilities"][label] for label in loaded.labels] for r in records])
    threshold = loaded.manifest.get("threshold")
    decided = [loaded.task.record(row, loaded.labels, threshold)["label"] for row in scores]  # predict's rule
    assert np.mean([r["label"] == label for r, label in zip(records, decided, strict=True)]) >= 0.995
    gap = float(np.abs(scores - expected).max())
    assert gap <= tolerance
    return gap


def _rgb(image: np.ndarray) -> np.ndarray:
    """(H, W) grey or (H, W, 3) uint8 as the graph's (H, W, 3) RGB input."""
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


@pytest.mark.slow
@pytest.mark.parametrize("name", ["probe", "finetune"])
def test_image_graph_gives_predicts_probabilities(
    runs: dict[str, Path], exported: dict[str, Path], elpv_folder: Path, photos: dict[str, np.ndarray], name: str
) -> None:
    model = hs.load(runs[name])
    meta = _metadata(exported[name])
    assert json.loads(meta["labels"]) == model.labels and meta["task"] == "classification"
    assert json.loads(meta["recipe"]) == model.recipe.to_dict() and meta["headstart_version"] == hs.__version__
    session = ort.InferenceSession(str(exported[name]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"] and session.get_outputs()[0].name == "probabilities"
    files = sorted(str(p) for p in elpv_folder.rglob("*.png"))  # every cell, the run's test split among them
    assert {str(elpv_folder / i) for i in json.loads((runs[name] / "splits.json").read_text())["test"]} <= set(files)
    images = np.stack([_rgb(image_array(f)) for f in files])  # (N, 300, 300, 3) uint8
    _agree(runs[name], model.predict(files), _scores(session, {"images": images}, (1, 5)), tolerance=0.01)
    coffee, cat = photos["coffee"], photos["chelsea"]
    others = [coffee[:, :333], cat, coffee[::4, ::4]]  # (400, 333), (300, 451), (100, 150): any size, upscaled too
    scores = np.concatenate([session.run(None, {"images": image[None]})[0] for image in others])
    _agree(runs[name], model.predict(others), scores, tolerance=0.01)


@pytest.mark.slow
def test_text_graph_with_its_tokenizer_gives_predicts_probabilities(
    runs: dict[str, Path], exported: dict[str, Path], tweets_csv: Path
) -> None:
    from tokenizers import Tokenizer

    model = hs.load(runs["text"])
    meta = _metadata(exported["text"])
    assert json.loads(meta["labels"]) == model.labels and meta["max_length"] == str(model.recipe.max_length)
    assert json.loads(meta["recipe"])["tokenizer"] == "tokenizer.json"
    with tweets_csv.open(encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    texts.append(" ".join(texts[:40]))  # longer than max_length: truncated alike
    tokenizer = Tokenizer.from_file(str(exported["text"].parent / "tokenizer.json"))
    assert len(tokenizer.encode(texts[-1]).ids) == model.recipe.max_length
    session = ort.InferenceSession(str(exported["text"]), providers=["CPUExecutionProvider"])
    scores = []
    for start in range(0, len(texts), 5):
        chunk = [t.strip() for t in texts[start : start + 5]]
        for batch in [chunk] if start % 10 == 0 else [[t] for t in chunk]:  # batches of 5 and of 1
            encoded = tokenizer.encode_batch(batch)  # padded to the batch's longest text
            ids = np.asarray([e.ids for e in encoded], dtype=np.int64)  # (N, T)
            mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
            scores.append(session.run(None, {"input_ids": ids, "attention_mask": mask})[0])
    _agree(runs["text"], model.predict(texts), np.concatenate(scores), tolerance=1e-4)


@pytest.mark.slow
def test_an_export_replaces_only_its_own_files(
    runs: dict[str, Path], exported: dict[str, Path], tmp_path: Path
) -> None:
    assert onnx_export.check_onnx_out(exported["finetune"]) == exported["finetune"].resolve()  # ours: replaceable
    (tmp_path / "tokenizer.json").write_text("{}")  # the user's own file where the text graph wants its tokenizer
    with pytest.raises(HeadstartError, match="tokenizer.json exists and was not written by headstart"):
        hs.load(runs["text"]).export("onnx", tmp_path / "model.onnx")
    assert (tmp_path / "tokenizer.json").read_text() == "{}" and not (tmp_path / "model.onnx").exists()


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_the_graphs_preprocessing_is_the_eval_transform(interpolation: str, photos: dict[str, np.ndarray]) -> None:
    photo = photos["coffee"]  # (400, 600, 3)
    for crop_pct in (1.0, 0.875):
        recipe = ImageRecipe(97, crop_pct, interpolation, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
        for h, w in [(301, 457), (399, 300), (60, 41)]:  # landscape, portrait, upscaled; odd crop offsets
            image = torch.from_numpy(np.ascontiguousarray(photo[:h, :w]))  # (H, W, 3) uint8
            expected = eval_transform(recipe)(image.permute(2, 0, 1))  # (3, 97, 97)
            got = ImagePreprocess(recipe)(image[None])[0]
            levels = ((got - expected) * torch.tensor(recipe.std).view(3, 1, 1) * 255).abs()  # in 0..255 levels
            assert got.shape == expected.shape and levels.max() <= 1.001 and (levels > 0.5).float().mean() < 0.03


def test_missing_export_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_export, "EXPORT_PACKAGES", {"a_module_that_is_not_installed": "onnxruntime"})
    with pytest.raises(HeadstartError, match=r"needs onnxruntime.*pip install 'headstart\[export\]'"):
        onnx_export.require_export_packages()


@pytest.mark.slow
def test_the_console_refuses_unsafe_outputs_and_uncovered_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    mine = tmp_path / "model.onnx"
    mine.write_bytes(b"my own model")
    refused(headstart("export", str(runs["probe"]), "--out", str(mine)), "was not written by headstart")
    assert mine.read_bytes() == b"my own model"
    refused(headstart("export", str(runs["probe"]), "--out", str(tmp_path / "nope" / "m.onnx")), "does not exist")
    refused(headstart("export", str(runs["probe"]), "--format", "tflite", "--out", str(mine)), "known: onnx")
    message = refused(headstart("export", str(runs["tfidf"]), "--out", str(tmp_path / "t.onnx")), "tfidf run")
    assert "image and text runs" in message and not (tmp_path / "t.onnx").exists()
