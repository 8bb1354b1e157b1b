"""Seeds and comparisons: aggregation arithmetic, and a real multi-seed run on the ELPV subset."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from headstart import experiments
from headstart.config import RunConfig
from headstart.report.verdict import verdict
from headstart.runner import RunSummary


def _summary(acc: float, f1: float) -> RunSummary:
    metrics = {"accuracy": acc, "macro_f1": f1, "roc_auc": None, "n": 100}
    return RunSummary(Path("runs/x"), "finetune", metrics, 1.0, 10, 0, None)


def test_aggregate_mean_std_and_t_interval() -> None:
    out = experiments.aggregate([_summary(0.80, 0.7), _summary(0.84, 0.8), _summary(0.82, 0.75)])
    assert out["seeds"] == 3 and out["accuracy"] == pytest.approx(0.82)
    assert out["accuracy_std"] == pytest.approx(np.std([0.80, 0.84, 0.82], ddof=1))
    half = stats.t.ppf(0.975, 2) * out["accuracy_std"] / np.sqrt(3)  # t(0.975, 2 dof) = 4.303
    assert out["ci95"]["accuracy"] == pytest.approx([0.82 - half, 0.82 + half])
    assert out["roc_auc"] is None and "roc_auc" not in out["ci95"]


def test_t_interval_beyond_ten_degrees_of_freedom() -> None:
    """16 seeds (15 degrees of freedom): Student's t from scipy (2.131), not the normal 1.96."""
    accs = [0.80 + 0.004 * i for i in range(16)]
    out = experiments.aggregate([_summary(a, 0.5) for a in accs])
    half = stats.t.ppf(0.975, 15) * np.std(accs, ddof=1) / 4
    assert out["ci95"]["accuracy"] == pytest.approx([np.mean(accs) - half, np.mean(accs) + half], rel=1e-12)
    assert stats.t.ppf(0.975, 15) == pytest.approx(2.1314, abs=1e-4)


def test_seed_config_moves_split_and_init(tiny_config: RunConfig) -> None:
    cfg = experiments.seed_config(tiny_config, 7)
    assert cfg.data.seed == 7 and cfg.train.seed == 7 and cfg.strategy == tiny_config.strategy


@pytest.mark.slow
def test_compare_with_seeds_writes_one_run_per_strategy_and_seed(tiny_config: RunConfig, tmp_path: Path) -> None:
    cfg = dataclasses.replace(tiny_config, eval=dataclasses.replace(tiny_config.eval, n_boot=200))
    result = experiments.compare(cfg, ["linear-probe", "scratch"], tmp_path, seeds=2)
    assert [r["strategy"] for r in result.rows] == ["linear-probe", "scratch"]
    for name in ("linear-probe", "scratch"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["seed-0", "seed-1"]
        splits = [json.loads((tmp_path / name / f"seed-{s}" / "splits.json").read_text())["test"] for s in (0, 1)]
        assert splits[0] != splits[1]  # each seed draws its own split
    row = result.rows[0]
    assert row["seeds"] == 2 and row["accuracy_std"] is not None and "accuracy" in row["ci95"]
    lp, scratch = (r["macro_f1"] for r in result.rows)  # the verdict reads the seed means, and says so
    assert result.verdict == verdict(result.rows) and f"({lp:.3f} vs {scratch:.3f})" in result.verdict


def test_ctrl_c_during_a_comparison_names_the_command_that_continues_it(
    tiny_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headstart import runner
    from headstart.errors import RunInterrupted

    def interrupted(*args: object, **kwargs: object) -> RunSummary:
        raise RunInterrupted("interrupted; Continue with: headstart train --resume x")

    monkeypatch.setattr(runner, "train", interrupted)
    with pytest.raises(RunInterrupted) as caught:
        experiments.compare(tiny_config, ["finetune"], tmp_path / "cmp", resume_hint="`headstart compare D --resume`")
    message = str(caught.value)
    assert "interrupted during" in message and "before its first checkpoint" in message
    assert message.endswith("Continue the comparison with: `headstart compare D --resume`")
    assert "headstart train --resume" not in message


def test_config_differences_name_every_changed_setting() -> None:
    from headstart.continuation import config_differences, data_differences

    saved = {"train": {"epochs": 3, "seed": 0}, "strategy": {"name": "finetune"}}
    now = {"train": {"epochs": 3, "seed": 1}, "strategy": {"name": "finetune", "adabn": True}}
    assert config_differences(saved, now) == ["strategy.adabn unset then, true now", "train.seed 0 then, 1 now"]
    same = {"examples": "a", "splits": "b", "classes": ["x", "y"], "n": 10, "split_sizes": {"train": 6}}
    assert data_differences(same, same) == []
    assert data_differences({**same, "splits": "c", "split_sizes": {"train": 5}}, same) == [
        "the splits: {'train': 5} then, {'train': 6} now"
    ]
    assert "not recorded" in data_differences(None, same)[0]


def test_a_run_of_an_older_headstart_is_read_with_todays_defaults_or_trained_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from headstart.continuation import inspect_sub_run

    config = RunConfig().to_dict()
    identity = {"examples": "a", "splits": "b", "classes": ["x", "y"], "n": 10, "split_sizes": {"train": 6}}
    folder = tmp_path / "finetune"
    folder.mkdir()
    older = json.loads(json.dumps(config))
    del older["train"]["seed"]  # a setting added since that run was written; its default keeps the behaviour
    (folder / "headstart.json").write_text(json.dumps({"config": older, "data": {"identity": identity}}))
    assert inspect_sub_run(folder, config, identity, tmp_path).state == "finished"
    (folder / "headstart.json").write_text(json.dumps({"config": config, "data": {}}))  # no data recorded
    assert inspect_sub_run(folder, config, identity, tmp_path).state == "new"
    assert "older headstart that did not record its data" in caplog.text
