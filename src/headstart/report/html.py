"""``report.html``: one self-contained page per run, and one per comparison of runs.

The pages hold their CSS inline and their figures as inline SVG (thumbnails as PNG ``data:``
URIs); they load nothing, run no script, and link only to each other with relative paths.

Example:
    >>> from pathlib import Path
    >>> write_run_report(Path("runs/elpv/finetune"))  # doctest: +SKIP
    PosixPath('runs/elpv/finetune/report.html')
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from headstart._atomic import write_text_atomic
from headstart.artifacts.names import REPORT
from headstart.metrics.calibration import expected_calibration_error
from headstart.report import plots
from headstart.report.layout import Html, esc, fmt_num, key_value_table, page, section, table
from headstart.report.plan_table import PLAN_COLUMNS, PLAN_NUMERIC, plan_cells
from headstart.report.rundata import RunData, load_run_data

__all__ = ["Example", "compare_report_html", "run_report_html", "write_compare_report", "write_run_report"]

logger = logging.getLogger(__name__)

Example = Callable[[str], "np.ndarray | str | None"]  # test id -> HxW / HxWx3 uint8 image, text, or None
MAX_MISTAKES = 12
MAX_TEXT = 300  # characters of a text example shown
HEADLINE = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("roc_auc", "ROC-AUC"))
EXTRA = (("balanced_accuracy", "balanced accuracy"), ("pr_auc", "PR-AUC"), ("ece", "ECE"), ("log_loss", "log loss"))


def _card(name: str, value: str, detail: str = "") -> str:
    detail_html = f'<div class="ci">{esc(detail)}</div>' if detail else ""
    return f'<div class="card"><div class="k">{esc(name)}</div><div class="v">{esc(value)}</div>{detail_html}</div>'


def _metric_cards(metrics: dict[str, Any]) -> list[str]:
    ci95 = metrics.get("ci95") or {}
    cards = []
    for key, name in HEADLINE + EXTRA:
        if key not in metrics or (key in dict(EXTRA) and metrics[key] is None):
            continue
        ci = ci95.get(key)
        detail = f"95% CI {fmt_num(ci[0])} to {fmt_num(ci[1])}" if ci and None not in ci else ""
        cards.append(_card(name, fmt_num(metrics[key]), detail))
    for k, v in sorted((metrics.get("top_k_accuracy") or {}).items(), key=lambda kv: int(kv[0])):
        cards.append(_card(f"top-{k} accuracy", fmt_num(v)))
    if metrics.get("threshold") is not None:
        cards.append(_card("decision threshold", fmt_num(metrics["threshold"])))
    return cards


def _header(data: RunData) -> Html:
    m = data.manifest
    backbone = (m.get("backbone") or {}).get("name", "?")
    source = (m.get("data") or {}).get("source") or (m.get("config") or {}).get("data", {}).get("source", "?")
    title = f"{m.get('strategy', '?')} · {backbone} · {source}"
    info = m.get("data") or {}
    splits = ", ".join(f"{k} {v:,}" for k, v in (info.get("split_sizes") or {}).items())
    classes = ", ".join(f"{k} {v:,}" for k, v in (info.get("class_counts") or {}).items())
    sub = f"{info.get('n', '?')} examples ({classes}); split: {splits}" if info else ""
    created = f" · written {m['created']}" if m.get("created") else ""
    return Html(f'<h1>{esc(title)}</h1><div class="sub">{esc(sub + created)}</div>')


def _summary(data: RunData) -> Html:
    m = data.manifest
    cards = _metric_cards(data.metrics)
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


def _figures(*svgs: str | None) -> str:
    return '<div class="plots">' + "".join(f"<figure>{s}</figure>" for s in svgs if s) + "</div>"


def _curves(data: RunData) -> Html:
    if not data.history:
        return section("curves", "Training curves", "", "history.jsonl is missing: no per-epoch curves.")
    note = "Dashed vertical lines: epochs in which layer groups were unfrozen."
    if len(data.history) == 1:
        note = "One point: this strategy fits in one step (no epochs to plot)."
    return section("curves", "Training curves", _figures(plots.training_curves(data.history)), note)


def _learning_rates(data: RunData) -> Html:
    svg = plots.lr_curves(data.history)
    if svg is None:
        return Html("")
    note = "Log scale; one line per optimizer group (no-decay twins share their group's rate)."
    return section("lr", "Learning rate per layer group", _figures(svg), note)


def _confusion(data: RunData) -> Html:
    cm, labels = data.metrics.get("confusion_matrix"), data.labels
    if not cm or not labels:
        return section("confusion", "Confusion matrix", "", "metrics.json has no confusion matrix.")
    note = "Rows: true class, columns: predicted class; counts, coloured by the fraction of the row."
    return section("confusion", "Confusion matrix", _figures(plots.confusion_matrix(cm, labels)), note)


def _per_class(data: RunData) -> Html:
    per_class = data.metrics.get("per_class") or {}
    if not per_class:
        return Html("")
    svg = plots.per_class_bars(per_class, data.labels)
    rows = [[c, *(fmt_num(per_class[c].get(k)) for k in ("precision", "recall", "f1", "support"))] for c in per_class]
    body = _figures(svg) + table(["class", "precision", "recall", "F1", "support"], rows, numeric={1, 2, 3, 4})
    return section("per-class", "Per-class precision, recall and F1", body)


def _roc_pr(data: RunData) -> Html:
    p = data.predictions
    if p is None or len(p) == 0:
        return section("roc-pr", "ROC and precision-recall", "", "predictions.csv is missing: no curves.")
    roc, pr = plots.roc_curves(p.y, p.proba, p.labels), plots.pr_curves(p.y, p.proba, p.labels)
    if roc is None:
        return section("roc-pr", "ROC and precision-recall", "", "The test split holds a single class: no curves.")
    note = (
        f"Positive class: {p.labels[1]}." if len(p.labels) == 2 else "One curve per class, that class against the rest."
    )
    return section("roc-pr", "ROC and precision-recall", _figures(roc, pr), note + " Computed from predictions.csv.")


def _reliability(data: RunData) -> Html:
    rel, source = data.metrics.get("reliability"), "Bins from metrics.json."
    svg = plots.reliability_diagram(rel, data.metrics.get("ece")) if rel else None
    p = data.predictions
    if svg is None and p is not None and len(p):
        ece, rel = expected_calibration_error(p.y, p.proba, n_bins=15)
        svg, source = plots.reliability_diagram(rel, ece), "15 equal-width bins from predictions.csv."
    if svg is None:
        return section("reliability", "Reliability", "", "No calibration data (predictions.csv is missing).")
    note = "Bars: accuracy of the test predictions whose confidence falls in each bin; calibrated = on the diagonal."
    return section("reliability", "Reliability", _figures(svg), f"{note} {source}")


def _examples(data: RunData, order: np.ndarray, examples: Example | None) -> list[Any]:
    assert data.predictions is not None
    if examples is None:
        return [None] * len(order)
    out: list[Any] = []
    for i in order:
        ident = data.predictions.ids[int(i)]
        try:
            out.append(examples(ident))
        except Exception as e:  # one unreadable example must not cost the whole report
            logger.warning("could not load example %s for the report: %s", ident, e)
            out.append(None)
    return out


def _mistakes(data: RunData, examples: Example | None) -> Html:
    title, p = "Most confident mistakes", data.predictions
    if p is None:
        return section("mistakes", title, "", "predictions.csv is missing: mistakes cannot be listed.")
    wrong = np.flatnonzero(p.pred != p.y)
    order = wrong[np.argsort(-p.confidence[wrong], kind="stable")][:MAX_MISTAKES]
    if len(order) == 0:
        return section("mistakes", title, "", "No test example is misclassified.")
    shown = _examples(data, order, examples)
    note = f"{len(wrong)} of {len(p)} test examples are wrong; the {len(order)} with the highest confidence:"
    images = [(i, x) for i, x in zip(order, shown, strict=True) if isinstance(x, np.ndarray)]
    if images:
        cells = []
        for i, x in images:
            caption = f"{p.labels[p.y[i]]} → {p.labels[p.pred[i]]} ({p.confidence[i]:.2f})"
            cells.append(
                f'<figure><img src="{plots.thumbnail_data_uri(x)}" alt="{esc(p.ids[i])}">'
                f'<figcaption>{esc(caption)}<div class="id">{esc(p.ids[i])}</div></figcaption></figure>'
            )
        return section("mistakes", title, f'<div class="thumbs">{"".join(cells)}</div>', note + " true → predicted.")
    texts = [x if isinstance(x, str) else None for x in shown]
    headers = ["id", "true", "predicted", "confidence"] + (["text"] if any(texts) else [])
    rows = []
    for i, text in zip(order, texts, strict=True):
        row: list[Any] = [p.ids[i], p.labels[p.y[i]], p.labels[p.pred[i]], f"{p.confidence[i]:.3f}"]
        if any(texts):
            row.append(text if text is None or len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…")
        rows.append(["" if v is None else v for v in row])
    if not any(texts):
        note += " (listed by id only: no example loader was given for this report)"
    return section("mistakes", title, table(headers, rows, numeric={3}, text=4), note)


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


NAV = [
    ("summary", "summary"),
    ("curves", "curves"),
    ("lr", "learning rates"),
    ("confusion", "confusion"),
    ("per-class", "per class"),
    ("roc-pr", "ROC / PR"),
    ("reliability", "reliability"),
    ("mistakes", "mistakes"),
    ("config", "config"),
    ("plan", "plan"),
]


def run_report_html(data: RunData, examples: Example | None = None) -> str:
    """The run report as one HTML string (see :func:`write_run_report`)."""
    sections = [
        _summary(data),
        _curves(data),
        _learning_rates(data),
        _confusion(data),
        _per_class(data),
        _roc_pr(data),
        _reliability(data),
        _mistakes(data, examples),
        _configuration(data),
        _plan(data),
    ]
    nav = [(a, t) for a, t in NAV if any(f'id="{a}"' in s for s in sections)]
    title = f"headstart: {data.manifest.get('strategy', 'run')} ({data.run_dir.name})"
    return page(title, _header(data), [s for s in sections if s], nav)


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
    from headstart.report.tables import COLUMNS, format_cell

    headers = [h for k, h in COLUMNS]
    body = [[_row_links(r, runs, out_dir) if k == "run" else format_cell(k, r) for k, _ in COLUMNS] for r in rows]
    return table(headers, body, numeric={1, 2, 3, 4, 5})


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
    labels = {_run_label(r, runs): r for r in runs}
    curves = plots.compare_curves({name: r.history for name, r in labels.items()})
    preds = {name: (r.predictions.y, r.predictions.proba) for name, r in labels.items() if r.predictions is not None}
    roc = plots.compare_roc(preds, runs[0].labels) if preds else None
    if curves or roc:
        note = "Validation curves from each run's history.jsonl; ROC curves from its predictions.csv (test split)."
        sections.append(section("curves", "Curves", _figures(curves) + _figures(roc), note))
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
