"""``report.html``: one self-contained page per run, and one per comparison of runs.

The pages hold their CSS inline and their figures as inline SVG (thumbnails as PNG ``data:``
URIs); they load nothing, run no script, and link only to each other with relative paths.

Example:
    >>> from pathlib import Path
    >>> write_run_report(Path("runs/elpv/finetune"))  # doctest: +SKIP
    PosixPath('runs/elpv/finetune/report.html')
"""

from __future__ import annotations

import html
import importlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from headstart._atomic import write_text_atomic
from headstart.artifacts.names import REPORT
from headstart.report.examples import Example
from headstart.report.layout import Html, esc, figures, fmt_num, key_value_table, page, section, table
from headstart.report.metric_keys import EXTRA, metric_name
from headstart.report.plan_table import PLAN_COLUMNS, PLAN_NUMERIC, plan_cells
from headstart.report.rundata import RunData, load_run_data

__all__ = ["Example", "compare_report_html", "run_report_html", "write_compare_report", "write_run_report"]

logger = logging.getLogger(__name__)

NAV = {  # short navigation names of the sections (others: their heading)
    "summary": "summary",
    "curves": "curves",
    "lr": "learning rates",
    "confusion": "confusion",
    "per-class": "per class",
    "roc-pr": "ROC / PR",
    "reliability": "reliability",
    "mistakes": "mistakes",
    "scatter": "predicted vs true",
    "error-range": "error by range",
    "largest-errors": "largest errors",
    "per-label": "per label",
    "pr-labels": "PR curves",
    "cooccurrence": "co-occurrence",
    "config": "config",
    "plan": "plan",
}


def _card(name: str, value: str, detail: str = "") -> str:
    detail_html = f'<div class="ci">{esc(detail)}</div>' if detail else ""
    return f'<div class="card"><div class="k">{esc(name)}</div><div class="v">{esc(value)}</div>{detail_html}</div>'


def _metric_cards(metrics: dict[str, Any], summary: tuple[str, ...], extra: tuple[str, ...]) -> list[str]:
    """The task's summary metrics (always, n/a when undefined) with their 95% CIs, then its extra ones that
    have a value."""
    ci95 = metrics.get("ci95") or {}
    cards = []
    for key in summary + extra:
        if key not in metrics or (key not in summary and metrics[key] is None):
            continue
        ci = ci95.get(key)
        detail = f"95% CI {fmt_num(ci[0])} to {fmt_num(ci[1])}" if ci and None not in ci else ""
        cards.append(_card(metric_name(key), fmt_num(metrics[key]), detail))
    for k, v in sorted((metrics.get("top_k_accuracy") or {}).items(), key=lambda kv: int(kv[0])):
        cards.append(_card(f"top-{k} accuracy", fmt_num(v)))
    if isinstance(metrics.get("threshold"), int | float):
        cards.append(_card("decision threshold", fmt_num(metrics["threshold"])))
    return cards


def _targets(info: dict[str, Any]) -> str:
    """What the manifest says about the targets: class counts, label counts, or the value range."""
    counts = info.get("class_counts") or info.get("label_counts") or {}
    text = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    if info.get("without_label"):
        text += f"; {info['without_label']:,} without a label"
    target = info.get("target") or {}
    if target:
        low, high, mean = (fmt_num(target.get(k)) for k in ("min", "max", "mean"))
        text = f"target {low} to {high}, mean {mean}"
    return text


def _header(data: RunData) -> Html:
    m = data.manifest
    backbone = (m.get("backbone") or {}).get("name", "?")
    source = (m.get("data") or {}).get("source") or (m.get("config") or {}).get("data", {}).get("source", "?")
    title = f"{m.get('strategy', '?')} · {backbone} · {source}"
    info = m.get("data") or {}
    splits = ", ".join(f"{k} {v:,}" for k, v in (info.get("split_sizes") or {}).items())
    sub = f"{info.get('n', '?')} examples ({_targets(info)}); split: {splits}" if info else ""
    created = f" · written {m['created']}" if m.get("created") else ""
    return Html(f'<h1>{esc(title)}</h1><div class="sub">{esc(sub + created)}</div>')


def _summary(data: RunData) -> Html:
    m, task = data.manifest, data.task
    cards = _metric_cards(data.metrics, task.summary, EXTRA.get(task.name, ()))
    cards.append(_card("test examples", fmt_num(data.metrics.get("n"))))
    seconds = m.get("seconds")
    cards.append(_card("wall time", f"{seconds:.1f} s" if isinstance(seconds, int | float) else "n/a"))
    cards.append(_card("trainable params", fmt_num(m.get("trainable_params"))))
    cards.append(_card("best epoch", fmt_num(m.get("best_epoch"))))
    note = "Test split: never used for training or model selection."
    out = section("summary", "Summary", f'<div class="cards">{"".join(cards)}</div>', note)
    warnings = data.metrics.get("warnings") or []
    if warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in warnings)
        out = Html(f'<div class="warnings" id="warnings"><h2>Warnings</h2><ul>{items}</ul></div>\n{out}')
    return out


def _curves(data: RunData) -> Html:
    if not data.history:
        return section("curves", "Training curves", "", "history.jsonl is missing: no per-epoch curves.")
    from headstart.report import plots  # matplotlib: imported only when a report is drawn

    note = "Dashed vertical lines: epochs in which layer groups were unfrozen."
    if len(data.history) == 1:
        note = "One point: this strategy fits in one step (no epochs to plot)."
    return section("curves", "Training curves", figures(plots.training_curves(data.history)), note)


def _learning_rates(data: RunData) -> Html:
    from headstart.report import plots

    svg = plots.lr_curves(data.history)
    if svg is None:
        return Html("")
    note = "Log scale; one line per optimizer group (no-decay twins share their group's rate)."
    return section("lr", "Learning rate per layer group", figures(svg), note)


def _configuration(data: RunData) -> Html:
    m = data.manifest
    parts = []
    if m.get("recipe"):
        parts.append(f"<div><h3>recipe (preprocessing)</h3>{key_value_table(m['recipe'])}</div>")
    for name, values in (m.get("config") or {}).items():
        body = key_value_table(values) if isinstance(values, dict) else f"<pre>{esc(json.dumps(values))}</pre>"
        parts.append(f"<div><h3>config: {esc(name)}</h3>{body}</div>")
    for name in ("runtime", "versions"):
        if isinstance(m.get(name), dict):
            parts.append(f"<div><h3>{name}</h3>{key_value_table(m[name])}</div>")
    if not parts:
        return Html("")
    note = "The preprocessing recipe saved with the model, and the run's fully resolved configuration."
    return section("config", "Recipe and configuration", f'<div class="kv">{"".join(parts)}</div>', note)


def _plan(data: RunData) -> Html:
    plan = data.manifest.get("plan") or []
    if not plan:
        return Html("")
    body = table(PLAN_COLUMNS, [plan_cells(r) for r in plan], numeric=set(PLAN_NUMERIC))
    return section("plan", "Layer plan", body, "Layer groups from input to head, as planned before training.")


def _nav(sections: list[str]) -> list[tuple[str, str]]:
    """One link per section, in page order: its short name from :data:`NAV`, else its heading."""
    found = (re.search(r'<section id="([^"]+)"><h2>(.*?)</h2>', s) for s in sections)
    return [(m.group(1), NAV.get(m.group(1), html.unescape(m.group(2)))) for m in found if m]


def run_report_html(data: RunData, examples: Example | None = None) -> str:
    """The run report as one HTML string (see :func:`write_run_report`)."""
    sections = [
        _summary(data),
        _curves(data),
        _learning_rates(data),
        *data.task.report(data, examples),
        _configuration(data),
        _plan(data),
    ]
    sections = [s for s in sections if s]
    title = f"headstart: {data.manifest.get('strategy', 'run')} ({data.run_dir.name})"
    return page(title, _header(data), sections, _nav(sections))


def write_run_report(run_dir: Path, examples: Example | None = None) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path.

    ``examples(id)`` returns the test example with that id (an HxW or HxWx3 uint8 array, or a text)
    for the "most confident mistakes" section; without it, mistakes are listed by id.
    """
    run_dir = Path(run_dir)
    text = run_report_html(load_run_data(run_dir), examples)
    path = write_text_atomic(run_dir / REPORT, text)
    logger.info("wrote %s", path)
    return path


def _href(target: Path, start: Path) -> str:
    """A relative, URL-quoted link from the folder ``start`` to ``target``."""
    return quote(Path(os.path.relpath(target.resolve(), start.resolve())).as_posix())


def _run_label(data: RunData, runs: list[RunData]) -> str:
    """The strategy, with the seed when several runs share the strategy."""
    strategy = str(data.manifest.get("strategy", data.run_dir.name))
    if sum(r.manifest.get("strategy") == strategy for r in runs) > 1:
        seed = ((data.manifest.get("config") or {}).get("train") or {}).get("seed")
        return f"{strategy} (seed {seed})" if seed is not None else f"{strategy} ({data.run_dir.name})"
    return strategy


def _row_links(row: dict[str, Any], runs: list[RunData], out_dir: Path) -> Html:
    """Links to the reports of the runs behind ``row`` (its run directory, or seed folders inside it)."""
    target = Path(str(row.get("run", ""))).resolve()
    mine = [r for r in runs if r.run_dir.resolve() == target or target in r.run_dir.resolve().parents]
    if not mine:
        return esc(row.get("run", ""))
    links = [f'<a href="{esc(_href(r.run_dir / REPORT, out_dir))}">{esc(r.run_dir.name)}</a>' for r in mine]
    return Html(f"{esc(row.get('run', ''))}<br>report: {', '.join(links)}")


def _compare_table(rows: list[dict[str, Any]], runs: list[RunData], out_dir: Path) -> Html:
    from headstart.report.tables import columns, format_cell

    cols = columns(rows)
    body = [[_row_links(r, runs, out_dir) if k == "run" else format_cell(k, r) for k, _ in cols] for r in rows]
    return table([h for _, h in cols], body, numeric=set(range(1, len(cols) - 1)))


def _compare_curves(rows: list[dict[str, Any]], runs: list[RunData]) -> Html:
    """Validation curves of the task's primary metric per run, and the task's test-split figures per run."""
    from headstart.report import plots
    from headstart.report.metric_keys import task_of_rows
    from headstart.tasks import get_task

    task = runs[0].task if runs else get_task(task_of_rows(rows))
    named = {_run_label(r, runs): r for r in runs}
    curves = plots.compare_curves({name: r.history for name, r in named.items()}, [f"val_{task.primary}"])
    try:
        module = importlib.import_module(f"headstart.report.{task.name}")
    except ModuleNotFoundError:
        module = None
    tests: list[Any] = getattr(module, "compare_figures", lambda runs: [])(named)
    if not curves and not any(tests):
        return Html("")
    note = "Validation curves from each run's history.jsonl"
    note += "; test-split curves from its predictions.csv." if any(tests) else "."
    return section("curves", "Curves", figures(curves) + figures(*tests), note)


def compare_report_html(out_dir: Path, rows: list[dict[str, Any]], runs: list[RunData], verdict: str) -> str:
    """The comparison page as one HTML string (see :func:`write_compare_report`)."""
    first = runs[0].manifest if runs else {}
    source = (first.get("data") or {}).get("source", "?")
    backbone = (first.get("backbone") or {}).get("name", "?")
    n_test = rows[0].get("n_test") if rows else None
    header = Html(
        f"<h1>{esc(f'Comparison: {source} with {backbone}')}</h1>"
        f'<div class="sub">{esc(f"test split: {fmt_num(n_test)} examples, never used for training or selection")}</div>'
    )
    warnings = sorted({w for r in rows for w in r.get("warnings") or []})
    warn = "".join(f"<li>{esc(w)}</li>" for w in warnings)
    sections = [
        Html(f'<div class="warnings" id="warnings"><h2>Warnings</h2><ul>{warn}</ul></div>\n') if warn else "",
        section(
            "results",
            "Results",
            f'<p class="verdict">{esc(verdict)}</p>' + _compare_table(rows, runs, out_dir),
            "Metrics on the test split: value [95% CI], or mean ± std [95% CI] over seeds.",
        ),
    ]
    sections.append(_compare_curves(rows, runs))
    labels = {_run_label(r, runs): r for r in runs}
    items = "".join(
        f'<li><a href="{esc(_href(r.run_dir / REPORT, out_dir))}">{esc(name)}</a> '
        f"<code>{esc(_href(r.run_dir, out_dir))}</code></li>"
        for name, r in labels.items()
    )
    sections.append(section("runs", "Run reports", f"<ul>{items}</ul>", "Each run's own report.html."))
    nav = [("results", "results"), ("curves", "curves"), ("runs", "run reports")]
    return page(f"headstart comparison: {source}", header, [s for s in sections if s], nav)


def write_compare_report(out_dir: Path, rows: list[dict[str, Any]], run_dirs: list[Path], verdict: str) -> Path:
    """Write ``out_dir/report.html``: the comparison table, the verdict, overlaid validation and ROC
    curves, and relative links to each run's own ``report.html``; returns its path."""
    out_dir = Path(out_dir)
    runs = [load_run_data(Path(d)) for d in run_dirs]
    path = write_text_atomic(out_dir / REPORT, compare_report_html(out_dir, rows, runs, verdict))
    logger.info("wrote %s", path)
    return path
