"""``--target`` through the console script and ``hs.fit`` / ``hs.compare``, as users run them, on real ELPV cells:
adaptation runs write ordinary models and target metrics, compare puts the target column side by side, and
bad input is refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import headstart as hs
from headstart.data.images import ImageSet
from headstart.errors import HeadstartError
from tests.conftest import write_class_folder
from tests.console import headstart, refused

FAST = ("--set", "train.batch_size=8", "--set", "preprocess.input_size=96")


@pytest.fixture(scope="module")
def target_folder(tmp_path_factory: pytest.TempPathFactory, elpv: ImageSet) -> Path:
    return write_class_folder(tmp_path_factory.mktemp("target"), elpv, per_class=5, seed=3)


def test_train_dann_with_target_then_predict(elpv_folder: Path, target_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "dann"
    args = ("train", str(elpv_folder), "--strategy", "dann", "--target", str(target_folder), "--epochs", "1")
    result = headstart(*args, "--out", str(out), *FAST)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "target_metrics.json").read_text())
    assert metrics["n"] == 10 and 0 <= metrics["macro_f1"] <= 1
    image = next(target_folder.rglob("*.png"))
    predicted = headstart("predict", str(out), str(image), "--format", "json")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)[0]["label"] in ("functional", "defective")


def test_compare_shows_source_only_and_adapted_runs_on_the_target(
    elpv_folder: Path, target_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cmp"
    args = ("compare", str(elpv_folder), "--strategies", "finetune,coral", "--target", str(target_folder))
    result = headstart(*args, "--epochs", "1", "--out", str(out), *FAST)
    assert result.returncode == 0, result.stderr
    assert "target macro-F1" in " ".join(result.stdout.split())
    rows = json.loads((out / "comparison.json").read_text())["runs"]
    assert [r["strategy"] for r in rows] == ["finetune", "coral"]
    assert all(0 <= r["target_macro_f1"] <= 1 and "target_macro_f1" in r["ci95"] for r in rows)
    assert "target macro-F1" in (out / "report.md").read_text()


def test_adaptation_refusals(elpv_folder: Path, tweets_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "never"
    msg = refused(headstart("train", str(elpv_folder), "--strategy", "coral", "--out", str(out)), "--target TARGET")
    assert "labels are not read" in msg
    missing = headstart("train", str(elpv_folder), "--strategy", "dann", "--target", str(tmp_path / "nope"))
    refused(missing, "does not exist")
    other = headstart("train", str(elpv_folder), "--strategy", "adabn", "--target", str(tweets_csv), "--out", str(out))
    refused(other, "holds text data", "pass target data of the same kind")
    probe = ("train", str(elpv_folder), "--strategy", "linear-probe", "--set", "strategy.adabn=true")
    refused(headstart(*probe, "--target", str(elpv_folder), "--out", str(out)), "strategy.adabn=true", "finetune")
    both = headstart("compare", str(elpv_folder), "--strategies", "finetune,dann", "--out", str(out))
    refused(both, "--strategy dann adapts to a target domain")
    assert not out.exists()


def test_python_api_fit_and_compare_with_target(elpv_folder: Path, target_folder: Path, tmp_path: Path) -> None:
    settings = {"train.batch_size": 8, "preprocess.input_size": 96}
    run = hs.fit(
        str(elpv_folder), strategy="adabn", target=target_folder, epochs=1, out=tmp_path / "a", settings=settings
    )
    assert run.target_metrics is not None and run.target_metrics["n"] == 10
    assert json.loads((run.path / "headstart.json").read_text())["adabn_layers"] > 10
    with pytest.raises(HeadstartError, match="target= takes a folder"):
        hs.fit(str(elpv_folder), strategy="dann", target=[1, 2], out=tmp_path / "b")  # type: ignore[arg-type]
    with pytest.raises(HeadstartError, match="--target TARGET"):
        hs.compare(str(elpv_folder), ["finetune", "dann"], out=tmp_path / "c", epochs=1, settings=settings)
    assert not (tmp_path / "b").exists()
