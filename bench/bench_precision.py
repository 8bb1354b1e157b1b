"""Benchmark: inference in fp32 vs bf16 autocast, speed and probability drift (issue 13).

Run with `.venv/bin/python bench/bench_precision.py [--n 256] [--repeats 5] [--backbones a,b]`.
For each backbone, in one process:
  * a linear-probe head trained with `headstart.runner.train` (60 ELPV cells per class,
    `train.precision=bf16`), loaded back with `load_run` as `headstart predict` does;
  * N held-out ELPV cells (not in the probe's training split), preprocessed once, in memory;
  * inference throughput (img/s, batch 32, backbone + head) for fp32 NCHW, fp32 channels_last and
    bf16 autocast channels_last. The settings take turns batch by batch, so load from other work on
    the machine hits all of them alike; img/s is the median over repeats, and the speed-up is also
    given as the median of per-batch time ratios (paired, the steadiest figure on a shared machine);
  * the drift of the probabilities, per image the largest |dp| over classes: bf16 vs fp32 (max,
    median, 99th percentile, how many argmax decisions flip), each precision at batch 1 vs batch 32
    (train's loaders and predict's batches differ), and each precision on "another machine": the
    same model and images in a fresh process with oneDNN limited to an older instruction set
    (`ONEDNN_MAX_CPU_ISA=AVX512_CORE`: AVX-512 without bf16; `AVX2`), as on CPUs without native bf16.
Figures are medians; ratios come from the same process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

SETTINGS = {  # name: (precision, channels_last)
    "fp32 NCHW": ("fp32", False),
    "fp32 channels_last": ("fp32", True),
    "bf16 channels_last": ("bf16", True),
}
OTHER_ISAS = ("AVX512_CORE", "AVX2")  # oneDNN's names: AVX-512 without bf16, and AVX2

OTHER_MACHINE_SNIPPET = r"""
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[3])
from bench_precision import probabilities
from headstart.artifacts import load_run
run = load_run(sys.argv[1])
x = torch.load(sys.argv[2])
np.savez(sys.argv[2] + ".npz", **{p: probabilities(run, x, p, True, 32) for p in ("fp32", "bf16")})
"""


def probabilities(run: Any, x: torch.Tensor, precision: str, channels_last: bool, batch: int) -> np.ndarray:
    """(N, 3, H, W) -> (N, K) softmax probabilities of the run's model, in batches, under one setting."""
    from headstart.engine.inference import head_logits, pooled_features
    from headstart.engine.runtime import Runtime

    rt = Runtime(device=torch.device("cpu"), precision=precision, channels_last=channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = run.model.to(memory_format=fmt).eval()  # the settings share one model: its layout is set each call
    out = []
    with torch.inference_mode():
        for s in range(0, len(x), batch):
            feats = pooled_features(model, x[s : s + batch], rt)  # under rt.inference(): bf16 autocast or fp32
            out.append(head_logits(model, feats).softmax(-1).numpy())
    return np.concatenate(out)


def trained_run(backbone: str, out: Path) -> Any:
    """A linear-probe run on 60 ELPV cells per class with ``train.precision=bf16``, loaded back."""
    from headstart import runner
    from headstart.artifacts import load_run
    from headstart.config import load_config

    sets = ["data.source=builtin:elpv", "data.limit_per_class=60", f"model.backbone={backbone}"]
    cfg = load_config(None, [*sets, "strategy.name=linear-probe", "train.precision=bf16"])
    summary = runner.train(cfg, out)
    print(f"  probe run {out}: test accuracy {summary.metrics['accuracy']:.4f} ({summary.seconds:.1f} s)")
    return load_run(summary.out)


def held_out(images: Any, run: Any, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` ELPV cells outside the probe's training split, the same number per class."""
    train_ids = set(run.splits()["train"])
    rng = np.random.RandomState(seed)
    pick: list[int] = []
    for k in range(len(images.labels)):
        rows = [int(i) for i in rng.permutation(np.flatnonzero(images.targets == k)) if images.ids[i] not in train_ids]
        pick.extend(rows[: n // len(images.labels)])
    return np.sort(np.asarray(pick, dtype=np.int64))


def drift(a: np.ndarray, b: np.ndarray) -> str:
    d = np.abs(a - b).max(axis=1)  # (N,) per image: the largest change of any class probability
    flips = int((a.argmax(1) != b.argmax(1)).sum())
    return (
        f"max {d.max():.2e}, median {np.median(d):.2e}, p99 {np.percentile(d, 99):.2e}, "
        f"> 1e-4 on {int((d > 1e-4).sum())}/{len(d)}, argmax flips {flips}/{len(d)}"
    )


def throughput(run: Any, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """img/s per setting (median over repeats) and the paired per-batch speed-ups, printed."""
    for precision, cl in SETTINGS.values():
        probabilities(run, x[:32], precision, cl, 32)  # warm-up: oneDNN primitive creation
    seconds: dict[str, list[float]] = {name: [] for name in SETTINGS}
    per_batch: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for r in range(repeats):
        total = dict.fromkeys(SETTINGS, 0.0)
        for b, s in enumerate(range(0, len(x), 32)):
            names = list(SETTINGS)
            shift = (r + b) % len(names)  # rotate who goes first
            for name in names[shift:] + names[:shift]:
                precision, cl = SETTINGS[name]
                t = time.perf_counter()
                probabilities(run, x[s : s + 32], precision, cl, 32)
                dt = time.perf_counter() - t
                total[name] += dt
                per_batch[name].append(dt)
        for name in SETTINGS:
            seconds[name].append(total[name])
    rate = {name: len(x) / statistics.median(s) for name, s in seconds.items()}
    for name in SETTINGS:
        runs = ", ".join(f"{len(x) / s:.1f}" for s in seconds[name])
        print(f"  {name:<19} {rate[name]:6.1f} img/s (median of {repeats}; runs: {runs})")
    for ref in ("fp32 NCHW", "fp32 channels_last"):
        bf16 = per_batch["bf16 channels_last"]
        paired = statistics.median(a / b for a, b in zip(per_batch[ref], bf16, strict=True))
        speedup = rate["bf16 channels_last"] / rate[ref]
        print(f"  bf16 channels_last vs {ref}: {speedup:.2f}x (img/s), {paired:.2f}x (paired per batch)")
    return rate


def other_machine(run: Any, x: torch.Tensor, isa: str) -> dict[str, np.ndarray]:
    """fp32 and bf16 probabilities from a fresh process whose oneDNN may use at most ``isa``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "x.pt")
        torch.save(x, path)
        env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa}
        bench = str(Path(__file__).resolve().parent)
        cmd = [sys.executable, "-c", OTHER_MACHINE_SNIPPET, str(run.path), path, bench]
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        with np.load(path + ".npz") as z:
            return {k: z[k] for k in z.files}


def bench_backbone(backbone: str, images: Any, n: int, repeats: int, out: Path) -> dict[str, float]:
    from headstart.data import eval_transform

    print(f"\n## {backbone}")
    run = trained_run(backbone, out / backbone)
    index = held_out(images, run, n)
    tf = eval_transform(run.recipe)
    x = torch.stack([tf(images.load(int(i))) for i in index])  # (N, 3, H, W) float32
    print(f"  {len(x)} held-out cells, input {tuple(x.shape[1:])}, batch 32")
    rate = throughput(run, x, repeats)

    p = {name: probabilities(run, x, precision, cl, 32) for name, (precision, cl) in SETTINGS.items()}
    print("  probability drift, per image the largest |dp| over classes:")
    print(f"    bf16 CL vs fp32 NCHW           : {drift(p['bf16 channels_last'], p['fp32 NCHW'])}")
    print(f"    fp32 CL vs fp32 NCHW           : {drift(p['fp32 channels_last'], p['fp32 NCHW'])}")
    few = x[:64]  # batch 1 and the slow emulated bf16: on a subset
    for precision in ("fp32", "bf16"):
        one = probabilities(run, few, precision, True, 1)
        print(f"    {precision} CL batch 1 vs 32      : {drift(one, p[f'{precision} channels_last'][:64])}")
    for isa in OTHER_ISAS:
        t = time.perf_counter()
        other = other_machine(run, few, isa)
        for precision in ("fp32", "bf16"):
            native = p[f"{precision} channels_last"][:64]
            print(f"    {precision} CL, oneDNN {isa:<11}: {drift(other[precision], native)}")
        print(f"      ({isa} process: {time.perf_counter() - t:.1f} s for {len(few)} cells in fp32 and bf16)")
    return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbones", default="efficientnet_lite0,mobilenet_v2")
    ap.add_argument("--n", type=int, default=256, help="held-out ELPV cells to score")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="runs/bench-precision", help="where the probe runs are written")
    args = ap.parse_args()

    from headstart._runtime import tune_malloc

    tuned = tune_malloc()
    from headstart.data import load_images
    from headstart.engine.runtime import cpu_has_fast_bf16

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, malloc tuning {'on' if tuned else 'off'}, "
        f"native CPU bf16 {cpu_has_fast_bf16()}"
    )
    images = load_images("builtin:elpv")
    rates = {b: bench_backbone(b, images, args.n, args.repeats, Path(args.out)) for b in args.backbones.split(",")}
    print("\n## ratios (same process, img/s)")
    for b, r in rates.items():
        print(
            f"  {b}: bf16 CL / fp32 CL = {r['bf16 channels_last'] / r['fp32 channels_last']:.2f}x, "
            f"bf16 CL / fp32 NCHW = {r['bf16 channels_last'] / r['fp32 NCHW']:.2f}x"
        )


if __name__ == "__main__":
    main()
