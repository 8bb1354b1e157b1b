from pathlib import Path

import pytest

from headstart.config import RunConfig, apply_overrides, check_seed, load_config
from headstart.errors import HeadstartError
from tests.console import headstart, refused


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


def test_unknown_set_key_suggests_and_lists_valid_keys() -> None:
    with pytest.raises(HeadstartError, match=r"unknown --set key 'optim.lrr'; did you mean optim.lr\? known: data"):
        apply_overrides({}, ["optim.lrr=1"])


def test_unknown_yaml_key_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  epoch: 3\n")
    with pytest.raises(HeadstartError, match=r"unknown config key 'train.epoch'; did you mean train.epochs\? known: "):
        load_config(f)
    f.write_text("trian:\n  epochs: 3\nextra: 1\n")
    with pytest.raises(HeadstartError) as err:
        load_config(f)
    message = "unknown config keys extra, trian (did you mean train?); known: data, task, preprocess"
    assert str(err.value).startswith(message)


def test_yaml_numbers_in_scientific_notation_are_floats(tmp_path: Path) -> None:
    """PyYAML reads 1e-3 (no dot) as a string; float fields take it, in a file as with --set."""
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 1e-3\n  weight_decay: 5E-2\nstrategy:\n  probe_cs: [1e-2, 1]\n")
    cfg = load_config(f)
    assert cfg.optim.lr == 1e-3 and cfg.optim.weight_decay == 0.05 and cfg.strategy.probe_cs == [0.01, 1.0]
    assert all(isinstance(v, float) for v in (cfg.optim.lr, cfg.optim.weight_decay, *cfg.strategy.probe_cs))
    f.write_text("optim:\n  lr: fast\n")
    with pytest.raises(HeadstartError, match="optim.lr must be of type float, got 'fast'"):
        load_config(f)
    with pytest.raises(HeadstartError, match="train.epochs must be of type int, got '1e3'"):
        load_config(None, ["train.epochs=1e3"])


def test_text_fields_stay_text() -> None:
    """--set keeps what was typed for text fields; typed values (flags) go in as they are."""
    cfg = load_config(None, ["data.source=007", "model.backbone=yes", "eval.threshold=f1"])
    assert cfg.data.source == "007" and cfg.model.backbone == "yes" and cfg.eval.threshold == "f1"
    assert load_config(None, ["model.weights=null"]).model.weights is None
    typed = load_config(None, ["data.source=a", "train.epochs=3"], {"data.source": "yes", "train.seed": 7})
    assert typed.data.source == "yes" and typed.train.seed == 7 and typed.train.epochs == 3


def test_yaml_booleans_and_numbers_in_text_fields_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("data:\n  source: yes\n")
    with pytest.raises(HeadstartError) as err:
        load_config(f)
    assert str(err.value).startswith("data.source must be text, got True (YAML reads yes/no/on/off as true/false")
    assert "put the value in quotes as you mean it, e.g. source: 'yes' or '007'" in str(err.value)
    f.write_text("data:\n  source: '007'\n")
    assert load_config(f).data.source == "007"


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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.seed=-5", "data.seed=-5 is out of range; seeds (--seed, data.seed, train.seed) must be 0..4294967295"),
        ("train.seed=4294967296", "train.seed=4294967296 is out of range"),
        ("train.seed=100000000000000000000", "train.seed=100000000000000000000 is out of range"),
        ("train.seed=1e20", "train.seed must be of type int, got '1e20'"),
    ],
)
def test_seeds_outside_numpys_range_are_refused(override: str, message: str) -> None:
    with pytest.raises(HeadstartError) as err:
        load_config(None, [override])
    assert message in str(err.value)


def test_seed_range_covers_every_repeat() -> None:
    assert load_config(None, ["data.seed=4294967295", "train.seed=0"]).data.seed == 2**32 - 1  # the largest seed
    check_seed("train.seed", 2**32 - 3, count=3)  # seeds ..., 2**32 - 1: all valid
    with pytest.raises(HeadstartError) as err:
        check_seed("train.seed", 2**32 - 2, count=3)
    assert str(err.value) == (
        "--seeds 3 from train.seed=4294967294 runs seeds up to 4294967296, past numpy's limit 4294967295; "
        "use a seed in 0..4294967293 or fewer --seeds"
    )


def test_bad_seeds_on_the_command_line(tmp_path: Path) -> None:
    """Refused before any data is read: `--seed -1` by the config, `--seed 1e20` by typer (not an integer)."""
    negative = headstart("train", "builtin:elpv", "--seed", "-1", "--out", str(tmp_path / "a"))
    refused(negative, "data.seed=-1 is out of range", "must be 0..4294967295")
    huge = headstart("train", "builtin:elpv", "--seed", "1e20", "--out", str(tmp_path / "b"))
    assert huge.returncode == 2 and "Invalid value for '--seed'" in huge.stderr, huge.stderr
    via_set = headstart("train", "builtin:elpv", "--set", "data.seed=-5", "--out", str(tmp_path / "c"))
    refused(via_set, "data.seed=-5 is out of range")
    assert not any(tmp_path.iterdir())  # nothing written
