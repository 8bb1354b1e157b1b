"""``headstart rank | shift | advise`` through typer's test runner, on small real subsets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from headstart.cli.app import app
from headstart.data import ImageSet
from tests.conftest import write_class_folder

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_rank_table_then_json_from_the_cache(elpv_folder: Path) -> None:
    args = ["rank", str(elpv_folder), "--backbones", "mobilenet_v2,random:mobilenet_v2"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "LogME" in result.stdout and "random:mobilenet_v2" in result.stdout
    rows = json.loads(invoke(*args, "--format", "json").stdout)
    assert sorted(r["backbone"] for r in rows) == ["mobilenet_v2", "random:mobilenet_v2"]
    assert rows[0]["logme"] >= rows[1]["logme"]  # best first
    assert all(r["feature_cache_hit"] for r in rows)  # the second call extracts nothing


def test_rank_text_data(tweets_csv: Path) -> None:
    rows = json.loads(invoke("rank", str(tweets_csv), "--backbones", "all", "--format", "json").stdout)
    assert sorted(r["backbone"] for r in rows) == ["minilm", "mpnet"]
    assert all(r["leep"] is None for r in rows)


def test_shift_mono_to_poly(elpv: ImageSet, tmp_path: Path) -> None:
    folders = [
        write_class_folder(tmp_path / kind, elpv.subset(np.flatnonzero(elpv.meta["cell_type"] == kind)), 10)
        for kind in ("mono", "poly")
    ]
    result = invoke("shift", *map(str, folders), "--backbone", "mobilenet_v2", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_source"] == 20 and report["n_target"] == 20
    assert set(report["transfer"]) == {"source_test_accuracy", "target_accuracy", "drop"}
    table = invoke("shift", *map(str, folders), "--backbone", "mobilenet_v2").stdout
    assert "proxy A-distance" in table and "accuracy drop" in table


def test_advise_says_backbone_strategy_and_reasons(elpv_folder: Path) -> None:
    result = invoke("advise", str(elpv_folder), "--backbones", "efficientnet_lite0,mobilenet_v2")
    assert result.exit_code == 0, result.output
    assert "strategy linear-probe, then lp-ft" in result.stdout
    assert "few examples per class" in result.stdout and "best linear-probe accuracy" in result.stdout
    assert f"run: headstart train {elpv_folder} --backbone" in result.stdout
    advice = json.loads(invoke("advise", str(elpv_folder), "--backbones", "mobilenet_v2", "--format", "json").stdout)
    assert advice["backbone"] == "mobilenet_v2" and advice["then"] == "lp-ft"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rank", "builtin:elpv", "--backbones", "minilm"], "is a text model but the data holds image"),
        (["rank", "builtin:elpv", "--format", "yaml"], "'yaml' is not one of 'table', 'json', 'csv'"),
        (["shift", "builtin:elpv", "builtin:elpv", "--backbone", "nope"], "unknown backbone 'nope'; known: "),
    ],
)
def test_user_errors(args: list[str], message: str) -> None:
    result = invoke(*args)
    output = " ".join(result.output.replace("│", " ").split())  # typer's usage errors come in a wrapped box
    assert result.exit_code == 2 and message in output and "Traceback" not in output
