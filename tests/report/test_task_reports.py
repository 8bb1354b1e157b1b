"""Each task's part of the run report: regression and multi-label sections from hand-made run folders, and the
classification report's structure (its sections, figures and navigation) as before tasks had their own parts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from headstart.errors import HeadstartError
from headstart.report.html import write_run_report
from headstart.report.multilabel import label_predictions, mistake_margins
from headstart.report.rundata import load_run_data
from tests.report.task_runs import ML_LABELS, make_multilabel_run, make_regression_run, multilabel_values
from tests.report.test_html import LONG_TEXT, RUN_SECTIONS, make_run

REGRESSION_SECTIONS = ["summary", "curves", "lr", "scatter", "error-range", "largest-errors", "config", "plan"]
MULTILABEL_SECTIONS = ["summary", "curves", "per-label", "pr-labels", "cooccurrence", "mistakes", "config", "plan"]


def _sections(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', page)


def _section(page: str, anchor: str) -> str:
    return page.split(f'<section id="{anchor}">')[1].split("</section>")[0]


def _nav(page: str) -> list[str]:
    return re.findall(r'<a href="#([^"]+)">', page.split("<nav>")[1].split("</nav>")[0])


def _clean(page: str) -> None:
    assert "http://" not in page and "https://" not in page and "<script" not in page.lower()


def test_regression_report(tmp_path: Path) -> None:
    run = make_regression_run(tmp_path / "reg", strategy="finetune")
    page = write_run_report(run, examples=lambda i: np.full((12, 12), int(i.split("/")[1]), np.uint8)).read_text()
    assert _sections(page) == REGRESSION_SECTIONS and _nav(page) == REGRESSION_SECTIONS
    assert "Predicted vs true, and residuals" in page and "Error by range of the true value" in page
    # curves, learning rates, predicted vs true, residual histogram, error by range
    assert page.count('<svg class="plot"') == 5
    summary = _section(page, "summary")
    for name, ci in (("R²", "95% CI 0.710 to 0.860"), ("MAE", "95% CI 0.400 to 0.900"), ("Spearman ρ", "0.850")):
        assert f'<div class="k">{name}</div>' in summary and ci in summary
    assert '<div class="k">RMSE</div>' in summary and '<div class="k">accuracy</div>' not in summary
    assert "only 24 test examples" in page and "target 0.000 to 10.000, mean 5.000" in page
    curves = _section(page, "curves")
    assert 'aria-label="training curves"' in curves and "Validation MAE and R²" in curves
    ranges = _section(page, "error-range")
    assert ranges.count("<tr>") == 1 + 4  # header and the four quantile ranges
    largest = _section(page, "largest-errors")
    assert largest.count("<img") == 12 and re.findall(r'alt="([^"]+)"', largest)[0] == "ex/5"
    assert "(+6)" in largest  # example 5: the largest error, first
    _clean(page)


def test_regression_largest_errors_as_texts_and_ids(tmp_path: Path) -> None:
    run = make_regression_run(tmp_path / "reg")
    page = write_run_report(run, examples=lambda i: LONG_TEXT).read_text()
    largest = _section(page, "largest-errors")
    assert "<th>text</th>" in largest and "&lt;script&gt;" in largest and "<img" not in largest
    assert re.findall(r"<tr><td>(.*?)</td>", largest)[0] == "ex/5"
    by_id = _section(write_run_report(run).read_text(), "largest-errors")
    assert "listed by id only" in by_id and "<th>text</th>" not in by_id


def test_multilabel_report(tmp_path: Path) -> None:
    run = make_multilabel_run(tmp_path / "ml")
    page = write_run_report(run, examples=lambda i: np.zeros((8, 8, 3), np.uint8)).read_text()
    assert _sections(page) == MULTILABEL_SECTIONS and _nav(page) == MULTILABEL_SECTIONS
    # curves, per-label bars, per-label PR curves, co-occurrence matrix
    assert page.count('<svg class="plot"') == 4
    summary = _section(page, "summary")
    assert '<div class="k">mean AP</div>' in summary and "95% CI 0.700 to 0.850" in summary
    assert '<div class="k">Hamming loss</div>' in summary and "decision threshold" not in summary
    assert "&lt;finger&gt;" in page and "<finger>" not in page
    assert "4 without a label" in page
    per_label = _section(page, "per-label")
    assert per_label.count("<tr>") == 1 + len(ML_LABELS) and ">AP</th>" in per_label
    Y, _ = multilabel_values()
    cooccurrence = _section(page, "cooccurrence")
    assert f"{int((Y.sum(1) == 0).sum())} of {len(Y)} have no label" in cooccurrence
    mistakes = _section(page, "mistakes")
    assert mistakes.count("<img") == 8 and re.findall(r'alt="([^"]+)"', mistakes)[:2] == ["ex/3", "ex/22"]
    assert "(+dirt 0.99)" in mistakes  # predicted but absent, at 0.99 against a 0.55 threshold
    _clean(page)


def test_multilabel_mistakes_table_and_margins(tmp_path: Path) -> None:
    run = make_multilabel_run(tmp_path / "ml")
    page = write_run_report(run).read_text()
    mistakes = _section(page, "mistakes")
    assert "listed by id only" in mistakes and "<th>most wrong label</th>" in mistakes
    first = re.findall(r"<tr><td>(.*?)</td>", mistakes)[0]
    assert first == "ex/3"
    p = label_predictions(load_run_data(run).predictions, ML_LABELS)
    assert p is not None
    margin, worst = mistake_margins(p, np.array([0.5, 0.45, 0.55]))
    assert np.nanargmax(margin) == 3 and worst[3] == 2 and margin[3] == pytest.approx(0.44)
    assert np.isnan(margin[(p.pred == p.Y).all(1)]).all()


def test_task_sections_without_predictions(tmp_path: Path) -> None:
    for run, anchors in (
        (make_regression_run(tmp_path / "reg"), ["scatter", "error-range", "largest-errors"]),
        (make_multilabel_run(tmp_path / "ml"), ["pr-labels", "cooccurrence", "mistakes"]),
    ):
        (run / "predictions.csv").unlink()
        page = write_run_report(run).read_text()
        assert all("predictions.csv is missing" in _section(page, a) for a in anchors)


def test_classification_report_structure_unchanged(tmp_path: Path) -> None:
    run = make_run(tmp_path / "img", ["ok", "<defect>"], None, "progressive")
    page = write_run_report(run, examples=lambda i: np.zeros((8, 8), np.uint8)).read_text()
    assert _sections(page) == RUN_SECTIONS and _nav(page) == RUN_SECTIONS
    nav = page.split("<nav>")[1].split("</nav>")[0]
    assert '<a href="#roc-pr">ROC / PR</a>' in nav and '<a href="#per-class">per class</a>' in nav
    summary = _section(page, "summary")
    keys = re.findall(r'<div class="k">(.*?)</div>', summary)
    assert keys[:5] == ["accuracy", "macro-F1", "ROC-AUC", "ECE", "log loss"]  # summary metrics, then extra ones
    assert "Validation accuracy and macro-F1" in _section(page, "curves")
    assert page.count('<svg class="plot"') == 7
    # a run saved before tasks were recorded (no "task" in headstart.json) is a classification run
    manifest = json.loads((run / "headstart.json").read_text())
    assert "task" not in manifest and load_run_data(run).task.name == "classification"


def test_predictions_of_another_task_are_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "img", ["ok", "<defect>"], None, "progressive")
    reg = make_regression_run(tmp_path / "reg")
    (run / "predictions.csv").write_text((reg / "predictions.csv").read_text())
    with pytest.raises(HeadstartError, match=r"lacks column\(s\) confidence, p_ok"):
        write_run_report(run)
