"""Benchmark: LoRA against the linear probe and full fine-tuning on builtin:tweets (3-class sentiment).

Run with `.venv/bin/python bench/bench_lora.py [--backbones minilm,mpnet] [--epochs 3] [--limit-per-class 1000]
[--seeds 1] [--lora-ranks 4,16] [--set KEY=VALUE ...]`. Data: `--limit-per-class` tweets per class, split by
headstart's own grouped stratified split (`runner.prepare_data`: identical tweets share a split; 70/15/15), the
same split for every row and seed. Rows per backbone: `linear-probe`, `finetune`, and `lora` at each rank (alpha
= 2 x rank, so the update's scale alpha / rank stays the default 2; lora's other settings are the defaults,
including its own backbone LR factor). Seeds vary the training seed (`train.seed`: head init, adapter init,
batch order), not the split.

Columns (markdown table):
  * macro-F1 on the test split: the mean over seeds, and the 95% bootstrap interval over test examples from the
    run's metrics.json (`ci95`, averaged over seeds); with 2+ seeds also the seed-to-seed standard deviation;
  * trainable parameters (adapters + head for lora; the head for the probe);
  * seconds per epoch: the run's wall time (training, validation each epoch and the final test scoring) over its
    epochs; the probe has no epochs, its cell is the whole fit (feature extraction included: the feature cache
    starts empty for each backbone);
  * peak memory of the run: on CUDA `torch.cuda.max_memory_allocated` (reset before each run); on CPU the rise of
    the process's resident-set high-water mark (Linux VmHWM, reset through /proc/self/clear_refs before each
    run) over the resident set at the run's start, so memory already held (the loaded libraries, cached
    tokenizers) is not counted.
`--set` applies to every row (e.g. `--set strategy.backbone_lr_factor=1` also changes finetune's factor).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status in KiB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_peak(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the peak memory it added, in MiB (see the module docstring for how it is measured)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        result = fn()
        torch.cuda.synchronize()
        return result, (torch.cuda.max_memory_allocated() - start) / 2**20
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    start = _status_kib("VmRSS")
    result = fn()
    return result, (_status_kib("VmHWM") - start) / 1024


def rows_for(backbone: str, ranks: list[int]) -> list[tuple[str, str, list[str]]]:
    """(row label, strategy, config overrides) for one backbone."""
    rows = [("linear-probe", "linear-probe", []), ("finetune", "finetune", [])]
    for r in ranks:
        rows.append((f"lora r={r}", "lora", [f"strategy.lora_rank={r}", f"strategy.lora_alpha={2 * r}"]))
    return rows


def one_run(sets: list[str], data: Any, out: Path) -> dict[str, Any]:
    from headstart import runner
    from headstart.config import load_config

    cfg = load_config(None, sets)
    summary, peak = measure_peak(lambda: runner.train(cfg, out, data))
    epochs = len((out / "history.jsonl").read_text().splitlines()) if cfg.strategy.name != "linear-probe" else 1
    ci = json.loads((out / "metrics.json").read_text())["ci95"]["macro_f1"]
    return {
        "f1": summary.metrics["macro_f1"],
        "ci": ci,
        "trainable": summary.trainable_params,
        "per_epoch": summary.seconds / epochs,
        "peak_mib": peak,
    }


def table_row(backbone: str, label: str, runs: list[dict[str, Any]]) -> str:
    f1 = [r["f1"] for r in runs]
    lo, hi = (statistics.fmean(r["ci"][i] for r in runs) for i in (0, 1))
    sd = f" (sd {statistics.stdev(f1):.4f})" if len(f1) > 1 else ""
    per_epoch = statistics.fmean(r["per_epoch"] for r in runs)
    time_cell = f"{per_epoch:.1f} (whole fit)" if label == "linear-probe" else f"{per_epoch:.1f}"
    peak = max(r["peak_mib"] for r in runs)
    cells = [backbone, label, f"{statistics.fmean(f1):.4f}{sd}", f"[{lo:.4f}, {hi:.4f}]"]
    cells += [f"{runs[0]['trainable']:,}", time_cell, f"{peak:,.0f}"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbones", default="minilm,mpnet")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit-per-class", type=int, default=1000, help="tweets per class before the split")
    ap.add_argument("--seeds", type=int, default=1, help="training seeds 0..N-1 per row (same split)")
    ap.add_argument("--lora-ranks", default="4,16")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE for every run")
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a new temporary folder)")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="headstart-bench-lora-"))
    from headstart._runtime import tune_malloc

    tune_malloc()
    from headstart import runner
    from headstart.config import load_config

    base = ["data.source=builtin:tweets", f"data.limit_per_class={args.limit_per_class}"]
    base += [f"train.epochs={args.epochs}", *args.sets]
    data = runner.prepare_data(load_config(None, base))
    sizes = {k: len(v) for k, v in data[1].items()}
    print(f"builtin:tweets, grouped split {sizes}; {args.epochs} epochs; {args.seeds} seed(s); runs in {out}")
    lines = [
        "| backbone | strategy | test macro-F1 | 95% CI | trainable params | s / epoch | peak memory (MiB) |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    ranks = [int(r) for r in args.lora_ranks.split(",") if r]
    for backbone in [b for b in args.backbones.split(",") if b]:
        os.environ["HEADSTART_CACHE_DIR"] = str(out / "feature-cache" / backbone)  # the probe pays extraction
        for label, strategy, extra in rows_for(backbone, ranks):
            runs = []
            for seed in range(args.seeds):
                sets = [*base, f"model.backbone={backbone}", f"strategy.name={strategy}", f"train.seed={seed}", *extra]
                name = f"{backbone}-{label.replace(' ', '').replace('=', '')}-seed{seed}"
                runs.append(one_run(sets, data, out / name))
                print(f"  {name}: macro-F1 {runs[-1]['f1']:.4f}, {runs[-1]['per_epoch']:.1f} s/epoch", flush=True)
            lines.append(table_row(backbone, label, runs))
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
