"""Benchmark: time to the default model (issue 18), a ladder of settings on one fixed split per dataset.

Run with `.venv/bin/python bench/bench_default.py --data builtin:elpv|builtin:fashion-mnist [--rows 0,1,...]`.
Each row is one training run (`runner.train`, the same call as `bench_strategies.py`, whose 2026-11-26 figures
are the reference: 334 s on ELPV, 206 s on Fashion-MNIST) with the row's settings on top of the defaults; it
prints test accuracy, macro-F1, the run's wall time, and both against the first row run (measured in the same
process: row 0 is the defaults as they were before issue 18's depthwise backward and BatchNorm fold) and
against the reference.
ELPV uses the demo's split and settings (whole cell, vflip); Fashion-MNIST the 100/class split of
`bench_strategies.py`. Nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

REFERENCE = {"builtin:elpv": (334.0, 0.898), "builtin:fashion-mnist": (206.0, 0.8740)}  # bench/README, 2026-11-26
ELPV = ["preprocess.crop_pct=1.0", "preprocess.vflip=true"]
BF16_DW = "train.fp32_depthwise_grads=false"  # the depthwise convolutions' backward in bf16, as before issue 18
NO_FOLD = "train.fold_bn=false"  # eval-mode BatchNorm run as its own layer, as before issue 18
BEFORE = [BF16_DW, NO_FOLD]
LADDER = (  # (row, settings on top of the defaults)
    ("before: defaults with bf16 depthwise backward, BatchNorm not folded (progressive, 224 px, all 8 groups)",
     BEFORE),
    ("before + unfreeze the top 4 groups only", [*BEFORE, "strategy.unfreeze_depth=4"]),
    ("before + 160 px", [*BEFORE, "preprocess.input_size=160"]),
    ("before + 160 px + top 4 groups", [*BEFORE, "preprocess.input_size=160", "strategy.unfreeze_depth=4"]),
    ("before + 160 px + top 4 groups, cache off", [*BEFORE, "preprocess.input_size=160",
                                                   "strategy.unfreeze_depth=4", "train.cache_frozen=false"]),
    ("before + 192 px + top 5 groups", [*BEFORE, "preprocess.input_size=192", "strategy.unfreeze_depth=5"]),
    ("before + top 5 groups", [*BEFORE, "strategy.unfreeze_depth=5"]),
    ("fp32 depthwise backward, BatchNorm not folded", [NO_FOLD]),
    ("fp32 depthwise backward, BatchNorm not folded + 160 px", [NO_FOLD, "preprocess.input_size=160"]),
    ("fp32 depthwise backward, BatchNorm not folded + 160 px + top 5 groups",
     [NO_FOLD, "preprocess.input_size=160", "strategy.unfreeze_depth=5"]),
    ("defaults (fp32 depthwise backward, eval-mode BatchNorm folded)", []),
    ("defaults + 160 px", ["preprocess.input_size=160"]),
)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="builtin:elpv", choices=sorted(REFERENCE))
    ap.add_argument("--rows", default=",".join(str(i) for i in range(len(LADDER))), help="ladder rows to run")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra settings for every row")
    args = ap.parse_args()

    from headstart._runtime import tune_malloc

    tune_malloc()
    from bench_strategies import fashion_split

    from headstart import runner
    from headstart.config import load_config

    base = [f"data.source={args.data}", *(ELPV if args.data == "builtin:elpv" else []), *args.sets]
    cfg = load_config(None, base)
    data = fashion_split() if args.data == "builtin:fashion-mnist" else runner.prepare_data(cfg)
    print(f"data {args.data}: split sizes { {k: len(v) for k, v in data[1].items()} }; settings {base}", flush=True)
    out = Path(tempfile.mkdtemp(prefix="headstart-bench-default-"))
    ref_seconds, ref_acc = REFERENCE[args.data]
    rows, first = [], None
    for i in (int(r) for r in args.rows.split(",") if r):
        label, settings = LADDER[i]
        c = load_config(None, [*base, *settings])
        s = runner.train(c, out / f"row{i}", data)
        acc, f1, secs = s.metrics["accuracy"], s.metrics["macro_f1"], s.seconds
        first = first or (acc, secs)
        rows.append(
            f"| {label} | {acc:.4f} | {f1:.4f} | {secs:.0f} | {secs / first[1]:.2f}x | {100 * (acc - first[0]):+.1f} "
            f"| {secs / ref_seconds:.2f}x | {100 * (acc - ref_acc):+.1f} |"
        )
        print(rows[-1], flush=True)
    print(
        f"\n## time to the default model, {args.data}\n\n| settings | test accuracy | macro-F1 | wall time (s) | "
        "vs first row | points vs first row | vs reference time | points vs reference |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
