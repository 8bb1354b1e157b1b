"""Benchmark: do the transferability estimators rank backbones the way training does?

Run with `.venv/bin/python bench/bench_rank.py [--datasets fashion-mnist,elpv] [--seeds 1] [--epochs 5]`.
For each dataset, ranks the four catalog image backbones plus a randomly initialised
efficientnet_lite0 (`rank_backbones`, with an empty feature cache so that extraction is paid),
then trains every candidate with the default strategy (`scratch` for the random one) once per
training seed, and reports per estimator Kendall's tau between its scores and the measured test
accuracy (mean over seeds), and ranking time vs training time. A second ground truth is the test
accuracy of a linear probe on each candidate's features (the `linear-probe` fit, deterministic, so
free of training-seed noise; the issue allows "fine-tunes (or probes)").

Because tau over five candidates is decided by a few pairs, the script also says how precise the
measured ranking itself is: a paired bootstrap over test examples gives each tau a 90% interval,
and the split-half tau (accuracies on two random halves of the test set, ranked against each
other) and, with two or more seeds, the seed-to-seed tau are the ceiling any estimator can reach.

Data: Fashion-MNIST 100 train / 50 val per class from the official train set and
`--test-per-class` (500) from the official test set; ELPV 210 train / 45 val per class and every
other image as test (whole cell + vertical flips as in the demo). Every finished training is
saved under `--out`, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

CANDIDATES = "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,mobilenet_v2,random:efficientnet_lite0"
ESTIMATORS = ["logme", "hscore", "leep", "nce", "knn_accuracy", "probe_accuracy"]


def _pick(images: Any, n_train: int, n_val: int, n_test: int | None, pools: Any, seed: int) -> tuple[Any, dict]:
    """Per class: ``n_train`` + ``n_val`` from the class's train pool, ``n_test`` (None: all) from its test pool.

    ``pools(k)`` gives class k's (train pool, test pool); a test pool of None means what the train
    pool has left.
    """
    rng = np.random.RandomState(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for k in range(len(images.labels)):
        train_pool, test_pool = pools(k)
        train_pool = rng.permutation(train_pool)
        parts["train"] += train_pool[:n_train].tolist()
        parts["val"] += train_pool[n_train : n_train + n_val].tolist()
        test = rng.permutation(train_pool[n_train + n_val :] if test_pool is None else test_pool)
        parts["test"] += test[:n_test].tolist()
    keep = np.sort(np.concatenate([np.asarray(v, dtype=np.int64) for v in parts.values()]))
    pos = {int(i): j for j, i in enumerate(keep)}
    return images.subset(keep), {k: np.sort([pos[i] for i in v]) for k, v in parts.items()}


def dataset(name: str, epochs: int, test_per_class: int):  # type: ignore[no-untyped-def]
    from headstart.config import load_config
    from headstart.data import load_images

    if name == "fashion-mnist":
        cfg = load_config(None, ["data.source=builtin:fashion-mnist", f"train.epochs={epochs}"])
        images = load_images("builtin:fashion-mnist")

        def pools(k: int):  # type: ignore[no-untyped-def]
            of_class = images.targets == k
            return np.flatnonzero(of_class & (images.given_split == "train")), np.flatnonzero(
                of_class & (images.given_split == "test")
            )

        return cfg, _pick(images, 100, 50, test_per_class, pools, 0)
    sets = ["preprocess.crop_pct=1.0", "preprocess.vflip=true"]
    cfg = load_config(None, [f"data.source=builtin:{name}", f"train.epochs={epochs}", *sets])
    images = load_images(f"builtin:{name}")
    return cfg, _pick(images, 210, 45, None, lambda k: (np.flatnonzero(images.targets == k), None), 0)


def correctness(run_dir: Path, test_ids: list[str]) -> np.ndarray:
    """1.0 where the run's test prediction is right, in ``test_ids`` order (from predictions.csv)."""
    with open(run_dir / "predictions.csv", newline="") as f:
        right = {row["id"]: float(row["true"] == row["pred"]) for row in csv.DictReader(f)}
    return np.array([right[i] for i in test_ids])


def train_all(cfg, data, candidates, seeds: int, save, saved: dict) -> dict:  # type: ignore[no-untyped-def]
    """Per candidate and seed: test accuracy, wall time and per-example correctness (reused from ``saved``).

    ``save()`` is called after every training, so an interrupted bench continues where it stopped.
    """
    from headstart import runner

    images, splits = data
    test_ids = [images.ids[i] for i in splits["test"]]
    for seed in range(seeds):
        for cand in candidates:
            key = f"{cand.name}@{seed}"
            if key in saved:
                continue
            c = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backbone=cand.spec.name))
            c = dataclasses.replace(c, train=dataclasses.replace(c.train, seed=seed))
            if not cand.pretrained:
                c = dataclasses.replace(c, strategy=dataclasses.replace(c.strategy, name="scratch"))
            s = runner.train(c, Path(tempfile.mkdtemp(prefix="headstart-bench-rank-")) / key.replace(":", "-"), data)
            right = correctness(s.out, test_ids)
            saved[key] = {"accuracy": float(s.metrics["accuracy"]), "seconds": s.seconds, "correct": right.tolist()}
            save()
            print(f"  seed {seed} {cand.name:26s} accuracy {right.mean():.4f}  {s.seconds:6.1f} s", flush=True)
    return saved


def probe_all(cfg, data, candidates, saved: dict) -> dict:  # type: ignore[no-untyped-def]
    """Per candidate: a linear probe (the `linear-probe` strategy's fit, C chosen on val) scored on test.

    Deterministic given the features, so unlike fine-tuning it carries no training-seed noise; the
    features of train + val come from the cache `rank` filled, only the test rows are extracted.
    """
    from headstart.data import SkipLog
    from headstart.engine import resolve_runtime
    from headstart.tasks.softmax_probe import fit_probe
    from headstart.transferability.features import candidate_features

    images, splits = data
    runtime, fingerprint = resolve_runtime(cfg.train), images.fingerprint()
    for cand in candidates:
        if cand.name in saved:
            continue
        start = time.perf_counter()
        cf = candidate_features(cand, images, cfg, runtime, SkipLog(), fingerprint)
        tr, va, te = (splits[k] for k in ("train", "val", "test"))
        y = images.targets
        fit = fit_probe(cf.features[tr], y[tr], cf.features[va], y[va], len(images.labels), cfg.strategy.probe_cs)
        pred = (cf.features[te] @ fit.weight.T + fit.bias).argmax(1)
        right = (pred == y[te]).astype(float)
        saved[cand.name] = {"accuracy": float(right.mean()), "seconds": time.perf_counter() - start}
        saved[cand.name]["correct"] = right.tolist()
        print(f"  probe {cand.name:26s} test accuracy {right.mean():.4f}  {saved[cand.name]['seconds']:6.1f} s")
    return saved


def _save(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def _tau(a: list[float], b: list[float]) -> float:
    return float(kendalltau(a, b).statistic) if len(a) > 2 else float("nan")


def taus_with_noise(scores: dict[str, dict], correct: dict[str, np.ndarray], n_boot: int) -> dict[str, dict]:
    """Per estimator: tau vs mean accuracy, and the 5-95% interval under a paired test-set bootstrap.

    ``correct[name]`` is (seeds, n_test) correctness; every candidate is resampled on the same examples.
    """
    names = list(correct)
    acc = {n: float(correct[n].mean()) for n in names}
    rng = np.random.default_rng(0)
    n_test = next(iter(correct.values())).shape[1]
    boots = [rng.integers(0, n_test, n_test) for _ in range(n_boot)]
    out = {}
    for e in ESTIMATORS:
        have = [n for n in names if scores[n][e] is not None]
        est = [scores[n][e] for n in have]
        boot = [_tau(est, [float(correct[n][:, b].mean()) for n in have]) for b in boots]
        out[e] = {
            "tau": _tau(est, [acc[n] for n in have]),
            "tau_pretrained": _tau(
                [scores[n][e] for n in have if not n.startswith("random:")],
                [acc[n] for n in have if not n.startswith("random:")],
            ),
            "boot_5": float(np.nanpercentile(boot, 5)),
            "boot_95": float(np.nanpercentile(boot, 95)),
        }
    return out


def ceilings(correct: dict[str, np.ndarray], n_draws: int) -> dict[str, float]:
    """How well the measured ranking agrees with itself: split-half over test examples, and seed to seed."""
    names = list(correct)
    rng = np.random.default_rng(1)
    n_test = next(iter(correct.values())).shape[1]
    halves = []
    for _ in range(n_draws):
        perm = rng.permutation(n_test)
        a, b = perm[: n_test // 2], perm[n_test // 2 :]
        halves.append(_tau([correct[n][:, a].mean() for n in names], [correct[n][:, b].mean() for n in names]))
    out = {"split_half_tau_median": float(np.median(halves))}
    seeds = next(iter(correct.values())).shape[0]
    if seeds >= 2:
        out["seed_to_seed_tau"] = float(
            np.mean(
                [
                    _tau([correct[n][i].mean() for n in names], [correct[n][j].mean() for n in names])
                    for i in range(seeds)
                    for j in range(i + 1, seeds)
                ]
            )
        )
    return out


def report(truth: str, scores: dict, correct: dict, per_seed: dict | None, n_boot: int) -> tuple[dict, dict]:
    """Print the per-candidate table and the taus against one ground truth; return (taus, ceilings)."""
    n_test = next(iter(correct.values())).shape[1]
    print(f"\n## ground truth: {truth} test accuracy ({n_test} test images)")
    print(f"\n| backbone | {' | '.join(ESTIMATORS)} | test accuracy |")
    print("|---|" + "---:|" * (len(ESTIMATORS) + 1))
    for c, row in scores.items():
        cells = ["-" if row[e] is None else f"{row[e]:.4f}" for e in ESTIMATORS]
        seeds = f" ({per_seed[c]})" if per_seed and "/" in per_seed[c] else ""
        print(f"| {c} | {' | '.join(cells)} | {correct[c].mean():.4f}{seeds} |")
    taus = taus_with_noise(scores, correct, n_boot)
    ceil = ceilings(correct, n_boot)
    print("\n| estimator | tau (5 candidates) | 90% paired-bootstrap interval | tau (4 pretrained) |")
    print("|---|---:|---:|---:|")
    for e, t in taus.items():
        print(f"| {e} | {t['tau']:+.2f} | [{t['boot_5']:+.2f}, {t['boot_95']:+.2f}] | {t['tau_pretrained']:+.2f} |")
    print("noise ceiling of the measured ranking: " + ", ".join(f"{k} {v:+.2f}" for k, v in ceil.items()), flush=True)
    return taus, ceil


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="fashion-mnist,elpv")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=1, help="training seeds per candidate (same split)")
    ap.add_argument("--test-per-class", type=int, default=500, help="Fashion-MNIST test images per class")
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-rank"), help="results (and resume) folder")
    args = ap.parse_args()
    os.environ["HEADSTART_CACHE_DIR"] = tempfile.mkdtemp(prefix="headstart-bench-rank-cache-")

    from headstart._runtime import tune_malloc

    tune_malloc()
    from headstart.transferability.features import parse_candidates
    from headstart.transferability.rank import rank_backbones

    summary = []
    for name in args.datasets.split(","):
        cfg, data = dataset(name, args.epochs, args.test_per_class)
        sizes = {k: len(v) for k, v in data[1].items()}
        print(f"\n# {name}: split sizes {sizes}, {args.epochs} epochs, {args.seeds} seed(s)", flush=True)
        path = args.out / f"{name}.json"
        saved = json.loads(path.read_text()) if path.is_file() else {}
        if saved.get("sizes", sizes) != sizes:
            raise SystemExit(f"{path} holds results for other splits {saved['sizes']}; pass another --out")
        saved["sizes"] = sizes
        candidates = parse_candidates(CANDIDATES, "image")
        if "rank" not in saved:
            t = time.perf_counter()
            rows = rank_backbones(cfg, candidates, data)
            saved["rank"] = {"seconds": time.perf_counter() - t, "rows": [r.to_dict() for r in rows]}
            _save(path, saved)
        save = functools.partial(_save, path, saved)
        runs = train_all(cfg, data, candidates, args.seeds, save, saved.setdefault("runs", {}))
        _save(path, saved)
        scores = {r["backbone"]: r for r in saved["rank"]["rows"]}
        correct = {c: np.array([runs[f"{c}@{s}"]["correct"] for s in range(args.seeds)]) for c in scores}
        train_seconds = sum(runs[f"{c}@0"]["seconds"] for c in scores)
        rank_seconds = saved["rank"]["seconds"]
        per_seed = {c: "/".join(f"{runs[f'{c}@{s}']['accuracy']:.4f}" for s in range(args.seeds)) for c in scores}
        taus, ceil = report(f"fine-tuned ({args.seeds} seed(s))", scores, correct, per_seed, args.bootstrap)
        probes = probe_all(cfg, data, candidates, saved.setdefault("probe", {}))
        _save(path, saved)
        probe_correct = {c: np.array([probes[c]["correct"]]) for c in scores}
        p_taus, p_ceil = report("linear probe", scores, probe_correct, None, args.bootstrap)
        speedup = train_seconds / rank_seconds
        print(f"ranking {rank_seconds:.0f} s vs training all once {train_seconds:.0f} s: {speedup:.1f}x faster")
        saved["summary"] = {
            "finetune": {"taus": taus, "ceilings": ceil},
            "probe": {"taus": p_taus, "ceilings": p_ceil},
            "rank_s": rank_seconds,
            "train_s": train_seconds,
        }
        _save(path, saved)
        summary.append((name, "fine-tuned", taus, ceil, rank_seconds, train_seconds))
        summary.append((name, "linear probe", p_taus, p_ceil, rank_seconds, train_seconds))
    head = " | ".join(f"tau {e}" for e in ESTIMATORS)
    print(f"\n| dataset | measured by | {head} | noise ceiling | rank s | train s | speed-up |")
    print("|---|---|" + "---:|" * (len(ESTIMATORS) + 4))
    for name, truth, taus, ceil, rs, ts in summary:
        cells = " | ".join(f"{taus[e]['tau']:+.2f}" for e in ESTIMATORS)
        noise = min(ceil.values())
        print(f"| {name} | {truth} | {cells} | {noise:+.2f} | {rs:.0f} | {ts:.0f} | {ts / rs:.1f}x |")


if __name__ == "__main__":
    main()
