"""Benchmark: the fixed costs of a command (issue 18, parts 3 and 4), each a median of repeated processes.

Run with `.venv/bin/python bench/bench_speed.py [--repeats 5] [--part imports|cache|all]`. Prints, in one run:
  * import time of `headstart`, `headstart.runner` and the CLI app, as process wall time (`python -c "import X"`),
    against `python -c "import torch, timm"` (what any image command needs anyway);
  * which heavy packages each import pulls in (scikit-learn, matplotlib, scipy, transformers);
  * `headstart predict RUN one.png` process wall time against `import torch, timm` (target <= 1.5x);
  * each command that trains nothing (`--help`, `backbones`, `plan`, `predict`, `evaluate`): process wall time and
    the heavy packages it imports;
  * `headstart train builtin:elpv --strategy linear-probe` on 1,600 images: first run (features extracted into
    an empty cache) against a cached rerun, at the process level (target >= 5x), and where the rerun's seconds go
    (`headstart.json`'s `seconds` is the run's own time; the rest is the process starting and importing);
  * (`--part cache`) each gradient strategy on an ELPV subset with the frozen-prefix cache on and off, in one
    process: wall time of the run, time per epoch (first epoch, which fills the cache, and the median of the
    later ones), the largest weight difference and both runs' test macro-F1 (identical by design), and
    `partial` (last two groups) against `finetune` per epoch (target <= 0.15x);
  * (`--part api`) `hs.fit` in a notebook-like process (`import headstart as hs`, no CLI start-up) with the
    Python API's allocator tuning and with it turned off (`HEADSTART_NO_MALLOC_TUNING=1`, the API before it had
    one), taking turns, each the seconds of the `hs.fit` call.
Nothing else should run on the machine meanwhile (2 cores: any other job doubles the figures).
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

BIN = Path(sys.executable).parent
TORCH_TIMM = [sys.executable, "-c", "import torch, timm"]
HEAVY = ("sklearn", "matplotlib", "scipy", "transformers", "timm", "torchvision")


def wall(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def median_wall(cmd: list[str], env: dict[str, str], repeats: int) -> float:
    wall(cmd, env)  # warm the page cache
    return statistics.median(wall(cmd, env) for _ in range(repeats))


def pulled_in(args: list[str], env: dict[str, str]) -> list[str]:
    """The heavy packages that ``python ARGS`` imports (``python -X importtime`` lists every import)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *args], check=True, env=env, capture_output=True, text=True
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time")}
    return [p for p in HEAVY if p in names]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--part", choices=("imports", "cache", "api", "all"), default="all")
    ap.add_argument("--limit", type=int, default=200, help="--part cache: ELPV images per class")
    ap.add_argument("--epochs", type=int, default=4, help="--part cache: epochs per run (--part api: 1)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="headstart-bench-speed-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HEADSTART_CACHE_DIR": str(work / "cache")}
    if args.part in ("imports", "all"):
        fixed_costs(args, work, env)
    if args.part in ("api", "all"):
        api_allocator(args, work, env)
    if args.part in ("cache", "all"):
        os.environ.update(env)
        frozen_cache(args, work)


FIT = (
    "import time, headstart as hs; t = time.perf_counter(); hs.fit('builtin:elpv', strategy={strategy!r}, "
    "epochs=1, out={out!r}, settings={{'data.limit_per_class': {limit}}}, verbose=False); "
    "print(time.perf_counter() - t)"
)


def api_allocator(args: argparse.Namespace, work: Path, env: dict[str, str]) -> None:
    """``hs.fit`` (one epoch of ``finetune`` and of the default strategy, test scoring included) in fresh
    processes, with the API's allocator tuning and without, taking turns; the data cache is warmed first."""
    off = {**env, "HEADSTART_NO_MALLOC_TUNING": "1"}
    print(f"\n## Python API: hs.fit, ELPV {args.limit} per class, 1 epoch, allocator tuning on / off\n")
    print("| strategy | tuned (s) | not tuned (s) | tuned / not |\n|---|---:|---:|---:|")
    for strategy in ("finetune", "progressive"):
        seconds: dict[str, list[float]] = {"on": [], "off": []}
        for i in range(args.repeats + 1):  # the first pair warms the caches and is not counted
            for label, e in (("on", env), ("off", off)):
                code = FIT.format(strategy=strategy, out=str(work / f"api-{strategy}-{label}-{i}"), limit=args.limit)
                out = subprocess.run([sys.executable, "-c", code], env=e, check=True, capture_output=True, text=True)
                if i:
                    seconds[label].append(float(out.stdout.split()[-1]))
        on, no = statistics.median(seconds["on"]), statistics.median(seconds["off"])
        print(f"| {strategy} | {on:.1f} | {no:.1f} | {on / no:.2f}x |")


def fixed_costs(args: argparse.Namespace, work: Path, env: dict[str, str]) -> None:
    py, hs = sys.executable, str(BIN / "headstart")

    baseline = median_wall(TORCH_TIMM, env, args.repeats)
    print(f"## imports (process wall time, median of {args.repeats})\n")
    print("| import | seconds | vs `import torch, timm` | heavy packages pulled in |\n|---|---:|---:|---|")
    print(f"| torch, timm | {baseline:.2f} | 1.00x | {', '.join(pulled_in(TORCH_TIMM[1:], env))} |")
    for module in ("headstart", "headstart.cli.app", "headstart.artifacts.predict", "headstart.runner"):
        importing = ["-c", f"import {module}"]
        t = median_wall([py, *importing], env, args.repeats)
        print(f"| {module} | {t:.2f} | {t / baseline:.2f}x | {', '.join(pulled_in(importing, env)) or '-'} |")

    train = [hs, "train", "builtin:elpv", "--strategy", "linear-probe", "--set", "data.limit_per_class=800"]
    first_out = work / "first"
    first = wall([*train, "--out", str(first_out)], env)
    rerun_outs = [work / f"rerun{i}" for i in range(args.repeats)]
    rerun = statistics.median(wall([*train, "--out", str(out)], env) for out in rerun_outs)
    inner = json.loads((rerun_outs[-1] / "headstart.json").read_text())["seconds"]
    n = sum(len(v) for v in json.loads((first_out / "splits.json").read_text()).values() if isinstance(v, list))
    print(f"\n## linear-probe on {n} ELPV images (process wall time)\n")
    print("| what | seconds |\n|---|---:|")
    print(f"| first run (features extracted) | {first:.2f} |")
    print(f"| cached rerun (median of {args.repeats}) | {rerun:.2f} |")
    print(f"| of which the run itself (headstart.json seconds) | {inner:.2f} |")
    print(f"| first / cached rerun | **{first / rerun:.1f}x** (target >= 5x) |")

    one = work / "one.png"
    _write_one_image(one)
    predict = median_wall([hs, "predict", str(first_out), str(one)], env, args.repeats)
    ratio = predict / baseline
    print(f"\n## `headstart predict RUN one.png`: {predict:.2f} s, {ratio:.2f}x `import torch, timm` (target <= 1.5x)")
    per_command(args, first_out, one, env)


def per_command(args: argparse.Namespace, run: Path, one: Path, env: dict[str, str]) -> None:
    """Process wall time of each command that needs no training, and the heavy packages it imports."""
    commands = {
        "headstart --help": ["--help"],
        "headstart backbones": ["backbones"],
        "headstart plan builtin:elpv": ["plan", "builtin:elpv"],
        "headstart predict RUN one.png": ["predict", str(run), str(one)],
        "headstart evaluate RUN builtin:elpv": ["evaluate", str(run), "builtin:elpv", "--format", "json"],
    }
    print(f"\n## commands (process wall time, median of {args.repeats}, each run right after `import torch, timm`)\n")
    print("| command | seconds | `import torch, timm` meanwhile | ratio | heavy packages imported |")
    print("|---|---:|---:|---:|---|")
    for name, argv in commands.items():
        wall([str(BIN / "headstart"), *argv], env)  # warm the page cache
        pairs = [(wall(TORCH_TIMM, env), wall([str(BIN / "headstart"), *argv], env)) for _ in range(args.repeats)]
        base, t = (statistics.median(p[i] for p in pairs) for i in (0, 1))
        heavy = ", ".join(pulled_in([str(BIN / "headstart"), *argv], env)) or "-"
        print(f"| `{name}` | {t:.2f} | {base:.2f} | {t / base:.2f}x | {heavy} |")


STRATEGIES = (  # (row, strategy, settings)
    ("finetune", "finetune", {}),
    ("partial (last 2 groups)", "partial", {"strategy.train_groups": 2}),
    ("partial (last 4 groups)", "partial", {"strategy.train_groups": 4}),
    ("progressive (default schedule)", "progressive", {}),
    ("progressive (a group per epoch)", "progressive", {"strategy.unfreeze_every": 1.0}),
    ("plateau", "plateau", {}),
    ("lp-ft", "lp-ft", {}),
)


def frozen_cache(args: argparse.Namespace, work: Path) -> None:
    """Each strategy with the frozen-prefix cache on and off, epochs timed by wrapping ``Trainer.run_epoch``."""
    import torch
    from safetensors.torch import load_file

    import headstart as hs
    from headstart.engine.train import Trainer

    epochs: list[float] = []
    run_epoch = Trainer.run_epoch

    def timed(self: Trainer) -> dict:
        t = time.perf_counter()
        record = run_epoch(self)
        epochs.append(time.perf_counter() - t)
        return record

    Trainer.run_epoch = timed  # type: ignore[method-assign]
    torch.set_num_threads(os.cpu_count() or 1)
    # warm-up: decode ELPV into the data cache and extract the probe's features, so neither run of a pair pays it
    warm = {"data.limit_per_class": args.limit}
    hs.fit("builtin:elpv", strategy="linear-probe", out=work / "warm-up", settings=warm, verbose=False)
    rows, per_epoch = [], {}
    for label, strategy, extra in STRATEGIES:
        runs = {}
        for cache in (True, False):
            epochs.clear()
            settings = {"data.limit_per_class": args.limit, "train.cache_frozen": cache, **extra}
            out = work / f"{strategy}-{len(rows)}-{cache}"
            t = time.perf_counter()
            run = hs.fit(
                "builtin:elpv", strategy=strategy, epochs=args.epochs, out=out, settings=settings, verbose=False
            )
            later = statistics.median(epochs[1:]) if len(epochs) > 1 else float("nan")
            runs[cache] = (run, time.perf_counter() - t, epochs[0], later)
        (on, t_on, first_on, later_on), (off, t_off, first_off, later_off) = runs[True], runs[False]
        w_on, w_off = load_file(on.path / "model.safetensors"), load_file(off.path / "model.safetensors")
        diff = max(float((w_on[k].float() - w_off[k].float()).abs().max()) for k in w_on)
        per_epoch[label] = (later_on, later_off)
        rows.append(
            f"| {label} | {t_off:.1f} | {t_on:.1f} | {t_on / t_off:.2f}x | {first_off:.1f} / {later_off:.1f} | "
            f"{first_on:.1f} / {later_on:.1f} | {diff:.1e} | {off.metrics['macro_f1']:.4f} / "
            f"{on.metrics['macro_f1']:.4f} |"
        )
    print(f"\n## frozen-prefix cache: ELPV {args.limit} per class, {args.epochs} epochs, efficientnet_lite0\n")
    print(
        "| strategy | run off (s) | run on (s) | on / off | epoch 1 / later, off (s) | epoch 1 / later, on (s) | "
        "max weight diff | test macro-F1 off / on |\n|---|---:|---:|---:|---:|---:|---:|---|"
    )
    print("\n".join(rows))
    partial, finetune = per_epoch["partial (last 2 groups)"][0], per_epoch["finetune"][1]
    ratio = partial / finetune
    print(f"\npartial (last 2 groups, cached) / finetune, time per later epoch: **{ratio:.2f}x** (target <= 0.15x)")


def _write_one_image(path: Path) -> None:
    """One ELPV cell as a PNG (the dataset ships as arrays)."""
    code = (
        "from PIL import Image; from headstart.data import load_images; "
        f"d = load_images('builtin:elpv'); Image.fromarray(d.arrays[0]).save({str(path)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__":
    main()
