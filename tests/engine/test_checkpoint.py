"""Resume: a run killed after any epoch (also right after an unfreeze) ends exactly like an uninterrupted one."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from headstart import runner
from headstart.artifacts import load_run
from headstart.config import RunConfig
from headstart.engine.checkpoint import load_checkpoint
from headstart.engine.train import Trainer
from headstart.errors import HeadstartError


class Killed(Exception):
    pass


def _cfg(cfg: RunConfig, name: str, epochs: int) -> RunConfig:
    return dataclasses.replace(
        cfg,
        strategy=dataclasses.replace(cfg.strategy, name=name, patience=1),
        train=dataclasses.replace(cfg.train, epochs=epochs),
    )


def _kill_after(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    def hook(self: Trainer, path: Path) -> None:
        if self.epoch == epoch:
            raise Killed(f"killed after epoch {epoch}")

    monkeypatch.setattr(Trainer, "on_checkpoint", hook)


@pytest.mark.parametrize(("name", "kill_after"), [("progressive", 1), ("plateau", 2), ("finetune", 1)])
def test_resumed_run_matches_uninterrupted(
    tiny_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, kill_after: int
) -> None:
    cfg = _cfg(tiny_config, name, epochs=3)
    full = runner.train(cfg, tmp_path / "full")

    _kill_after(monkeypatch, kill_after)
    with pytest.raises(Killed):
        runner.train(cfg, tmp_path / "cut")
    state = load_checkpoint(tmp_path / "cut").state
    assert state["epoch"] == kill_after and not (tmp_path / "cut" / "headstart.json").exists()
    monkeypatch.undo()

    resumed = runner.resume(tmp_path / "cut")
    assert resumed.metrics == full.metrics
    a, b = load_run(full.out).model.state_dict(), load_run(resumed.out).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ha = [json.loads(x) for x in (full.out / "history.jsonl").read_text().splitlines()]
    hb = [json.loads(x) for x in (resumed.out / "history.jsonl").read_text().splitlines()]
    assert [h["events"] for h in ha] == [h["events"] for h in hb]
    assert [h["val_loss"] for h in ha] == [h["val_loss"] for h in hb]
    assert not (resumed.out / "checkpoint").exists()


def test_kill_right_after_a_plateau_unfreeze(
    tiny_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation 'stalls' at every check (synthetic) and is checked after every step, so a group unfreezes
    inside every epoch; kill at the end of epoch 1, in the middle of the plateau phase, and resume."""
    from headstart.strategies import PlateauTrigger

    monkeypatch.setattr(PlateauTrigger, "update", lambda self, value: True)
    cfg = _cfg(tiny_config, "plateau", epochs=3)
    cfg = dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, eval_every=1, unfreeze_groups=1))
    full = runner.train(cfg, tmp_path / "full")
    _kill_after(monkeypatch, 1)
    with pytest.raises(Killed):
        runner.train(cfg, tmp_path / "cut")
    state = load_checkpoint(tmp_path / "cut").state
    events = state["history"][0]["events"]
    steps = state["step"]
    assert steps >= 2 and len(events) == steps + 1  # before the first step, then after each one
    assert len(state["trainable"]) == steps + 2  # the head, and one group per check
    assert events[:2] == ["unfroze block.6 (plateau at step 0)", "unfroze block.5 (plateau at step 1)"]
    monkeypatch.setattr(Trainer, "on_checkpoint", lambda self, path: None)
    resumed = runner.resume(tmp_path / "cut")
    assert resumed.metrics == full.metrics
    hist = [json.loads(x) for x in (resumed.out / "history.jsonl").read_text().splitlines()]
    full_hist = [json.loads(x) for x in (full.out / "history.jsonl").read_text().splitlines()]
    assert [h["trainable_groups"] for h in hist] == [h["trainable_groups"] for h in full_hist]


def test_interrupted_run_is_not_overwritten(
    tiny_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(tiny_config, "finetune", epochs=2)
    _kill_after(monkeypatch, 1)
    with pytest.raises(Killed):
        runner.train(cfg, tmp_path / "cut")
    monkeypatch.undo()
    with pytest.raises(HeadstartError, match="interrupted run; continue it with `headstart train --resume"):
        runner.train(cfg, tmp_path / "cut")


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HeadstartError, match="holds no training checkpoint"):
        runner.resume(tmp_path)


def test_resume_refuses_changed_data_but_not_touched_files(
    tiny_config: RunConfig, elpv_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import shutil

    data = shutil.copytree(elpv_folder, tmp_path / "cells")
    cfg = _cfg(tiny_config, "finetune", epochs=2)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, source=str(data)))
    _kill_after(monkeypatch, 1)
    with pytest.raises(Killed):
        runner.train(cfg, tmp_path / "cut")
    monkeypatch.undo()
    removed = sorted((data / "defective").iterdir())[0]
    kept = removed.read_bytes()
    removed.unlink()
    with pytest.raises(HeadstartError, match=r"data changed since the checkpoint: 28 examples then, 27 now"):
        runner.resume(tmp_path / "cut")
    removed.write_bytes(kept)
    for path in data.rglob("*.png"):  # copied elsewhere / touched: same examples, so the run resumes
        os.utime(path, (1e9, 1e9))
    resumed = runner.resume(tmp_path / "cut")
    assert len((resumed.out / "history.jsonl").read_text().splitlines()) == 2
    assert (resumed.out / "headstart.json").is_file() and not (resumed.out / "checkpoint").exists()
