"""Benchmark: fine-tuning strategies on Fashion-MNIST (100 images per class) and the cost of a frozen prefix.

Run with `.venv/bin/python bench/bench_strategies.py [--epochs 3] [--strategies a,b,...]`. Prints:
  * the time of one optimizer step for `partial` (last 3 groups) vs `finetune` (all groups), same batch;
  * per strategy on one fixed split (1,000 train = 100/class, 1,000 val, 2,000 test from the official
    test set): test accuracy, macro-F1, wall time, best epoch, and the gap to the linear probe.
Needs Debian's dataset-fashion-mnist. Use `--data builtin:elpv` for the ELPV demo split instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def fashion_split(seed: int = 0):  # type: ignore[no-untyped-def]
    from headstart.data import load_images

    images = load_images("builtin:fashion-mnist")
    rng = np.random.RandomState(seed)
    train, val, test = [], [], []
    for k in range(len(images.labels)):
        pool = rng.permutation(np.flatnonzero((images.targets == k) & (images.given_split == "train")))
        train += pool[:100].tolist()
        val += pool[100:200].tolist()
        test += rng.permutation(np.flatnonzero((images.targets == k) & (images.given_split == "test")))[:200].tolist()
    keep = np.sort(np.asarray(train + val + test))
    sub = images.subset(keep)
    pos = {int(i): j for j, i in enumerate(keep)}
    splits = {name: np.sort([pos[i] for i in idx]) for name, idx in (("train", train), ("val", val), ("test", test))}
    return sub, splits


def step_cost(cfg, data, repeats: int = 8) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Median seconds of one optimizer step (batch 32) for finetune vs partial (last 3 groups)."""
    from headstart.backbones import get_backbone, resolve_recipe
    from headstart.data import SkipLog
    from headstart.engine import resolve_runtime
    from headstart.engine.train import Trainer
    from headstart.modalities import create_model
    from headstart.runner import resolve_config
    from headstart.strategies import get_strategy

    out = {}
    for name in ("finetune", "partial"):
        c = dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, name=name, train_groups=3))
        c = resolve_config(c, get_backbone(c.model.backbone))
        model, ckpt = create_model(get_backbone(c.model.backbone), len(data[0].labels))
        trainer = Trainer(
            model, get_strategy(c), *data, resolve_recipe(ckpt, c.preprocess), c, resolve_runtime(c.train), SkipLog()
        )
        trainer.train_mode()
        batch = next(iter(trainer.loader))
        trainer.train_step(batch)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            trainer.train_step(batch)
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="builtin:fashion-mnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--strategies", default="linear-probe,finetune,lp-ft,progressive,plateau,partial")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--skip-step-cost", action="store_true", help="skip the partial-vs-full step timing")
    args = ap.parse_args()

    from headstart._runtime import tune_malloc

    tune_malloc()
    from headstart import runner
    from headstart.config import load_config

    cfg = load_config(None, [f"data.source={args.data}", f"train.epochs={args.epochs}", *args.sets])
    data = fashion_split() if args.data == "builtin:fashion-mnist" else runner.prepare_data(cfg)
    sizes = {k: len(v) for k, v in data[1].items()}
    print(f"data {args.data}: split sizes {sizes}; epochs {args.epochs}; overrides {args.sets or 'none'}")

    cost = step_cost(cfg, data) if not args.skip_step_cost else {"finetune": float("nan"), "partial": float("nan")}
    print(
        f"\n## one optimizer step, batch {cfg.train.batch_size}: finetune {cost['finetune'] * 1000:.0f} ms, "
        f"partial (last 3 groups) {cost['partial'] * 1000:.0f} ms, ratio {cost['partial'] / cost['finetune']:.2f}"
    )

    out = Path(tempfile.mkdtemp(prefix="headstart-bench-strategies-"))
    rows = []
    for name in [s for s in args.strategies.split(",") if s]:
        c = dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, name=name))
        s = runner.train(c, out / name, data)
        rows.append((name, s.metrics["accuracy"], s.metrics["macro_f1"], s.seconds))
        print(
            f"  {name:13s} accuracy {s.metrics['accuracy']:.4f}  macro-F1 {s.metrics['macro_f1']:.4f}  "
            f"{s.seconds:7.1f} s",
            flush=True,
        )
    probe = next((r[1] for r in rows if r[0] == "linear-probe"), None)
    print("\n| strategy | test accuracy | macro-F1 | wall time (s) | vs probe (points) |\n|---|---:|---:|---:|---:|")
    for name, acc, f1, secs in rows:
        gap = "" if probe is None else f"{100 * (acc - probe):+.1f}"
        print(f"| {name} | {acc:.4f} | {f1:.4f} | {secs:.0f} | {gap} |")


if __name__ == "__main__":
    main()
