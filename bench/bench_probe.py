"""Benchmark: linear probe vs one raw forward pass, cached rerun, precision/memory-format choices.

Run with `make bench` (or `.venv/bin/python bench/bench_probe.py [--repeats N]`). Prints, in one run:
  * raw forward throughput of the backbone over the same images (already preprocessed, in memory)
    for fp32 NCHW, fp32 channels_last and bf16 channels_last, with and without the malloc tuning;
  * wall time of `headstart train --strategy linear-probe` (features + probe + test metrics) on a
    cold cache and on a warm cache, with the probe's test accuracy in fp32 and in the fastest setting;
  * the ratios the targets are about: probe / raw forward (<= 1.3), first run / cached (>= 10).
Timings are medians over repeats; ratios come from the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORWARD_SNIPPET = r"""
import json, sys, time, torch
from headstart._runtime import tune_malloc
tuned = tune_malloc() if sys.argv[1] == "tuned" else False
from headstart.backbones import get_backbone
from headstart.modalities import create_model
model, _ = create_model(get_backbone(sys.argv[2])); model.eval()
x = torch.randn(32, 3, 224, 224)
out = {"malloc_tuned": tuned}
SETTINGS = [("fp32_nchw", False, False), ("fp32_channels_last", True, False), ("bf16_channels_last", True, True)]
for name, cl, bf in SETTINGS:
    m = model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
    xx = x.contiguous(memory_format=torch.channels_last) if cl else x
    rates = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
        m(xx)
        for _ in range(3):
            t = time.perf_counter(); m(xx); rates.append(32 / (time.perf_counter() - t))
    out[name] = sorted(rates)[1]
print(json.dumps(out))
"""


def forward_rates(backbone: str, tuned: bool) -> dict:
    """Throughput in a fresh process, so the allocator setting is the only difference."""
    env = {**os.environ, "HEADSTART_NO_MALLOC_TUNING": "0" if tuned else "1"}
    res = subprocess.run(
        [sys.executable, "-c", FORWARD_SNIPPET, "tuned" if tuned else "plain", backbone],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="builtin:elpv")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from headstart._runtime import tune_malloc

    tune_malloc()
    import torch

    from headstart import runner
    from headstart.backbones import get_backbone
    from headstart.config import load_config
    from headstart.data import eval_transform
    from headstart.engine import resolve_runtime
    from headstart.modalities import create_model

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, data {args.data}, backbone {args.backbone}")
    print("\n## allocator: raw forward img/s at batch 32 (fresh process each)")
    for tuned in (False, True):
        r = forward_rates(args.backbone, tuned)
        print(
            f"  malloc tuning {'on ' if tuned else 'off'}: "
            + ", ".join(f"{k} {v:.1f}" for k, v in r.items() if k != "malloc_tuned")
        )

    cache = Path(tempfile.mkdtemp(prefix="headstart-bench-cache-"))
    os.environ["HEADSTART_CACHE_DIR"] = str(cache)
    base = [f"data.source={args.data}", "strategy.name=linear-probe", f"model.backbone={args.backbone}"]
    cfg = load_config(None, base)
    t = time.perf_counter()
    data = runner.prepare_data(cfg)
    images = data[0]
    print(f"\n## data: {len(images)} images loaded and split in {time.perf_counter() - t:.1f} s (excluded below)")

    runtime = resolve_runtime(cfg.train)
    model, recipe = create_model(get_backbone(args.backbone))
    model = runtime.model(model.eval())
    tf = eval_transform(recipe)
    x_all = torch.stack([tf(images.load(i)) for i in range(len(images))])
    raw = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        with torch.inference_mode(), runtime.autocast():
            for s in range(0, len(x_all), cfg.train.batch_size):
                xb = runtime.batch(x_all[s : s + cfg.train.batch_size])
                model.forward_head(model.forward_features(xb), pre_logits=True)
        raw.append(time.perf_counter() - t)
    del x_all
    raw_s = statistics.median(raw)
    setting = f"{runtime.train_precision}, channels_last={runtime.channels_last}"
    print(f"\n## raw forward pass ({setting}), {len(images)} images")
    print(f"  median {raw_s:.2f} s ({len(images) / raw_s:.1f} img/s); runs: {', '.join(f'{v:.2f}' for v in raw)}")

    out = Path(tempfile.mkdtemp(prefix="headstart-bench-runs-"))
    cold, warm, acc, f1 = [], [], 0.0, 0.0
    for i in range(args.repeats):
        for f in (cache / "features").glob("*"):
            f.unlink()
        s = runner.train(cfg, out / f"cold{i}", data)
        assert s.feature_cache_hit is False
        cold.append(s.seconds)
        acc, f1 = s.metrics["accuracy"], s.metrics["macro_f1"]
    for i in range(max(3, args.repeats)):
        s = runner.train(cfg, out / f"warm{i}", data)
        assert s.feature_cache_hit is True
        warm.append(s.seconds)
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    print("\n## linear probe (train+val features in the training precision, test features in fp32, probe fit,")
    print("##               test metrics, run written)")
    print(f"  first run  median {cold_s:.2f} s; runs: {', '.join(f'{v:.2f}' for v in cold)}; test accuracy {acc:.4f}")
    print(f"  cached run median {warm_s:.2f} s; runs: {', '.join(f'{v:.2f}' for v in warm)}")

    fp32 = load_config(None, [*base, "train.precision=fp32", "train.channels_last=false"])
    s32 = runner.train(fp32, out / "fp32", data)
    print("\n## probe accuracy by extraction setting")
    m32 = s32.metrics
    print(
        f"  fp32 NCHW          : test accuracy {m32['accuracy']:.4f}"
        f"  macro-F1 {m32['macro_f1']:.4f}  ({s32.seconds:.1f} s)"
    )
    print(
        f"  {runtime.train_precision} channels_last: test accuracy {acc:.4f}  macro-F1 {f1:.4f}  (train.precision=auto)"
    )
    diff = 100 * (acc - s32.metrics["accuracy"])
    print(f"  difference: {diff:+.2f} accuracy points (target: no more than 0.5 below fp32)")

    print("\n## ratios")
    print(f"  probe / raw forward  = {cold_s / raw_s:.2f}  (target <= 1.3)")
    print(f"  first run / cached   = {cold_s / warm_s:.1f}  (target >= 10)")
    print(f"  fp32-NCHW probe / fastest probe = {s32.seconds / cold_s:.2f}")


if __name__ == "__main__":
    main()
