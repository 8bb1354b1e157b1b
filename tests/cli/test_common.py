"""The shared CLI pieces: flags into the config as typed values, CSV rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from headstart.cli.common import build_config, flag_values, write_csv


def test_flags_are_typed_values_not_yaml() -> None:
    assert flag_values("yes", seed=7, epochs=None, backbone="007") == {
        "data.source": "yes",
        "model.backbone": "007",
        "data.seed": 7,
        "train.seed": 7,
    }


def test_build_config_keeps_text_as_typed_and_flags_win(tmp_path: Path) -> None:
    cfg = build_config("yes", None, ["train.epochs=2", "data.seed=3"], seed=11, epochs=None, strategy="finetune")
    assert cfg.data.source == "yes" and cfg.strategy.name == "finetune"
    assert cfg.train.epochs == 2 and cfg.data.seed == 11 and cfg.train.seed == 11
    assert build_config("007", None, None).data.source == "007"
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 3e-4\n")
    assert build_config("x", f, None).optim.lr == 3e-4


def test_write_csv(capsys: pytest.CaptureFixture[str]) -> None:
    write_csv([{"backbone": "a", "leep": None, "logme": 1.5}, {"backbone": "b,c", "leep": 0.25, "logme": -2.0}])
    assert capsys.readouterr().out == 'backbone,leep,logme\na,,1.5\n"b,c",0.25,-2.0\n'
    write_csv([])
    assert capsys.readouterr().out == ""
