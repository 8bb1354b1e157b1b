"""A damaged checkpoint is a refusal that says how to start over, never a traceback nor a folder stuck for good."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from headstart import runner
from headstart._permissions import umask
from headstart.config import load_config
from headstart.engine.checkpoint import load_checkpoint
from headstart.engine.train import Trainer
from headstart.errors import HeadstartError
from tests.console import headstart, refused


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory, elpv_folder: Path) -> Path:
    """A real mobilenet_v2 finetune run killed right after its first epoch's checkpoint (epoch 1 of 2)."""

    def killed(self: Trainer, path: Path) -> None:
        raise Killed(f"killed after epoch {self.epoch}")

    overrides = [f"data.source={elpv_folder}", "model.backbone=mobilenet_v2", "strategy.name=finetune"]
    cfg = load_config(None, [*overrides, "train.epochs=2", "train.batch_size=8"])
    out = tmp_path_factory.mktemp("runs") / "cut"
    with pytest.MonkeyPatch.context() as patch, pytest.raises(Killed):
        patch.setattr(Trainer, "on_checkpoint", killed)
        runner.train(cfg, out)
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def test_intact_checkpoint_loads_and_is_readable_by_the_team(interrupted: Path) -> None:
    ckpt = load_checkpoint(interrupted)
    assert ckpt.state["epoch"] == 1 and ckpt.best is not None and len(ckpt.state["history"]) == 1
    folder = interrupted / "checkpoint"
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask()
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert set(modes) == {"model.safetensors", "best.safetensors", "optimizer.pt", "rng.safetensors", "state.json"}
    assert set(modes.values()) == {0o666 & ~umask()}


def _cut(name: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])

    return damage


def _state(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        state = json.loads((folder / "state.json").read_text())
        edit(state)
        (folder / "state.json").write_text(json.dumps(state))

    return damage


def _rng_without_numpy(folder: Path) -> None:
    rng = load_file(str(folder / "rng.safetensors"))
    save_file({k: v for k, v in rng.items() if not k.startswith("numpy")}, str(folder / "rng.safetensors"))


DAMAGE = [
    (_cut("state.json"), "state.json is not valid JSON"),
    (_state(lambda s: s.pop("epoch")), "state.json lacks the key(s) epoch"),
    (_state(lambda s: s.update(step="12")), 'state.json step="12" has the wrong type'),
    (_state(lambda s: s.update(history=None)), "state.json history=null has the wrong type"),
    (_state(lambda s: s["config"]["train"].update(epochs=-1)), "invalid config (train.epochs=-1 must be >= 1)"),
    (_state(lambda s: s.update(data={"n": 28})), 'state.json data={"n": 28} lacks the data identity'),
    (_cut("model.safetensors"), "model.safetensors cannot be read (Error while deserializing header"),
    (_cut("best.safetensors"), "best.safetensors cannot be read"),
    (_cut("optimizer.pt"), "optimizer.pt cannot be read"),
    (lambda f: torch.save([1, 2], f / "optimizer.pt"), "optimizer.pt holds no optimizer state"),
    (_rng_without_numpy, "rng.safetensors lacks the random state(s) numpy_keys, numpy_pos"),
]


@pytest.mark.parametrize(("damage", "problem"), DAMAGE, ids=[p[:40] for _, p in DAMAGE])
def test_damaged_checkpoint_says_how_to_start_over(
    interrupted: Path, tmp_path: Path, damage: Callable[[Path], None], problem: str
) -> None:
    run = _copy(interrupted, tmp_path)
    damage(run / "checkpoint")
    with pytest.raises(HeadstartError) as err:
        load_checkpoint(run)
    text = str(err.value)
    assert text.startswith(f"the training checkpoint in {run / 'checkpoint'} is damaged: ") and problem in text, text
    assert f"delete {run / 'checkpoint'} (or the whole folder {run}) and train again" in text


def test_resume_of_a_damaged_checkpoint_and_starting_over(interrupted: Path, elpv_folder: Path, tmp_path: Path) -> None:
    """`train --resume` explains the damage; `train --out` still refuses to overwrite; the advice then works."""
    run = _copy(interrupted, tmp_path)
    _cut("state.json")(run / "checkpoint")
    resumed = headstart("train", "--resume", str(run))
    refused(resumed, "is damaged: state.json is not valid JSON", f"delete {run / 'checkpoint'}", "train again")
    args = ["train", str(elpv_folder), "--backbone", "mobilenet_v2", "--strategy", "linear-probe", "--out", str(run)]
    refused(headstart(*args, "--set", "train.batch_size=8"), "interrupted run", f"--resume {run}")
    shutil.rmtree(run / "checkpoint")  # what the message says to do
    again = headstart(*args, "--set", "train.batch_size=8")
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "headstart.json").read_text())["strategy"] == "linear-probe"
