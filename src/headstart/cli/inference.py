"""``headstart evaluate | predict``: use a trained run on labelled or new data."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from headstart.cli.common import (
    FormatOpt,
    RowsFormatOpt,
    VerboseOpt,
    app,
    err_console,
    friendly,
    out_console,
    report_skips,
    setup,
)
from headstart.errors import HeadstartError

__all__ = ["evaluate", "predict", "EVALUATE_MARK"]

EVALUATE_MARK = "headstart evaluate"  # in every metrics file evaluate writes: such a file may be replaced


@app.command()
@friendly
def evaluate(
    run: Annotated[Path, typer.Argument(help="run directory written by `headstart train`")],
    data: Annotated[str | None, typer.Argument(help="labelled data (default: the run's data, test split)")] = None,
    out: Annotated[Path | None, typer.Option(help="write metrics JSON here")] = None,
    split: Annotated[str, typer.Option(help="auto | all | train | val | test")] = "auto",
    fmt: FormatOpt = "table",
    verbose: VerboseOpt = False,
) -> None:
    """Metrics of a trained run on labelled data (accuracy, macro P/R/F1, ROC-AUC, per class, confusion)."""
    from headstart.artifacts import evaluate_run, load_run
    from headstart.artifacts.out_dir import check_out_file

    setup(verbose)
    if out is not None:
        check_out_file(out, EVALUATE_MARK)  # before any work: never a folder, never a file headstart did not write
    result = evaluate_run(load_run(run), data, split)
    m = result.metrics
    if fmt == "json":
        sys.stdout.write(json.dumps({"run": str(run), **m, "split": result.split}, indent=2) + "\n")
    else:
        _print_metrics(run, data, result.split, m)
    report_skips(len(result.skipped), run)
    if out is not None:
        from headstart._atomic import write_text_atomic

        record = {"written_by": EVALUATE_MARK, "run": str(run), **m, "split": result.split}
        write_text_atomic(out, json.dumps({**record, "skipped_unreadable": result.skipped}, indent=2) + "\n")
        err_console.print(f"metrics written to {out}")


def _print_metrics(run: Path, data: str | None, split: str, m: dict[str, Any]) -> None:
    """A per-class (classification) or per-label (multilabel) table, or a table of the metrics (regression),
    then the task's summary metrics with their 95% intervals on one line (classification: accuracy, macro-F1,
    ROC-AUC; regression: R², MAE, Spearman ρ; multilabel: mean AP, macro-F1, micro-F1)."""
    from headstart.report.metric_keys import EXTRA, metric_name, task_of_metrics
    from headstart.tasks import get_task

    task = task_of_metrics(m)
    summary, ci95 = get_task(task).summary, m.get("ci95") or {}
    per = m.get("per_class") or m.get("per_label") or {}
    table = Table(title=f"{run} on {data or 'its own data'} ({split}: {m['n']} examples)")
    if per:
        cols = ["precision", "recall", "f1", *(["average_precision", "threshold"] if "per_label" in m else [])]
        table.add_column("class" if "per_class" in m else "label")
        for col in [*cols, "support"]:
            table.add_column(metric_name(col), justify="right")
        for label, pc in per.items():
            table.add_row(escape(label), *(_number(pc.get(c)) for c in [*cols, "support"]))
    else:
        for col in ("metric", "value", "95% CI"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for key in summary + EXTRA.get(task, ()):
            table.add_row(metric_name(key), _number(m.get(key)), _interval(ci95.get(key)).strip())
    out_console.print(table)
    line = [f"{metric_name(k)} {_number(m.get(k))}{_interval(ci95.get(k))}" for k in summary]
    out_console.print("  ".join(line))


def _interval(ci: Any) -> str:
    """`` [0.851, 0.894]``, or nothing without an interval."""
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and None not in ci else ""


def _number(value: Any) -> str:
    """``0.873`` for floats, ``12`` for counts, ``n/a`` for None."""
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


@app.command()
@friendly
def predict(
    run: Annotated[Path, typer.Argument(help="run directory written by `headstart train`")],
    files: Annotated[
        list[str] | None, typer.Argument(help="image files; for a text run, files with one text per line")
    ] = None,
    text: Annotated[list[str] | None, typer.Option("--text", help="a text to classify (repeatable)")] = None,
    fmt: RowsFormatOpt = "table",
    verbose: VerboseOpt = False,
) -> None:
    """Predict labels with the run's saved preprocessing recipe, in input order (images, or texts for text runs)."""
    from headstart.artifacts import load_run

    setup(verbose)
    loaded = load_run(run)
    records, key = _predict_records(loaded, files or [], text or [])
    failed = sum(1 for r in records if r.get("error"))
    if fmt == "json":
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow([key, "label", *[f"p_{label}" for label in loaded.labels], "error"])
        for r in records:
            probs = r.get("probabilities") or {}
            writer.writerow(
                [r[key], r.get("label") or "", *[probs.get(lb, "") for lb in loaded.labels], r.get("error", "")]
            )
        sys.stdout.write(buf.getvalue())
    else:
        table = Table()
        for col in (key, "label", "probability"):
            table.add_column(col, overflow="ellipsis", max_width=60 if key == "text" else None)
        for r in records:
            p = r["probabilities"][r["label"]] if r.get("label") else None
            error = escape(str(r.get("error")))
            table.add_row(escape(r[key]), r.get("label") or f"[red]{error}[/red]", "" if p is None else f"{p:.3f}")
        out_console.print(table)
    if failed == len(records):
        raise HeadstartError(
            f"none of the {len(records)} input(s) could be predicted (first: {records[0].get('error')}); "
            "pass readable image files, folders of images or glob patterns such as 'cells/*.png'"
        )
    if failed:
        err_console.print(f"[yellow]warning: {failed} of {len(records)} input(s) could not be predicted[/yellow]")


def _predict_records(loaded: Any, files: list[str], texts: list[str]) -> tuple[list[dict[str, Any]], str]:
    """Records in input order and the name of their input field (``path``, ``text``): the run's modality turns
    the command line's arguments into inputs and predicts them."""
    from headstart.modalities import get_modality

    modality = get_modality(loaded.modality)
    return modality.predict(loaded, modality.cli_inputs(files, texts), None), modality.input_field
