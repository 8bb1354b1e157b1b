"""The CLI through typer's test runner: every command, and user errors without tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headstart.cli.app import app

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_backbones_table_and_json() -> None:
    result = invoke("backbones")
    assert result.exit_code == 0 and "efficientnet_lite2" in result.stdout and "mobilenet_v2" in result.stdout
    rows = json.loads(invoke("backbones", "--format", "json").stdout)
    assert {r["name"]: r["feature_dim"] for r in rows}["mobilenet_v2"] == 1280
    recipes = {r["name"]: r["recipe"] for r in rows}
    assert recipes["mobilenet_v2"]["interpolation"] == "bilinear"
    assert recipes["minilm"] == recipes["minilm"] | {"modality": "text", "max_length": 256, "pooling": "mean"}
    assert {r["name"]: r["feature_dim"] for r in rows}["mpnet"] == 768


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, elpv_folder: Path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "probe"
    result = invoke(
        "train",
        str(elpv_folder),
        "--backbone",
        "mobilenet_v2",
        "--strategy",
        "linear-probe",
        "--out",
        str(out),
        "--set",
        "train.batch_size=8",
    )
    assert result.exit_code == 0, result.output
    assert "linear-probe" in result.stdout and "run written to" in result.stdout
    return out


def test_train_writes_a_run(trained: Path) -> None:
    manifest = json.loads((trained / "headstart.json").read_text())
    assert manifest["backbone"]["name"] == "mobilenet_v2" and manifest["config"]["train"]["batch_size"] == 8


def test_evaluate_writes_metrics(trained: Path, elpv_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    result = invoke("evaluate", str(trained), str(elpv_folder), "--out", str(out))
    assert result.exit_code == 0, result.output
    m = json.loads(out.read_text())
    assert m["split"] == "test" and m["n"] == len(json.loads((trained / "splits.json").read_text())["test"])
    result = invoke("evaluate", str(trained), str(elpv_folder), "--split", "all", "--out", str(out))
    assert json.loads(out.read_text())["n"] == 28
    printed = json.loads(
        invoke("evaluate", str(trained), str(elpv_folder), "--split", "all", "--format", "json").stdout
    )
    assert printed["n"] == 28 and printed["split"] == "all" and isinstance(printed["accuracy"], float)


def test_predict_json_and_csv(trained: Path, elpv_folder: Path) -> None:
    files = [str(p) for p in sorted(elpv_folder.rglob("*.png"))[:3]]
    result = invoke("predict", str(trained), *files, "--format", "json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["path"] for r in records] == files
    assert all(set(r["probabilities"]) == {"defective", "functional"} for r in records)
    result = invoke("predict", str(trained), *files, "--format", "csv")
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "path,label,p_defective,p_functional,error" and len(lines) == 4


@pytest.mark.parametrize(
    ("program", "printed"),
    [
        (["-m", "headstart", "predict", "{run}", "{image}", "--format", "json"], "probabilities"),
        (["-c", "import headstart as hs; print(hs.load({run!r}).predict([{image!r}])[0])"], "'probabilities'"),
        (["-m", "headstart", "plan", "{folder}", "--backbone", "mobilenet_v2", "--format", "json"], "trainable_from"),
    ],
    ids=["predict", "hs.load", "plan"],
)
def test_commands_that_score_nothing_import_no_metrics_or_plotting_libraries(
    program: list[str], printed: str, trained: Path, elpv_folder: Path
) -> None:
    """``headstart predict``, ``hs.load(...).predict`` and ``headstart plan`` start light: scikit-learn, scipy
    and matplotlib are imported only where a run computes metrics or draws (``python -X importtime`` lists
    every import of the process)."""
    image = str(sorted(elpv_folder.rglob("*.png"))[0])
    args = [a.format(run=str(trained), image=image, folder=str(elpv_folder)) for a in program]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert printed in result.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")
    }
    assert "torch" in imported and "headstart.config" in imported  # the listing is complete
    assert not {"sklearn", "scipy", "matplotlib"} & imported


def test_compare_prints_one_table(elpv_folder: Path, tmp_path: Path) -> None:
    result = invoke(
        "compare",
        str(elpv_folder),
        "--backbone",
        "mobilenet_v2",
        "--strategies",
        "linear-probe,scratch",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "cmp"),
        "--set",
        "train.batch_size=8",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["runs"]
    assert [r["strategy"] for r in rows] == ["linear-probe", "scratch"]
    assert (tmp_path / "cmp" / "report.md").is_file() and (tmp_path / "cmp" / "scratch" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "/no/such/dir"], "does not exist"),
        (["train", "builtin:elpv", "--backbone", "resnet9000"], "unknown backbone 'resnet9000'"),
        (["train", "builtin:elpv", "--strategy", "yolo"], "unknown strategy 'yolo'"),
        (["train", "builtin:elpv", "--set", "optim.learning_rate=1"], "unknown --set key"),
        (["compare", "builtin:elpv", "--strategies", "finetune,nope"], "unknown strategy 'nope'; known: "),
        (["evaluate", "/no/such/run"], "is not a headstart run"),
        (["predict", "/no/such/run", "x.png"], "is not a headstart run"),
    ],
)
def test_user_errors_are_one_paragraph_without_traceback(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert result.output.startswith("error:")


def test_recipe_override_warns_the_user(elpv_folder: Path, tmp_path: Path) -> None:
    result = invoke(
        "train",
        str(elpv_folder),
        "--backbone",
        "mobilenet_v2",
        "--strategy",
        "linear-probe",
        "--out",
        str(tmp_path / "r"),
        "--set",
        "preprocess.input_size=128",
    )
    assert result.exit_code == 0, result.output
    assert "preprocessing mismatch" in result.output and "input_size=128" in result.output
    assert "input_size=224" in result.output
    manifest = json.loads((tmp_path / "r" / "headstart.json").read_text())
    assert manifest["recipe"]["input_size"] == 128 and manifest["checkpoint_recipe"]["input_size"] == 224


def test_plan_prints_groups_without_training(elpv_folder: Path, tmp_path: Path) -> None:
    result = invoke(
        "plan", str(elpv_folder), "--strategy", "partial", "--set", "strategy.train_groups=2", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["group"] for r in rows][-2:] == ["block.6", "head"]
    assert [r["trainable_from"] for r in rows][-3:] == [None, 1, 1]
    assert [r["unfreeze"] for r in rows][-3:] == ["never", "start", "start"]
    table = invoke("plan", str(elpv_folder), "--strategy", "plateau")
    assert "on plateau" in table.stdout and "block.3" in table.stdout
    assert not list(tmp_path.iterdir())  # nothing written


def test_train_resume_through_the_cli(elpv_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from headstart.engine.train import Trainer

    def killed(self: Trainer, path: Path) -> None:
        if self.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "on_checkpoint", killed)
    out = tmp_path / "run"
    args = [
        "train",
        str(elpv_folder),
        "--strategy",
        "finetune",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--set",
        "train.batch_size=8",
    ]
    assert invoke(*args).exit_code != 0
    again = invoke(*args)
    assert again.exit_code == 2 and "--resume" in again.output
    monkeypatch.undo()
    result = invoke("train", "--resume", str(out))
    assert result.exit_code == 0, result.output
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert json.loads((out / "headstart.json").read_text())["resumed"] is True


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory, tweets_csv: Path) -> Path:
    out = tmp_path_factory.mktemp("cli-text") / "probe"
    result = invoke("train", str(tweets_csv), "--backbone", "minilm", "--strategy", "linear-probe", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_predict_strings_and_files_of_lines_in_input_order(text_run: Path, tmp_path: Path) -> None:
    texts = ["thanks for the upgrade, lovely crew", "flight cancelled again, terrible"]
    result = invoke("predict", str(text_run), "--text", texts[0], "--text", texts[1], "--format", "json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["text"] for r in records] == texts
    assert all(set(r["probabilities"]) == {"negative", "neutral", "positive"} for r in records)
    lines = tmp_path / "lines.txt"
    lines.write_text(texts[1] + "\n\n" + texts[0] + "\n")
    from_file = json.loads(invoke("predict", str(text_run), str(lines), "--format", "json").stdout)
    assert [r["text"] for r in from_file] == texts[::-1]
    assert [r["probabilities"] for r in from_file] == [r["probabilities"] for r in records[::-1]]
    csv_out = invoke("predict", str(text_run), "--text", texts[0], "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "text,label,p_negative,p_neutral,p_positive,error"


def test_text_user_errors(text_run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "reviews.csv"
    bad.write_text("review,stars\ngood,5\nbad,1\n")
    result = invoke("train", str(bad), "--backbone", "minilm", "--set", "data.text_column=review")
    assert result.exit_code == 2 and "data.label_column" in result.output and "stars" in result.output
    result = invoke("predict", str(text_run), "x.png", "--text", "hello")
    assert result.exit_code == 2 and "cannot read 'x.png'" in result.output
    result = invoke("predict", str(text_run))
    assert result.exit_code == 2 and "--text" in result.output
