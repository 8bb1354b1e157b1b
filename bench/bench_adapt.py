"""Benchmark: unsupervised domain adaptation on ELPV, monocrystalline <-> polycrystalline cells.

Run with `.venv/bin/python bench/bench_adapt.py [--epochs 3] [--seeds 3] [--input-size 128]`. For each direction
(train on one cell type with labels, adapt to the other without) and each method (source-only `finetune`,
`adabn`, `dann`, `coral`), over seeds 0..N-1 (split and init): target-domain macro-F1 on all of TARGET (its
labels are read only for scoring), mean and 95% t-interval over seeds; the oracle (the best epoch by target
macro-F1, which no run may use) against the epoch the run picked on the source's validation split; and the
proxy A-distance between source and target features, before (pretrained backbone) and after (the trained
model). Figures go to bench/README.md ("Domain adaptation").
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DIRECTIONS = (("builtin:elpv-mono", "builtin:elpv-poly"), ("builtin:elpv-poly", "builtin:elpv-mono"))


def features(model, data, recipe, n: int = 400):  # type: ignore[no-untyped-def]
    """Pooled features of up to ``n`` examples of ``data`` (a fixed random subset)."""
    from headstart.config import TrainConfig
    from headstart.data import SkipLog
    from headstart.data.pipeline import eval_loader
    from headstart.engine import resolve_runtime
    from headstart.engine.inference import run_features

    rows = np.sort(np.random.default_rng(0).permutation(len(data))[:n])
    loader = eval_loader(data, rows, recipe, 64)
    feats, valid = run_features(model, loader, len(data), resolve_runtime(TrainConfig()), recipe, SkipLog(), "pad")
    return feats[rows][valid[rows]]


def pad(model, recipe, source, target) -> float:  # type: ignore[no-untyped-def]
    from headstart.transferability.shift import proxy_a_distance

    return proxy_a_distance(features(model, source, recipe), features(model, target, recipe))[0]


def pad_before(cfg, source, target) -> float:  # type: ignore[no-untyped-def]
    from headstart.backbones import get_backbone, resolve_recipe
    from headstart.modalities import create_model

    model, ckpt = create_model(get_backbone(cfg.model.backbone), len(source.labels))
    return pad(model.eval(), resolve_recipe(ckpt, cfg.preprocess), source, target)


def ci95(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a t-interval over seeds."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, float(half)


def one_run(cfg, data, out: Path) -> dict:  # type: ignore[no-untyped-def]
    import headstart as hs
    from headstart import runner

    start = time.perf_counter()
    summary = runner.train(cfg, out, data)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    manifest = json.loads((out / "headstart.json").read_text())
    picked = manifest["best_epoch"]
    model = hs.load(out)
    return {
        "target_f1": summary.target_metrics["macro_f1"],
        "source_f1": summary.metrics["macro_f1"],
        "picked_epoch": picked,
        "oracle_f1": max(h.get("target_macro_f1", float("nan")) for h in history),
        "picked_epoch_target_f1": history[picked - 1].get("target_macro_f1"),
        "model": model,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    from headstart.config import resolve_run_config
    from headstart.data.target import load_target
    from headstart.runner import prepare_data
    from headstart.tasks import get_task

    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--limit-per-class", type=int, default=150)
    ap.add_argument("--methods", default="finetune,adabn,dann,coral")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE (YAML value) for every run")
    ap.add_argument("--json", type=Path, default=None, help="also write every run's figures here")
    args = ap.parse_args()
    methods = args.methods.split(",")
    rows, raw = [], []
    for source, target in DIRECTIONS:
        per: dict[str, list[dict]] = {m: [] for m in methods}
        pad0 = None
        for seed in range(args.seeds):
            settings = {
                "preprocess.input_size": args.input_size,
                "train.epochs": args.epochs,
                "data.limit_per_class": args.limit_per_class,
            }
            base = resolve_run_config(source, sets=args.sets, settings=settings, seed=seed, target=target)
            data = prepare_data(base)
            if pad0 is None:
                tgt = load_target(base, data[0], get_task("classification"))
                pad0 = pad_before(base, data[0], tgt.data)
            for method in methods:
                from dataclasses import replace

                cfg = replace(base, strategy=replace(base.strategy, name=method))
                with tempfile.TemporaryDirectory(prefix="headstart-bench-") as tmp:
                    r = one_run(cfg, data, Path(tmp) / method)
                    tgt = load_target(cfg, data[0], get_task("classification"))
                    m = r.pop("model")
                    r["pad_after"] = pad(m.module.eval(), m.recipe, data[0], tgt.data)
                r.update(direction=f"{source} -> {target}", method=method, seed=seed)
                print(json.dumps(r), flush=True)
                per[method].append(r)
                raw.append(r)
        for method in methods:
            runs = per[method]
            mean, half = ci95([r["target_f1"] for r in runs])
            rows.append(
                {
                    "direction": f"{source.removeprefix('builtin:')} -> {target.removeprefix('builtin:')}",
                    "method": method,
                    "target macro-F1": f"{mean:.4f} ± {half:.4f}",
                    "oracle (best epoch by target)": f"{statistics.fmean(r['oracle_f1'] for r in runs):.4f}",
                    "source macro-F1": f"{statistics.fmean(r['source_f1'] for r in runs):.4f}",
                    "PAD before -> after": f"{pad0:.3f} -> {statistics.fmean(r['pad_after'] for r in runs):.3f}",
                    "s/run": f"{statistics.median(r['seconds'] for r in runs):.0f}",
                }
            )
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(row.values()) + " |")


if __name__ == "__main__":
    main()
