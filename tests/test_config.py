from pathlib import Path

import pytest

from headstart.config import RunConfig, apply_overrides, load_config
from headstart.errors import HeadstartError


def test_defaults_round_trip_through_dict() -> None:
    cfg = RunConfig()
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_set_overrides_are_typed() -> None:
    cfg = load_config(
        None, ["preprocess.mean=[0.5,0.5,0.5]", "optim.lr=1e-3", "train.epochs=4", "preprocess.augment=true"]
    )
    assert cfg.preprocess.mean == [0.5, 0.5, 0.5]
    assert cfg.optim.lr == pytest.approx(1e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.train.epochs == 4 and cfg.preprocess.augment is True


def test_yaml_file_then_set_wins(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 0.01\ntrain:\n  epochs: 7\n")
    cfg = load_config(f, ["optim.lr=0.002"])
    assert cfg.optim.lr == pytest.approx(0.002) and cfg.train.epochs == 7


def test_unknown_set_key_lists_valid_keys() -> None:
    with pytest.raises(HeadstartError, match=r"unknown --set key 'optim.lrr'.*optim\.lr"):
        apply_overrides({}, ["optim.lrr=1"])


def test_unknown_yaml_key_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  epoch: 3\n")
    with pytest.raises(HeadstartError, match=r"unknown config key\(s\) train.epoch; valid keys: .*train.epochs"):
        load_config(f)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=0", "train.epochs"),
        ("preprocess.mean=[1,2]", "3 numbers"),
        ("strategy.bn=maybe", "frozen or train"),
        ("train.epochs=abc", "must be of type int"),
        ("optim.lr=2", "optim.lr"),
    ],
)
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(HeadstartError, match=message):
        load_config(None, [override])


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HeadstartError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
