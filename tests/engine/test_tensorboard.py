import dataclasses
from pathlib import Path

import pytest

from headstart import runner
from headstart.config import RunConfig


def _scalars(folder: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.parametrize(("name", "epochs"), [("linear-probe", 1), ("progressive", 2)])
def test_tensorboard_event_files_hold_the_history(
    tiny_config: RunConfig, tmp_path: Path, name: str, epochs: int
) -> None:
    cfg = dataclasses.replace(
        tiny_config,
        strategy=dataclasses.replace(tiny_config.strategy, name=name),
        train=dataclasses.replace(tiny_config.train, log="tensorboard", epochs=epochs),
    )
    summary = runner.train(cfg, tmp_path / name)
    scalars = _scalars(summary.out / "tb")
    assert len(scalars["val_accuracy"]) == (1 if name == "linear-probe" else epochs)
    if name == "progressive":
        assert "lr/head" in scalars and len(scalars["train_loss"]) == epochs
