"""Benchmark: audio transfer on builtin:drums (test kits unseen), and probe time against one raw forward pass.

Run with `.venv/bin/python bench/bench_audio.py [--backbones aisfx,resemblyzer] [--epochs 5] [--repeats 3]`.
For each backbone it prints, in one process:
  * `headstart compare` of scratch (MFCC statistics + logistic regression), linear-probe and the fine-tuning
    strategies on the kit-wise split, with macro-F1 and accuracy and their 95% bootstrap CIs, wall times, and
    the check: does the best transfer strategy beat the MFCC baseline by at least 5 macro-F1 points;
  * throughput: the raw backbone forward (front end included) over every clip already decoded and cut in
    memory, against `linear-probe` on a cold feature cache (decode + resample + forward + probe + metrics),
    as medians over repeats, and their ratio (target <= 1.3).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

STRATEGIES = "scratch,linear-probe,finetune,lp-ft,progressive"
FINE_TUNING = ("finetune", "lp-ft", "progressive", "partial", "plateau")


def _cell(metrics: dict, key: str) -> str:
    ci = (metrics.get("ci95") or {}).get(key)
    value = metrics[key]
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def compare(backbone: str, args: argparse.Namespace) -> None:
    from headstart import experiments
    from headstart.config import resolve_run_config

    cfg = resolve_run_config("builtin:drums", None, settings={"train.epochs": args.epochs, "model.backbone": backbone})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = experiments.compare(cfg, args.strategies.split(","), Path(tmp) / "cmp", 1)
        print(f"\n### {backbone}: compare took {time.perf_counter() - start:.0f} s ({args.epochs} epochs)")
    rows = {name: (s[0].metrics, s[0].seconds) for name, s in result.runs.items()}
    print("| strategy | macro-F1 [95% CI] | accuracy [95% CI] | wall time (s) |\n|---|---|---|---:|")
    for name, (m, seconds) in rows.items():
        print(f"| {name} | {_cell(m, 'macro_f1')} | {_cell(m, 'accuracy')} | {seconds:.0f} |")
    if "scratch" in rows:
        transfer = max((s for s in rows if s != "scratch"), key=lambda s: rows[s][0]["macro_f1"])
        gain = rows[transfer][0]["macro_f1"] - rows["scratch"][0]["macro_f1"]
        print(f"best transfer {transfer}: +{100 * gain:.1f} macro-F1 points over MFCC -> >= 5: {gain >= 0.05}")
    tuned = [s for s in rows if s in FINE_TUNING]
    if tuned and "linear-probe" in rows:
        best = max(tuned, key=lambda s: rows[s][0]["macro_f1"])
        probe = rows["linear-probe"][0]["macro_f1"]
        print(f"best fine-tuning {best} {rows[best][0]['macro_f1']:.3f} vs probe {probe:.3f}")


def throughput(backbone: str, args: argparse.Namespace) -> None:
    import torch

    from headstart import runner
    from headstart.backbones import get_backbone
    from headstart.config import load_config
    from headstart.data.audio import clear_memo, fit_length
    from headstart.engine import resolve_runtime
    from headstart.modalities import create_model

    cache = Path(tempfile.mkdtemp(prefix="headstart-bench-cache-"))
    os.environ["HEADSTART_CACHE_DIR"] = str(cache)
    cfg = load_config(None, ["data.source=builtin:drums", "strategy.name=linear-probe", f"model.backbone={backbone}"])
    data = runner.prepare_data(cfg)
    clips = data[0]
    runtime = resolve_runtime(cfg.train)
    model, recipe = create_model(get_backbone(backbone))
    model = runtime.model(model.eval())
    x_all = torch.stack(
        [
            torch.from_numpy(fit_length(clips.load(i, recipe.sample_rate), recipe.clip_samples))
            for i in range(len(clips))
        ]
    )
    raw = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        with torch.inference_mode():  # fp32, as every kept forward pass (engine/inference.py) and the probe's
            for s in range(0, len(x_all), cfg.train.batch_size):
                model.forward_head(model.forward_features(runtime.batch(x_all[s : s + cfg.train.batch_size])), True)
        raw.append(time.perf_counter() - t)
    cold = []
    out = Path(tempfile.mkdtemp(prefix="headstart-bench-runs-"))
    for i in range(args.repeats):
        for f in (cache / "features").glob("*"):
            f.unlink()
        clear_memo()  # decode and resample again, as a first run does
        cold.append(runner.train(cfg, out / f"cold{i}", data).seconds)
    raw_s, cold_s = statistics.median(raw), statistics.median(cold)
    setting = f"fp32, channels_last={runtime.channels_last}"
    print(f"\n### {backbone}: {len(clips)} clips of {recipe.clip_seconds:.2f} s at {recipe.sample_rate} Hz ({setting})")
    print(
        f"raw forward (front end + encoder, clips in memory): median {raw_s:.2f} s ({len(clips) / raw_s:.0f} clips/s)"
    )
    print(f"linear-probe, cold feature cache (decode, resample, forward, probe, metrics, run): median {cold_s:.2f} s")
    print(f"ratio probe / raw forward: {cold_s / raw_s:.2f} (target <= 1.3)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbones", default="aisfx,resemblyzer")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--strategies", default=STRATEGIES)
    ap.add_argument("--only", default=None, help="compare or throughput: run one part")
    args = ap.parse_args()
    for backbone in args.backbones.split(","):
        if args.only in (None, "compare"):
            compare(backbone, args)
        if args.only in (None, "throughput"):
            throughput(backbone, args)


if __name__ == "__main__":
    main()
