"""Benchmark: regression and multi-label transfer on real builtins, every strategy against scratch, with CIs.

Run with `.venv/bin/python bench/bench_tasks.py [--epochs 3] [--limit 120] [--strategies a,b,...]`. For each of
  * builtin:elpv-severity (--task regression: the ELPV cells' graded defect probability), and
  * builtin:fashion-multilabel (--task multilabel: 2-4 Fashion-MNIST items per image),
it runs `headstart compare` on one split (``--limit`` examples per stratum: value range / rarest label) and
prints per strategy the task's primary metric with its 95% bootstrap CI (R2; mean average precision), a
second metric, wall time, and two checks: does the best transfer strategy beat scratch with CIs that do not
overlap, and is the best fine-tuning strategy at least as good as the linear probe.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

SETS = (
    ("builtin:elpv-severity", "regression", "r2", "mae"),
    ("builtin:fashion-multilabel", "multilabel", "mean_average_precision", "macro_f1"),
)
FINE_TUNING = ("finetune", "lp-ft", "progressive", "partial", "plateau")


def _cell(metrics: dict, key: str) -> str:
    ci = (metrics.get("ci95") or {}).get(key)
    value = metrics.get(key)
    if value is None:
        return "n/a"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def run_set(source: str, task: str, primary: str, second: str, args: argparse.Namespace) -> list[dict]:
    from headstart import experiments
    from headstart.config import resolve_run_config

    settings = {"data.limit_per_class": args.limit, "train.epochs": args.epochs, "model.backbone": args.backbone}
    if args.lr is not None:
        settings["optim.lr"] = args.lr
    cfg = resolve_run_config(source, None, settings=settings, task=task)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = experiments.compare(cfg, args.strategies.split(","), Path(tmp) / "cmp", 1)
        print(f"{source}: compare took {time.perf_counter() - start:.0f} s")
        for name, summaries in result.runs.items():
            rows.append({"strategy": name, "metrics": summaries[0].metrics, "seconds": summaries[0].seconds})
    lr = "" if args.lr is None else f", lr {args.lr:g}"
    print(f"\n{source} (--task {task}, {args.backbone}, {args.epochs} epochs, limit {args.limit}/stratum{lr})")
    print(f"| strategy | {primary} [95% CI] | {second} | wall time (s) |\n|---|---|---|---:|")
    for r in rows:
        m = r["metrics"]
        print(f"| {r['strategy']} | {_cell(m, primary)} | {_cell(m, second)} | {r['seconds']:.0f} |")
    _checks(rows, primary)
    return rows


def _checks(rows: list[dict], primary: str) -> None:
    by = {r["strategy"]: r["metrics"] for r in rows}
    if "scratch" in by:
        transfer = max((s for s in by if s != "scratch"), key=lambda s: by[s][primary])
        lo = by[transfer]["ci95"][primary][0]
        hi = by["scratch"]["ci95"][primary][1]
        print(f"best transfer {transfer}: CI low {lo:.3f} vs scratch CI high {hi:.3f} -> separated: {lo > hi}")
    tuned = [s for s in by if s in FINE_TUNING]
    if tuned and "linear-probe" in by:
        best = max(tuned, key=lambda s: by[s][primary])
        ok = by[best][primary] >= by["linear-probe"][primary]
        print(f"best fine-tuning {best} {by[best][primary]:.3f} vs probe {by['linear-probe'][primary]:.3f} -> ok: {ok}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="mobilenet_v2")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=120, help="examples per stratum (value range / rarest label)")
    ap.add_argument("--strategies", default="scratch,linear-probe,finetune,lp-ft,progressive")
    ap.add_argument("--only", default=None, help="regression or multilabel: run one set")
    ap.add_argument("--lr", type=float, default=None, help="optim.lr (head); default: the config's 1e-3")
    args = ap.parse_args()
    for source, task, primary, second in SETS:
        if args.only in (None, task):
            run_set(source, task, primary, second, args)


if __name__ == "__main__":
    main()
