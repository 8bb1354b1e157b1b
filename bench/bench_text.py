"""Benchmark: text transfer on builtin:tweets (3-class sentiment) with a sentence encoder.

Run with `.venv/bin/python bench/bench_text.py [--backbone minilm] [--epochs N] [--strategies a,b]`. Prints:
  * per strategy on one fixed stratified split (2,000 train / 500 val / 2,000 test): test accuracy,
    macro-F1 and wall time; `scratch` is the TF-IDF + logistic regression baseline (no pretraining);
  * the linear probe with 16 and 64 training examples per class (few-shot; same val and test sets);
  * the targets: best fine-tuning >= TF-IDF + 5 points macro-F1, and >= the linear probe.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np


def tweets_split(seed: int = 0, train: int = 2000, val: int = 500, test: int = 2000):  # type: ignore[no-untyped-def]
    """A stratified 2,000 / 500 / 2,000 sample of the 38k tweets (class proportions kept)."""
    from headstart.data.splits import stratified_split
    from headstart.data.text_sources import load_texts

    texts = load_texts("builtin:tweets")
    total = train + val + test
    _, pick = stratified_split(texts.targets, [total / len(texts)], seed)
    sub = texts.subset(pick[:total] if len(pick) > total else pick)
    tr, va, te = stratified_split(sub.targets, [val / len(sub), test / len(sub)], seed)
    return sub, {"train": tr, "val": va, "test": te}


def few_shot(data, splits, per_class: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """Keep ``per_class`` training examples of each class; val and test unchanged."""
    rng = np.random.RandomState(seed)
    y = data.targets
    keep = np.concatenate([rng.permutation(splits["train"][y[splits["train"]] == k])[:per_class] for k in np.unique(y)])
    return data, {**splits, "train": np.sort(keep)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="minilm")
    ap.add_argument("--epochs", type=int, default=None, help="default: the config default")
    ap.add_argument("--strategies", default="scratch,linear-probe,finetune,lp-ft,progressive")
    ap.add_argument("--few-shot", default="16,64", help="training examples per class for the few-shot probe")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()

    from headstart._runtime import tune_malloc

    tune_malloc()
    from headstart import runner
    from headstart.config import load_config

    sets = ["data.source=builtin:tweets", f"model.backbone={args.backbone}", *args.sets]
    if args.epochs:
        sets.append(f"train.epochs={args.epochs}")
    cfg = load_config(None, sets)
    data = tweets_split()
    print(
        f"builtin:tweets with {args.backbone}: split sizes { {k: len(v) for k, v in data[1].items()} }; "
        f"epochs {cfg.train.epochs}; overrides {args.sets or 'none'}"
    )
    out = Path(tempfile.mkdtemp(prefix="headstart-bench-text-"))
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
    probe_cfg = dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, name="linear-probe"))
    for k in [int(v) for v in args.few_shot.split(",") if v]:
        s = runner.train(probe_cfg, out / f"probe-{k}", few_shot(*data, k))
        rows.append((f"linear-probe, {k}/class", s.metrics["accuracy"], s.metrics["macro_f1"], s.seconds))
        print(
            f"  probe {k}/class accuracy {s.metrics['accuracy']:.4f}  macro-F1 {s.metrics['macro_f1']:.4f}", flush=True
        )

    print("\n| strategy | test accuracy | macro-F1 | wall time (s) |\n|---|---:|---:|---:|")
    for name, acc, f1, secs in rows:
        print(f"| {name} | {acc:.4f} | {f1:.4f} | {secs:.0f} |")
    f1s = {name: f1 for name, _, f1, _ in rows}
    tuned = {n: f for n, f in f1s.items() if n not in ("scratch", "linear-probe") and "/class" not in n}
    if tuned and "scratch" in f1s and "linear-probe" in f1s:
        best = max(tuned, key=tuned.__getitem__)
        print(
            f"\nbest fine-tuning: {best} macro-F1 {tuned[best]:.4f}; vs TF-IDF "
            f"{100 * (tuned[best] - f1s['scratch']):+.1f} points (target >= +5); vs linear probe "
            f"{100 * (tuned[best] - f1s['linear-probe']):+.1f} points (target >= 0)"
        )


if __name__ == "__main__":
    main()
