"""Benchmark: do the transferability estimators rank backbones the way training does?

Run with `.venv/bin/python bench/bench_rank.py [--epochs 5] [--datasets fashion-mnist,elpv]`.
For each dataset, ranks the four catalog image backbones plus a randomly initialised
efficientnet_lite0 (`rank_backbones`, with an empty feature cache so that extraction is paid),
then trains every candidate with the default strategy and reports, per estimator, Kendall's tau
between its scores and the measured test accuracy, and ranking time vs training time.

Data: Fashion-MNIST 100 train / 50 val / 100 test images per class (test from the official test
set); ELPV 300 images per class (stratified 70/15/15 split; whole cell + vertical flips as in the demo).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

CANDIDATES = "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,mobilenet_v2,random:efficientnet_lite0"
ESTIMATORS = ["logme", "hscore", "leep", "nce", "knn_accuracy", "probe_accuracy"]


def fashion_split(seed: int = 0):  # type: ignore[no-untyped-def]
    from headstart.data import load_images

    images = load_images("builtin:fashion-mnist")
    rng = np.random.RandomState(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for k in range(len(images.labels)):
        pool = rng.permutation(np.flatnonzero((images.targets == k) & (images.given_split == "train")))
        parts["train"] += pool[:100].tolist()
        parts["val"] += pool[100:150].tolist()
        test = np.flatnonzero((images.targets == k) & (images.given_split == "test"))
        parts["test"] += rng.permutation(test)[:100].tolist()
    keep = np.sort(np.concatenate([np.asarray(v) for v in parts.values()]))
    pos = {int(i): j for j, i in enumerate(keep)}
    return images.subset(keep), {k: np.sort([pos[i] for i in v]) for k, v in parts.items()}


def dataset(name: str, epochs: int):  # type: ignore[no-untyped-def]
    from headstart import runner
    from headstart.config import load_config

    if name == "fashion-mnist":
        cfg = load_config(None, ["data.source=builtin:fashion-mnist", f"train.epochs={epochs}"])
        return cfg, fashion_split()
    sets = ["preprocess.crop_pct=1.0", "preprocess.vflip=true", "data.limit_per_class=300"]
    cfg = load_config(None, [f"data.source=builtin:{name}", f"train.epochs={epochs}", *sets])
    return cfg, runner.prepare_data(cfg)


def train_all(cfg, data, candidates, out: Path) -> dict[str, tuple[float, float]]:  # type: ignore[no-untyped-def]
    """Test accuracy and wall time of the default strategy per candidate (scratch for the random one)."""
    from headstart import runner

    measured = {}
    for cand in candidates:
        c = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backbone=cand.spec.name))
        if not cand.pretrained:
            c = dataclasses.replace(c, strategy=dataclasses.replace(c.strategy, name="scratch"))
        s = runner.train(c, out / cand.name.replace(":", "-"), data)
        measured[cand.name] = (float(s.metrics["accuracy"]), s.seconds)
        print(f"  trained {cand.name:26s} accuracy {s.metrics['accuracy']:.4f}  {s.seconds:6.1f} s", flush=True)
    return measured


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="fashion-mnist,elpv")
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()
    os.environ["HEADSTART_CACHE_DIR"] = tempfile.mkdtemp(prefix="headstart-bench-rank-cache-")

    from headstart._runtime import tune_malloc

    tune_malloc()
    from headstart.transferability.features import parse_candidates
    from headstart.transferability.rank import rank_backbones

    summary = []
    for name in args.datasets.split(","):
        cfg, data = dataset(name, args.epochs)
        print(f"\n# {name}: split sizes { ({k: len(v) for k, v in data[1].items()}) }, {args.epochs} epochs")
        candidates = parse_candidates(CANDIDATES, "image")
        t = time.perf_counter()
        rows = rank_backbones(cfg, candidates, data)
        rank_seconds = time.perf_counter() - t
        measured = train_all(cfg, data, candidates, Path(tempfile.mkdtemp(prefix="headstart-bench-rank-")))
        train_seconds = sum(s for _, s in measured.values())
        print(f"\n| backbone | {' | '.join(ESTIMATORS)} | test accuracy (trained) | train s |")
        print("|---|" + "---:|" * (len(ESTIMATORS) + 2))
        for r in rows:
            d = r.to_dict()
            cells = ["-" if d[e] is None else f"{d[e]:.4f}" for e in ESTIMATORS]
            acc, secs = measured[r.backbone]
            print(f"| {r.backbone} | {' | '.join(cells)} | {acc:.4f} | {secs:.0f} |")
        taus = {}
        for e in ESTIMATORS:
            pairs = [(r.to_dict()[e], measured[r.backbone][0]) for r in rows if r.to_dict()[e] is not None]
            taus[e] = float(kendalltau(*zip(*pairs, strict=True)).statistic) if len(pairs) > 2 else float("nan")
        tau_text = ", ".join(f"{e} {v:+.2f}" for e, v in taus.items())
        print(f"\nKendall tau vs trained accuracy: {tau_text}")
        speedup = train_seconds / rank_seconds
        print(f"ranking {rank_seconds:.0f} s vs training all {train_seconds:.0f} s: {speedup:.1f}x faster")
        summary.append((name, taus, rank_seconds, train_seconds))
    print("\n| dataset | " + " | ".join(f"tau {e}" for e in ESTIMATORS) + " | rank s | train s | speed-up |")
    print("|---|" + "---:|" * (len(ESTIMATORS) + 3))
    for name, taus, rs, ts in summary:
        cells = " | ".join(f"{taus[e]:+.2f}" for e in ESTIMATORS)
        print(f"| {name} | {cells} | {rs:.0f} | {ts:.0f} | {ts / rs:.1f}x |")


if __name__ == "__main__":
    main()
