"""Benchmark: the fixed costs of a command (issue 18, parts 3 and 4), each a median of repeated processes.

Run with `.venv/bin/python bench/bench_speed.py [--repeats 5]`. Prints, in one run:
  * import time of `headstart`, `headstart.runner` and the CLI app, as process wall time (`python -c "import X"`),
    against `python -c "import torch, timm"` (what any image command needs anyway);
  * which heavy packages each import pulls in (scikit-learn, matplotlib, scipy, transformers);
  * `headstart predict RUN one.png` process wall time against `import torch, timm` (target <= 1.5x);
  * `headstart train builtin:elpv --strategy linear-probe` on 1,600 images: first run (features extracted into
    an empty cache) against a cached rerun, at the process level (target >= 5x), and where the rerun's seconds go
    (`headstart.json`'s `seconds` is the run's own time; the rest is the process starting and importing).
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
HEAVY = ("sklearn", "matplotlib", "scipy", "transformers", "timm", "torchvision")


def wall(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def median_wall(cmd: list[str], env: dict[str, str], repeats: int) -> float:
    wall(cmd, env)  # warm the page cache
    return statistics.median(wall(cmd, env) for _ in range(repeats))


def pulled_in(module: str, env: dict[str, str]) -> list[str]:
    """The heavy packages that ``import module`` loads."""
    probe = f"import sys, {module}; print(','.join(p for p in {HEAVY!r} if p in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, env=env, capture_output=True, text=True)
    return [p for p in out.stdout.strip().split(",") if p]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="headstart-bench-speed-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HEADSTART_CACHE_DIR": str(work / "cache")}
    py, hs = sys.executable, str(BIN / "headstart")

    baseline = median_wall([py, "-c", "import torch, timm"], env, args.repeats)
    print(f"## imports (process wall time, median of {args.repeats})\n")
    print("| import | seconds | vs `import torch, timm` | heavy packages pulled in |\n|---|---:|---:|---|")
    print(f"| torch, timm | {baseline:.2f} | 1.00x | {', '.join(pulled_in('torch, timm', env))} |")
    for module in ("headstart", "headstart.cli.app", "headstart.artifacts.predict", "headstart.runner"):
        t = median_wall([py, "-c", f"import {module}"], env, args.repeats)
        print(f"| {module} | {t:.2f} | {t / baseline:.2f}x | {', '.join(pulled_in(module, env)) or '-'} |")

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


def _write_one_image(path: Path) -> None:
    """One ELPV cell as a PNG (the dataset ships as arrays)."""
    code = (
        "from PIL import Image; from headstart.data import load_images; "
        f"d = load_images('builtin:elpv'); Image.fromarray(d.arrays[0]).save({str(path)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__":
    main()
