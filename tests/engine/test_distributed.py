"""Distributed training with torchrun's environment: 2 CPU processes, Gloo, on real ELPV cells.

A 2-process run must equal a single-process run with the same global batch (same batches, mean
gradient over the global batch), including after a phase change (progressive rebuilds the DDP
wrapper) and after an interruption and resume.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from headstart import runner
from headstart.artifacts import load_run
from headstart.config import RunConfig
from headstart.engine.distributed import ShardedBatchSampler, gather_rows, shard

WORLD = 2


class Killed(Exception):
    pass


def test_shards_of_a_global_batch_are_its_contiguous_slices() -> None:
    batches = [[5, 3, 9, 1], [0, 2, 8, 4], [7, 6]]
    parts = [list(ShardedBatchSampler(batches, r, WORLD)) for r in range(WORLD)]
    assert parts[0] == [[5, 3], [0, 2], [7]] and parts[1] == [[9, 1], [8, 4], [6]]
    assert all(len(p) == len(batches) for p in parts)


def test_single_process_helpers_are_identities() -> None:
    index = np.array([4, 2, 7])
    np.testing.assert_array_equal(shard(index), index)
    rows = [np.ones((3, 2)), np.arange(3)]
    assert gather_rows(rows, index) == rows


def test_nproc_is_removed_from_the_command_line() -> None:
    from headstart.cli.app import _without_nproc

    argv = ["train", "D", "--nproc", "2", "--epochs", "1", "--nproc=3", "--out", "x"]
    assert _without_nproc(argv) == ["train", "D", "--epochs", "1", "--out", "x"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, port: int, cfg_dict: dict, out: str, kill_after: int, resume: bool) -> None:
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD)
    )
    torch.set_num_threads(1)
    from headstart.engine import distributed
    from headstart.engine.train import Trainer

    if kill_after:

        def hook(self: Trainer, path: Path) -> None:
            if self.epoch == kill_after:
                raise Killed(f"killed after epoch {kill_after}")

        Trainer.on_checkpoint = hook  # type: ignore[method-assign]
    try:
        distributed.setup("cpu")
        if resume:
            runner.resume(out)
        else:
            runner.train(RunConfig.from_dict(cfg_dict), out)
    finally:
        distributed.teardown()


def _spawn(cfg: RunConfig, out: Path, kill_after: int = 0, resume: bool = False) -> None:
    mp.spawn(_worker, args=(_free_port(), cfg.to_dict(), str(out), kill_after, resume), nprocs=WORLD, join=True)


def _predictions(run: Path) -> np.ndarray:
    import csv

    with (run / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    cols = [c for c in rows[0] if c.startswith("p_")]
    return np.array([[float(r[c]) for c in cols] for r in rows])


def _close(a: Path, b: Path) -> None:
    ma, mb = json.loads((a / "metrics.json").read_text()), json.loads((b / "metrics.json").read_text())
    assert ma["accuracy"] == mb["accuracy"] and ma["confusion_matrix"] == mb["confusion_matrix"]
    np.testing.assert_allclose(_predictions(a), _predictions(b), atol=5e-3)
    sa, sb = load_run(a).model.state_dict(), load_run(b).model.state_dict()
    for k in sa:  # relative too: the probe's logistic weights are large, and L-BFGS ends within its tolerance
        np.testing.assert_allclose(sa[k].float().numpy(), sb[k].float().numpy(), atol=5e-3, rtol=1e-2, err_msg=k)
    ha = [json.loads(x) for x in (a / "history.jsonl").read_text().splitlines()]
    hb = [json.loads(x) for x in (b / "history.jsonl").read_text().splitlines()]
    assert [h["events"] for h in ha] == [h["events"] for h in hb]
    np.testing.assert_allclose([h["train_loss"] for h in ha], [h["train_loss"] for h in hb], rtol=5e-3)


def _cache_some_rows(cfg: RunConfig) -> None:
    """Extract every third example of the run's data into the cache, as `rank` would have."""
    from headstart.backbones import backbone_identity, get_backbone
    from headstart.data import SkipLog
    from headstart.engine import extract_features, resolve_runtime
    from headstart.modalities import create_model, resolve_recipe

    images, _ = runner.prepare_data(cfg)
    spec = get_backbone(cfg.model.backbone)
    model, ckpt = create_model(spec)
    recipe = resolve_recipe(ckpt, cfg.preprocess)
    rows = np.arange(0, len(images), 3)
    fs = extract_features(
        model, images, recipe, resolve_runtime(cfg.train), backbone_identity(spec), 8, SkipLog(), rows=rows
    )
    assert fs.valid.sum() == len(rows)


@pytest.mark.slow
# partial: each rank caches its shard's frozen prefix (train.cache_frozen is on by default)
@pytest.mark.parametrize("name", ["finetune", "progressive", "linear-probe", "partial"])
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(
    tiny_config: RunConfig, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    cache = Path(os.environ["HEADSTART_CACHE_DIR"])
    # no dropout: its masks are drawn per rank, so with dropout runs agree in distribution only
    cfg = dataclasses.replace(
        tiny_config,
        model=dataclasses.replace(tiny_config.model, drop_rate=0.0),
        strategy=dataclasses.replace(tiny_config.strategy, name=name),
        train=dataclasses.replace(tiny_config.train, epochs=2, precision="fp32"),
    )
    single = runner.train(cfg, tmp_path / "single").out
    monkeypatch.setenv("HEADSTART_CACHE_DIR", str(tmp_path / "ddp-cache"))  # the workers extract afresh
    if name == "linear-probe":  # a third of the rows already cached: the two ranks extract the rest
        _cache_some_rows(cfg)
    _spawn(cfg, tmp_path / "ddp")
    assert (tmp_path / "ddp" / "report.html").is_file() and not (tmp_path / "ddp" / "checkpoint").exists()
    manifest = json.loads((tmp_path / "ddp" / "headstart.json").read_text())
    assert manifest["strategy"] == name
    _close(single, tmp_path / "ddp")
    if name == "linear-probe":  # features extracted in two shards, gathered into the same cache file
        from safetensors.numpy import load_file

        assert manifest["feature_cache_hit"] is False
        one, two = (sorted((d / "features").glob("*.safetensors")) for d in (cache, tmp_path / "ddp-cache"))
        assert [p.name for p in one] == [p.name for p in two] and len(one) == 1
        a, b = load_file(str(one[0])), load_file(str(two[0]))
        assert b["done"].all()
        np.testing.assert_array_equal(a["valid"], b["valid"])
        np.testing.assert_allclose(a["features"], b["features"], atol=1e-4)
    if name == "progressive":  # the phase change must have happened inside the distributed run
        events = [json.loads(x)["events"] for x in (tmp_path / "ddp" / "history.jsonl").read_text().splitlines()]
        assert any(e for e in events)


@pytest.mark.slow
def test_interrupted_distributed_run_resumes_to_the_same_model(tiny_config: RunConfig, tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        tiny_config,
        model=dataclasses.replace(tiny_config.model, drop_rate=0.0),
        strategy=dataclasses.replace(tiny_config.strategy, name="progressive"),
        train=dataclasses.replace(tiny_config.train, epochs=2, precision="fp32"),
    )
    single = runner.train(cfg, tmp_path / "single").out
    with pytest.raises(Exception, match="killed after epoch 1"):
        _spawn(cfg, tmp_path / "cut", kill_after=1)
    assert (tmp_path / "cut" / "checkpoint").is_dir() and not (tmp_path / "cut" / "headstart.json").exists()
    _spawn(cfg, tmp_path / "cut", resume=True)
    _close(single, tmp_path / "cut")


@pytest.mark.slow
def test_cli_nproc_runs_under_torchrun_and_only_rank_0_prints(elpv_folder: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "headstart", "train", str(elpv_folder), "--strategy", "finetune", "--epochs", "1"]
    cmd += ["--set", "train.batch_size=8", "--nproc", "2", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run written to") == 1  # rank 1 trains but stays quiet
    manifest = json.loads((out / "headstart.json").read_text())
    assert manifest["strategy"] == "finetune" and (out / "model.safetensors").is_file()
