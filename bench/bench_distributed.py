"""Benchmark: feature extraction and training throughput with 1 vs N processes (torchrun + DDP).

Run with `.venv/bin/python bench/bench_distributed.py [--nprocs 1,2] [--images 256] [--steps 12]`.
For each process count it starts `torch.distributed.run --standalone` on this script; every
worker times (a) feature extraction of `--images` ELPV cells (efficientnet_lite0, no cache,
sharded across ranks and gathered) and (b) `--steps` finetune optimizer steps at a global batch
of 32 (each rank takes its slice of every global batch; DDP all-reduces the gradients). Rank 0
prints images/s and the time to build the DDP wrapper (paid again at every phase change) next to
the time of one step. On CPU every process gets cores / N threads (N processes share the same cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def worker(n_images: int, steps: int) -> None:
    import numpy as np
    import torch

    from headstart.backbones import get_backbone, resolve_recipe
    from headstart.config import load_config
    from headstart.data import SkipLog, load_images
    from headstart.engine import distributed, resolve_runtime
    from headstart.engine.features import extract_features
    from headstart.engine.train import Trainer
    from headstart.modalities import create_model
    from headstart.runner import resolve_config
    from headstart.strategies import get_strategy

    distributed.setup()
    cfg = load_config(None, ["data.source=builtin:elpv", "strategy.name=finetune", "train.batch_size=32"])
    spec = get_backbone("efficientnet_lite0")
    cfg = resolve_config(cfg, spec)
    images = load_images("builtin:elpv").subset(np.arange(n_images))
    runtime = resolve_runtime(cfg.train)
    torch.manual_seed(0)
    model, ckpt = create_model(spec, len(images.labels))
    recipe = resolve_recipe(ckpt, cfg.preprocess)
    distributed.barrier()
    t = time.perf_counter()
    extract_features(model, images, recipe, runtime, {"bench": 1}, 32, SkipLog(), use_cache=False)
    extract_s = time.perf_counter() - t
    splits = {"train": np.arange(n_images), "val": np.arange(8)}
    trainer = Trainer(model, get_strategy(cfg), images, splits, recipe, cfg, runtime, SkipLog())
    trainer.train_mode()
    batches = iter(trainer.loader)
    distributed.barrier()
    t = time.perf_counter()
    trainer.forward_model()  # builds the DDP wrapper, as after every phase change
    ddp_build_s = time.perf_counter() - t
    trainer.train_step(next(batches))  # warm-up
    distributed.barrier()
    t = time.perf_counter()
    done = 0
    for batch in batches:
        if done == steps:
            break
        trainer.train_step(batch)
        done += 1
    distributed.barrier()
    train_s = time.perf_counter() - t
    if distributed.is_main():
        result = {
            "processes": distributed.world_size(),
            "threads": torch.get_num_threads(),
            "extract_images_per_s": n_images / extract_s,
            "train_images_per_s": done * cfg.train.batch_size / train_s,
            "steps": done,
            "ddp_build_s": ddp_build_s,
            "step_s": train_s / max(done, 1),
        }
        print("RESULT " + json.dumps(result), flush=True)
    distributed.teardown()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nprocs", default="1,2")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.images, args.steps)
        return
    cores = os.cpu_count() or 1
    rows = []
    for n in [int(x) for x in args.nprocs.split(",")]:
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // n))}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}"]
        cmd += [__file__, "--worker", "--images", str(args.images), "--steps", str(args.steps)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
        rows.append(json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:]))
        print(rows[-1], flush=True)
    base = rows[0]
    print("\n| processes | threads each | extraction (img/s) | speed-up | training (img/s) | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ex, tr = r["extract_images_per_s"], r["train_images_per_s"]
        print(
            f"| {r['processes']} | {r['threads']} | {ex:.1f} | {ex / base['extract_images_per_s']:.2f}x "
            f"| {tr:.1f} | {tr / base['train_images_per_s']:.2f}x |"
        )


if __name__ == "__main__":
    main()
