"""Comparison rows, tables, verdicts and the evaluate printout in the metrics of the runs' task."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from headstart import experiments
from headstart.cli import inference
from headstart.config import load_config
from headstart.report import markdown_table, rich_table, verdict
from headstart.report.html import write_compare_report
from headstart.report.metric_keys import task_of_metrics
from headstart.report.tables import columns
from headstart.runner import RunSummary
from tests.report.task_runs import make_multilabel_run, make_regression_run

REGRESSION = {
    "mae": 0.33,
    "rmse": 0.39,
    "r2": 0.15,
    "spearman": 0.34,
    "pearson": 0.43,
    "n": 27,
    "ci95": {"mae": [0.25, 0.4], "r2": [-0.24, 0.41], "spearman": [-0.07, 0.66]},
    "warnings": [],
}
MULTILABEL = {
    "micro_f1": 0.668,
    "macro_f1": 0.65,
    "mean_average_precision": 0.749,
    "micro_average_precision": 0.742,
    "subset_accuracy": 0.148,
    "hamming_loss": 0.184,
    "per_label": {"bag": {"precision": 0.9, "recall": 0.5, "f1": 0.6, "average_precision": 0.8, "support": 50}},
    "labels": ["bag"],
    "n": 304,
    "ci95": {"macro_f1": [0.616, 0.677], "mean_average_precision": [0.726, 0.777]},
    "warnings": [],
}


def _summary(metrics: dict[str, Any], strategy: str = "linear-probe", out: str = "runs/x") -> RunSummary:
    return RunSummary(Path(out), strategy, metrics, 4.2, 1281, 0, None)


def _text(table: Any) -> str:
    console = Console(file=io.StringIO(), width=240)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_task_of_metrics() -> None:
    assert task_of_metrics(REGRESSION) == "regression" and task_of_metrics(MULTILABEL) == "multilabel"
    assert task_of_metrics({"accuracy": 0.9, "macro_f1": 0.8, "roc_auc": None}) == "classification"
    assert task_of_metrics({"task": "regression"}) == "regression" and task_of_metrics({}) == "classification"


def test_regression_summary_row_and_tables() -> None:
    row = experiments.summary_row("linear-probe", [_summary(REGRESSION)])
    assert row["task"] == "regression" and row["seeds"] == 1 and row["n_test"] == 27
    assert {k: row[k] for k in ("r2", "mae", "spearman", "rmse", "pearson")} == {
        k: REGRESSION[k] for k in ("r2", "mae", "spearman", "rmse", "pearson")
    }
    assert "accuracy" not in row and row["ci95"]["r2"] == [-0.24, 0.41]
    md = markdown_table([row]).splitlines()
    assert md[0] == (
        "| strategy | R² [95% CI] | MAE [95% CI] | Spearman ρ [95% CI] | wall time (s) | trainable params | run |"
    )
    assert md[2] == (
        "| linear-probe | 0.150 [-0.240, 0.410] | 0.330 [0.250, 0.400] | 0.340 [-0.070, 0.660] | 4.2 | 1,281 | runs/x |"
    )
    printed = _text(rich_table([row], "regression"))
    assert "R² [95% CI]" in printed and "0.150 [-0.240, 0.410]" in printed and "n/a" not in printed


def test_multilabel_summary_row_and_table() -> None:
    row = experiments.summary_row("finetune", [_summary(MULTILABEL)])
    assert row["task"] == "multilabel" and row["hamming_loss"] == 0.184
    assert [h for _, h in columns([row])][1:4] == ["mean AP [95% CI]", "macro-F1 [95% CI]", "micro-F1 [95% CI]"]
    printed = _text(rich_table([row], "multilabel"))
    assert "0.749 [0.726, 0.777]" in printed and "0.668" in printed and "n/a" not in printed


def test_regression_seeds_aggregate_the_regression_metrics() -> None:
    runs = [_summary(dict(REGRESSION, r2=v)) for v in (0.1, 0.2, 0.3)]
    row = experiments.summary_row("finetune", runs)
    assert row["seeds"] == 3 and row["r2"] == pytest.approx(0.2) and row["r2_std"] == pytest.approx(0.1)
    assert "r2" in row["ci95"] and "accuracy" not in row
    assert "0.200 ± 0.100 [" in markdown_table([row])


def test_regression_verdict_ranks_by_r2() -> None:
    rows = [
        experiments.summary_row("scratch", [_summary(dict(REGRESSION, r2=0.05, ci95={"r2": [0.0, 0.1]}))]),
        experiments.summary_row("finetune", [_summary(dict(REGRESSION, r2=0.55, ci95={"r2": [0.4, 0.7]}))]),
        experiments.summary_row("linear-probe", [_summary(dict(REGRESSION, r2=0.35, ci95={"r2": [0.2, 0.5]}))]),
    ]
    said = verdict(rows, "r2")
    assert said.startswith("transfer helps: finetune is +50.0 R² points over scratch (0.550 vs 0.050)")
    assert "do not overlap" in said


def test_compare_verdict_uses_the_task_primary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``compare`` ranks regression runs by R² (the task's primary metric), not by a missing macro-F1."""
    cfg = load_config(None, ["data.source=demo.csv", "task.kind=regression"])
    r2 = {"scratch": 0.1, "linear-probe": 0.6}
    monkeypatch.setattr(experiments.runner, "prepare_data", lambda cfg, dataset=None: None)
    monkeypatch.setattr(
        experiments.runner,
        "train",
        lambda cfg, out, prepared=None, resume=None: _summary(
            dict(REGRESSION, r2=r2[cfg.strategy.name]), cfg.strategy.name
        ),
    )
    result = experiments.compare(cfg, ["linear-probe", "scratch"], tmp_path / "cmp")
    assert [r["task"] for r in result.rows] == ["regression", "regression"]
    assert "linear-probe is +50.0 R² points over scratch" in result.verdict
    assert result.verdict == verdict(result.rows, "r2")


def test_regression_compare_report(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    runs = [make_regression_run(out / s, strategy=s, r2=v) for s, v in (("linear-probe", 0.8), ("finetune", 0.9))]
    rows = [
        experiments.summary_row(s, [_summary(dict(REGRESSION, r2=v), s, str(out / s))])
        for s, v in (("linear-probe", 0.8), ("finetune", 0.9))
    ]
    page = write_compare_report(out, rows, runs, verdict(rows, "r2")).read_text()
    assert "<th>strategy</th>" in page and ">R² [95% CI]</th>" in page and ">accuracy [95% CI]" not in page
    assert "0.900 [-0.240, 0.410]" in page and 'href="finetune/report.html"' in page
    assert page.count('<svg class="plot"') == 1 and "Validation R² per epoch" in page  # the primary's curves


def test_multilabel_compare_report(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    runs = [make_multilabel_run(out / "linear-probe")]
    rows = [experiments.summary_row("linear-probe", [_summary(MULTILABEL, out=str(runs[0]))])]
    page = write_compare_report(out, rows, runs, verdict(rows, "mean_average_precision")).read_text()
    assert ">mean AP [95% CI]</th>" in page and "Validation mean AP per epoch" in page
    assert "best: linear-probe (mean AP 0.749)" in page


@pytest.mark.parametrize(
    ("metrics", "lines"),
    [
        (REGRESSION, ["R²", "RMSE", "R² 0.150 [-0.240, 0.410]  MAE 0.330 [0.250, 0.400]  Spearman ρ 0.340"]),
        (MULTILABEL, ["│ bag", "mean AP 0.749 [0.726, 0.777]  macro-F1 0.650 [0.616, 0.677]  micro-F1 0.668"]),
        (
            {
                "accuracy": 0.9,
                "macro_f1": 0.8,
                "roc_auc": None,
                "n": 10,
                "per_class": {"ok": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 4}},
            },
            ["│ ok", "accuracy 0.900  macro-F1 0.800  ROC-AUC n/a"],
        ),
    ],
)
def test_evaluate_prints_the_task_metrics(
    metrics: dict[str, Any], lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    console = Console(file=io.StringIO(), width=200)
    monkeypatch.setattr(inference, "out_console", console)
    inference._print_metrics(Path("runs/x"), None, "test", metrics)
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert all(line in printed for line in lines), printed
