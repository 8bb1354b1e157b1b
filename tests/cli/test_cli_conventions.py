"""What every command shares, as a user meets it: help and errors named from the registries, typed flags,
one ``--format`` convention with typed JSON, ``--version``, did-you-mean suggestions, a fast catalog listing.

Console-script tests (``headstart(...)``) run the installed command; the rest use typer's test runner.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from headstart import __version__
from headstart.backbones import list_backbones
from headstart.cli.app import app
from headstart.config import RunConfig, StrategyConfig
from headstart.data.builtin import known_builtins
from headstart.strategies import STRATEGIES
from tests.console import headstart, refused

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def squashed(text: str) -> str:
    """Help text without whitespace and box borders: a list wrapped over lines reads as one string."""
    return re.sub(r"[\s│]", "", text)


# --- help derived from the registries ---------------------------------------------------------------------


def test_train_help_lists_every_strategy_and_the_default() -> None:
    result = headstart("train", "--help")
    assert result.returncode == 0, result.stderr
    help_text = squashed(result.stdout)
    assert "|".join(STRATEGIES) in help_text and len(STRATEGIES) == 11
    assert f"default:{StrategyConfig.name}," in help_text
    assert "linear-probe|finetune|scratch" not in help_text  # the old hand-typed list


@pytest.mark.parametrize(("command", "option"), [("plan", "--strategy"), ("compare", "--strategies")])
def test_plan_and_compare_help_list_every_strategy(command: str, option: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert option in result.stdout and "|".join(STRATEGIES) in squashed(result.stdout)


def test_help_names_backbones_builtins_and_config_sections() -> None:
    help_text = squashed(invoke("plan", "--help").stdout)
    assert ",".join(spec.name for spec in list_backbones()) in help_text
    assert ",".join(known_builtins()) in help_text
    sections = [f.name for f in dataclasses.fields(RunConfig)]
    assert sections == ["data", "task", "preprocess", "model", "strategy", "optim", "train", "eval"]
    assert "sections" + ",".join(sections) in help_text  # --config


def test_unknown_builtin_lists_image_and_text_builtins(tmp_path: Path) -> None:
    result = headstart("train", "builtin:foo", "--out", str(tmp_path / "run"))
    message = refused(result, "unknown builtin dataset 'builtin:foo'", "known: " + ", ".join(known_builtins()))
    assert "builtin:tweets" in message and "builtin:bbc-news" in message and "builtin:elpv" in message


# --- typed flags and YAML numbers -------------------------------------------------------------------------


def test_a_folder_named_007_and_lr_1e_3_in_a_config_file(elpv_folder: Path, tmp_path: Path) -> None:
    """DATA 007 stays the folder '007' (not YAML's 7), ``lr: 3e-4`` in --config is the number 0.0003,
    and the plan's JSON holds numbers as numbers."""
    shutil.copytree(elpv_folder, tmp_path / "007")
    (tmp_path / "c.yaml").write_text("optim:\n  lr: 3e-4\n")
    result = headstart(
        "plan", "007", "--backbone", "mobilenet_v2", "--config", "c.yaml", "--format", "json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = {r["group"]: r for r in json.loads(result.stdout)}
    assert rows["head"]["lr"] == pytest.approx(3e-4)
    assert rows["head"]["trainable_from"] == 1 and rows["head"]["trainable_from_step"] == 0
    assert rows["stem"]["trainable_from"] == 3 and rows["stem"]["unfreeze"] == "scheduled"  # progressive
    assert all(isinstance(r["params"], int) and r["weight_decay"] == 0.01 for r in rows.values())


def test_a_folder_named_yes_is_not_a_boolean(
    elpv_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(elpv_folder, tmp_path / "yes")
    monkeypatch.chdir(tmp_path)
    result = invoke("plan", "yes", "--backbone", "mobilenet_v2", "--strategy", "linear-probe", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["unfreeze"] for r in rows][-1] == "probe (closed form)" and rows[-1]["trainable_from"] is None
    assert all(r["lr"] is None for r in rows)


# --- one --format convention ------------------------------------------------------------------------------

REQUIRED_ARGS = {
    "backbones": [],
    "plan": ["builtin:elpv"],
    "evaluate": ["/no/such/run"],
    "predict": ["/no/such/run"],
    "rank": ["builtin:elpv"],
    "shift": ["builtin:elpv", "builtin:elpv"],
    "advise": ["builtin:elpv"],
}
ROWS = {"predict", "rank"}  # commands whose output is rows: csv too
ARTIFACT_FORMATS = {"export": ["/no/such/run"]}  # --format names the file format written, not the printed output


def _commands_with_format() -> set[str]:
    group = get_command(app)
    return {
        name
        for name, command in group.commands.items()  # type: ignore[attr-defined]
        if any("--format" in getattr(p, "opts", []) for p in command.params)
    }


def test_every_format_option_is_checked_before_any_work() -> None:
    assert _commands_with_format() == set(REQUIRED_ARGS) | set(ARTIFACT_FORMATS)
    for name, args in ARTIFACT_FORMATS.items():
        result = invoke(name, *args, "--format", "xml")
        assert result.exit_code == 2 and "unknown export format 'xml'; known: onnx" in result.output, result.output
    for name, args in REQUIRED_ARGS.items():
        result = invoke(name, *args, "--format", "xml")
        choices = "'table', 'json', 'csv'" if name in ROWS else "'table', 'json'."
        assert result.exit_code == 2 and "'xml' is not one of" in result.output, (name, result.output)
        assert choices in " ".join(result.output.replace("│", " ").split()), (name, result.output)
        if name not in ROWS:
            assert invoke(name, *args, "--format", "csv").exit_code == 2


def test_backbones_format_xml_exits_2_from_the_console() -> None:
    result = headstart("backbones", "--format", "xml")
    assert result.returncode == 2 and "'xml' is not one of 'table'" in " ".join(result.stderr.split())
    assert result.stdout == ""


def test_rank_csv_has_one_line_per_candidate(elpv_folder: Path) -> None:
    result = invoke("rank", str(elpv_folder), "--backbones", "mobilenet_v2,random:mobilenet_v2", "--format", "csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("backbone,pretrained,feature_dim,logme,hscore,leep,nce") and len(lines) == 3
    assert {line.split(",")[0] for line in lines[1:]} == {"mobilenet_v2", "random:mobilenet_v2"}
    assert float(lines[1].split(",")[3]) >= float(lines[2].split(",")[3])  # best LogME first


# --- --version --------------------------------------------------------------------------------------------


def test_version() -> None:
    result = headstart("--version")
    assert result.returncode == 0 and result.stdout == f"headstart {__version__}\n"
    assert __version__ == importlib.metadata.version("headstart")


# --- did you mean -----------------------------------------------------------------------------------------


def test_backbone_typo_gets_a_suggestion(tmp_path: Path) -> None:
    result = headstart("train", "builtin:elpv", "--backbone", "efnet-lite0", "--out", str(tmp_path / "run"))
    refused(result, "unknown backbone 'efnet-lite0'; did you mean efficientnet_lite0? known: efficientnet_lite0,")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "fintune"], "unknown strategy 'fintune'; did you mean finetune? known: "),
        (["--set", "optim.lrr=1"], "unknown --set key 'optim.lrr'; did you mean optim.lr? known: data.source,"),
    ],
)
def test_strategy_and_config_key_typos_get_a_suggestion(args: list[str], message: str, tmp_path: Path) -> None:
    result = invoke("train", "builtin:elpv", *args, "--out", str(tmp_path / "run"))
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_compare_strategies_typo_gets_a_suggestion(tmp_path: Path) -> None:
    result = invoke("compare", "builtin:elpv", "--strategies", "finetune,linear-prob", "--out", str(tmp_path / "c"))
    assert result.exit_code == 2 and "unknown strategy 'linear-prob'; did you mean linear-probe?" in result.output
    assert not (tmp_path / "c").exists()


# --- backbones from static facts --------------------------------------------------------------------------


def test_backbones_lists_static_facts_without_building_a_model(tmp_path: Path) -> None:
    """In a fresh interpreter: the listing imports neither timm nor transformers and unpacks nothing."""
    script = (
        "import sys; from typer.testing import CliRunner; from headstart.cli.app import app; "
        "r = CliRunner().invoke(app, ['backbones', '--format', 'json']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('timm', 'transformers') if m in sys.modules)); print(r.stdout)"
    )
    env = {**os.environ, "HEADSTART_MODEL_DIR": str(tmp_path / "models"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    imported, listing = result.stdout.split("\n", 1)
    assert imported == "[]" and not (tmp_path / "models").exists()
    rows = {r["name"]: r for r in json.loads(listing)}
    assert list(rows) == [spec.name for spec in list_backbones()]
    assert rows["mpnet"]["params"] == 108_895_872 and rows["mpnet"]["feature_dim"] == 768
    assert rows["efficientnet_lite0"]["recipe"]["resize_size"] == 256
