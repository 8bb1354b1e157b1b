"""The HTML reports: sections in order, plot counts, escaping, no URLs, links, and a headless-browser check."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headstart.errors import HeadstartError
from headstart.report.html import write_compare_report, write_run_report
from headstart.report.plots import thumbnail_data_uri, unfreeze_label

RUN_SECTIONS = [
    "summary",
    "curves",
    "lr",
    "confusion",
    "per-class",
    "roc-pr",
    "reliability",
    "mistakes",
    "config",
    "plan",
]
LONG_TEXT = "<script>alert('x')</script> & see https://t.co/abc " + "word " * 100  # > 300 characters


def _history(lr: bool) -> list[dict[str, Any]]:
    rows = []
    for epoch in (1, 2, 3):
        rates = {"block.6": 1e-4 / epoch, "block.6/no_decay": 1e-4 / epoch, "head": 1e-3 / epoch} if lr else {}
        events = ["unfroze block.6", "unfroze block.5 (plateau)"] if epoch == 2 else []
        rows.append(
            {
                "epoch": epoch,
                "train_loss": 1.0 / epoch,
                "val_loss": 1.1 / epoch,
                "val_accuracy": 0.5 + 0.1 * epoch,
                "val_macro_f1": 0.45 + 0.1 * epoch,
                "lr": rates,
                "events": events,
            }
        )
    return rows


def _predictions(labels: list[str], n: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(labels)
    logits = rng.normal(size=(n, len(labels))) + 1.5 * np.eye(len(labels))[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return [f"ex/{i}" for i in range(n)], y, proba


def make_run(run_dir: Path, labels: list[str], modality: str | None, strategy: str, seed: int = 0) -> Path:
    """A small but complete run directory, as ``headstart train`` writes it."""
    run_dir.mkdir(parents=True)
    ids, y, proba = _predictions(labels, 30, seed)
    pred = proba.argmax(1)
    with (run_dir / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "true", "pred", "confidence", *[f"p_{c}" for c in labels]])
        for i, t, p, row in zip(ids, y, pred, proba, strict=True):
            w.writerow([i, labels[t], labels[p], f"{row[p]:.6g}", *[f"{v:.6g}" for v in row]])
    k = len(labels)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y, pred), 1)
    metrics = {
        "accuracy": float((pred == y).mean()),
        "macro_f1": 0.61,
        "roc_auc": 0.8,
        "log_loss": 0.7,
        "per_class": {
            c: {"precision": 0.6, "recall": 0.7, "f1": 0.65, "support": int(cm[i].sum())} for i, c in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
        "labels": labels,
        "n": len(y),
        "ci95": {"accuracy": [0.5, 0.9]},
        "warnings": ["class <rare> has only 3 test examples"],
    }
    if modality is None:  # image run: calibration table from metrics.json (non-empty bins only)
        metrics |= {
            "ece": 0.05,
            "reliability": {
                "bin_edges": np.linspace(0, 1, 16).tolist(),
                "bin_index": [9, 12],
                "confidence": [0.63, 0.82],
                "accuracy": [0.6, 0.9],
                "count": [12, 18],
            },
        }
    recipe = {"modality": modality, "max_length": 64} if modality else {"input_size": 224, "mean": [0.5, 0.5, 0.5]}
    manifest = {
        "backbone": {"name": "tiny-net"},
        "recipe": recipe,
        "labels": labels,
        "strategy": strategy,
        "config": {"data": {"source": "demo <data>", "seed": seed}, "train": {"epochs": 3, "seed": seed}},
        "metrics": metrics,
        "data": {
            "source": "demo <data>",
            "n": 200,
            "class_counts": {c: 200 // k for c in labels},
            "split_sizes": {"train": 140, "val": 30, "test": 30},
        },
        "seconds": 12.5,
        "trainable_params": 12345,
        "best_epoch": 3,
        "plan": [
            {"group": "block.6", "params": 1000, "trainable_from": "2", "lr": 1e-4, "weight_decay": "0.01"},
            {"group": "head", "params": 20, "trainable_from": "1", "lr": 1e-3, "weight_decay": "0.01"},
        ],
    }
    (run_dir / "headstart.json").write_text(json.dumps(manifest))
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    history = _history(lr=modality is None)
    (run_dir / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    return run_dir


def _positions(page: str, anchors: list[str]) -> list[int]:
    return [page.index(f'<section id="{a}">') for a in anchors]


def _no_urls(page: str) -> None:
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()


@pytest.fixture
def image_run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "img", ["ok", "<defect>"], None, "progressive")


@pytest.fixture
def text_run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "txt", ["neg", "neu", "pos"], "text", "linear-probe", seed=1)


def test_image_run_report(image_run: Path) -> None:
    path = write_run_report(image_run, examples=lambda i: np.full((20, 30), int(i.split("/")[1]), np.uint8))
    page = path.read_text()
    assert path == image_run / "report.html" and [p.name for p in image_run.glob(".report*")] == []
    assert _positions(page, RUN_SECTIONS) == sorted(_positions(page, RUN_SECTIONS))
    assert page.index('class="warnings"') < page.index('id="curves"')
    assert "class &lt;rare&gt; has only 3 test examples" in page and "<defect>" not in page
    assert "progressive · tiny-net · demo &lt;data&gt;" in page and "95% CI 0.500 to 0.900" in page
    # curves, learning rates, confusion, per-class, ROC, PR, reliability
    assert page.count('<svg class="plot"') == 7
    wrong = int(np.sum(_predictions(["ok", "<defect>"], 30, 0)[2].argmax(1) != np.arange(30) % 2))
    assert 0 < wrong and page.count("<img") == min(wrong, 12)
    assert page.count('src="data:image/png;base64,') == min(wrong, 12)
    assert "unfroze block.6 … block.5 (plateau) (2 groups)" in page
    assert "block.6/no_decay" not in page.split('id="lr"')[1].split("</section>")[0]
    assert "ECE 0.050" in page and "Bins from metrics.json" in page
    _no_urls(page)


def test_text_run_report_escapes_and_truncates(text_run: Path) -> None:
    page = write_run_report(text_run, examples=lambda i: LONG_TEXT).read_text()
    sections = [s for s in RUN_SECTIONS if s != "lr"]  # a linear probe has no learning rate schedule
    assert 'id="lr"' not in page and _positions(page, sections) == sorted(_positions(page, sections))
    assert page.count('<svg class="plot"') == 6 and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; see https:&#8203;//t.co/abc" in page
    shown = re.findall(r'<td class="text">(.*?)</td>', page)
    assert shown and all(s.endswith("…") and len(s) < len(LONG_TEXT) for s in shown)
    assert "15 equal-width bins from predictions.csv" in page
    _no_urls(page)


def test_mistakes_by_id_without_examples(text_run: Path) -> None:
    page = write_run_report(text_run).read_text()
    mistakes = page.split('id="mistakes"')[1].split("</section>")[0]
    assert "listed by id only" in mistakes and "ex/" in mistakes and "<th>text</th>" not in mistakes


def test_missing_history_and_predictions(image_run: Path) -> None:
    (image_run / "history.jsonl").unlink()
    (image_run / "predictions.csv").unlink()
    page = write_run_report(image_run).read_text()
    assert "history.jsonl is missing" in page and "predictions.csv is missing" in page
    assert page.count('<svg class="plot"') == 3  # confusion, per-class bars and reliability: from metrics.json


def test_not_a_run_dir(tmp_path: Path) -> None:
    with pytest.raises(HeadstartError, match="headstart.json is missing"):
        write_run_report(tmp_path)


def test_helpers() -> None:
    assert unfreeze_label(["probe C=0.01"]) is None
    assert thumbnail_data_uri(np.zeros((8, 8, 3), np.uint8)).startswith("data:image/png;base64,")
    with pytest.raises(HeadstartError, match="HxW or HxWx3"):
        thumbnail_data_uri(np.zeros((2, 8, 8, 3), np.uint8))


def _compare(tmp_path: Path) -> tuple[Path, list[Path]]:
    out = tmp_path / "cmp"
    probe = make_run(out / "linear-probe", ["ok", "<defect>"], None, "linear-probe")
    seed0 = make_run(out / "finetune" / "seed-0", ["ok", "<defect>"], None, "finetune", seed=3)
    rows = [
        {
            "strategy": "linear-probe",
            "accuracy": 0.8734,
            "macro_f1": 0.8,
            "roc_auc": 0.9,
            "seconds": 3.0,
            "trainable_params": 20,
            "run": str(probe),
            "n_test": 30,
            "ci95": {"accuracy": [0.8511, 0.8942]},
        },
        {
            "strategy": "finetune",
            "accuracy": 0.9,
            "accuracy_std": 0.0121,
            "macro_f1": 0.85,
            "roc_auc": None,
            "seconds": 30.0,
            "trainable_params": 12345,
            "run": str(out / "finetune"),
            "n_test": 30,
            "ci95": {},
        },
    ]
    write_compare_report(out, rows, [probe, seed0], "transfer <helps>")
    return out, [probe, seed0]


def test_compare_report(tmp_path: Path) -> None:
    out, _ = _compare(tmp_path)
    page = (out / "report.html").read_text()
    assert '<p class="verdict">transfer &lt;helps&gt;</p>' in page
    assert "0.873 [0.851, 0.894]" in page and "0.900 ± 0.012" in page
    assert 'href="linear-probe/report.html"' in page and 'href="finetune/seed-0/report.html"' in page
    assert page.count('<svg class="plot"') == 2  # validation curves and ROC
    assert "class &lt;rare&gt; has only 3 test examples" not in page  # rows without warnings: none shown
    _no_urls(page)


# --- headless browser ---------------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUIET = [
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def _browse(page: Path, tmp_path: Path) -> tuple[str, list[str], list[str]]:
    """(DOM, console lines, URLs the page itself requested) from headless Chromium."""
    if CHROMIUM is None:
        pytest.skip("chromium not installed (Debian package chromium); make test installs it when run as root")
    net = tmp_path / "net.json"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
        *QUIET,
        "--enable-logging=stderr",
        "--v=0",
        f"--log-net-log={net}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [ln for ln in done.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    text = net.read_text() if net.exists() else '{"events": []}'
    try:
        events = json.loads(text)["events"]
    except json.JSONDecodeError:  # a net log cut short lacks its closing brackets
        events = json.loads(text.rstrip().rstrip(",") + "]}")["events"]
    mine = [
        e["params"]["url"] for e in events if "site=file://" in str((e.get("params") or {}).get("site_for_cookies"))
    ]
    return done.stdout, console, mine


def test_browser_catches_errors_and_requests(tmp_path: Path) -> None:
    """The check below would see a script error and an external request (it is not vacuous)."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><img src="https://example.invalid/a.png"><script>missing();</script>')
    _, console, requests = _browse(bad, tmp_path)
    assert any("Uncaught" in ln for ln in console) and "https://example.invalid/a.png" in requests


def test_report_in_headless_browser(image_run: Path, tmp_path: Path) -> None:
    path = write_run_report(image_run, examples=lambda i: np.zeros((16, 16), np.uint8))
    dom, console, requests = _browse(path, tmp_path)
    assert dom.count('<svg class="plot"') == 7 and dom.count("<img") > 0
    assert all(f'id="{a}"' in dom for a in RUN_SECTIONS)
    assert console == [] and [u for u in requests if not u.startswith(("file:", "data:"))] == []
