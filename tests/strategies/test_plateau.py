"""``plateau``: its head starts from the probe's, the plateau rule (checks inside epochs, relative min_delta,
several groups at once) acts as set, and ``plan`` shows the rule and, after a run, when each group unfroze."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from headstart import runner
from headstart.artifacts import load_run
from headstart.backbones.build import classifier
from headstart.config import RunConfig
from headstart.engine.train import Trainer
from headstart.strategies.progressive import plateau_rule
from tests.console import headstart, refused


def _with(cfg: RunConfig, name: str, epochs: int = 1, **strategy: Any) -> RunConfig:
    return dataclasses.replace(
        cfg,
        strategy=dataclasses.replace(cfg.strategy, name=name, **strategy),
        train=dataclasses.replace(cfg.train, epochs=epochs),
    )


def test_the_training_starts_from_the_probe_head(
    tiny_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = runner.train(_with(tiny_config, "linear-probe"), tmp_path / "probe")
    probe_head = classifier(load_run(probe.out).model)
    start: dict[str, torch.Tensor] = {}
    fit = Trainer.fit

    def record_start(self: Trainer) -> Any:
        start.update({k: v.detach().clone() for k, v in classifier(self.model).state_dict().items()})
        return fit(self)

    monkeypatch.setattr(Trainer, "fit", record_start)
    run = runner.train(_with(tiny_config, "plateau"), tmp_path / "plateau")
    temperature = json.loads((run.out / "headstart.json").read_text())["lp_ft_temperature"]
    assert temperature > 0
    for name, value in probe_head.state_dict().items():  # the probe's head, divided by its temperature
        torch.testing.assert_close(start[name] * temperature, value, rtol=1e-4, atol=1e-5)


def test_a_plateau_inside_an_epoch_unfreezes_several_groups_and_the_plan_says_when(
    tiny_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation returns the same value at every check: with patience 2 and a check before the first step and
    after every step, the first plateau comes at the third check (step 2), the next two checks later (step 4);
    2 groups unfreeze each time."""
    validate = Trainer._validate
    first: dict[str, float] = {}

    def flat(self: Trainer) -> dict[str, float]:
        if not first:
            first.update(validate(self))
        return dict(first)

    monkeypatch.setattr(Trainer, "_validate", flat)
    cfg = _with(tiny_config, "plateau", epochs=4, patience=2, eval_every=1, unfreeze_groups=2, min_delta=0.01)
    run = runner.train(cfg, tmp_path / "run")
    history = [json.loads(line) for line in (run.out / "history.jsonl").read_text().splitlines()]
    events = [e for h in history for e in h["events"]]
    assert events[:4] == [
        "unfroze block.6 (plateau at step 2)",
        "unfroze block.5 (plateau at step 2)",
        "unfroze block.4 (plateau at step 4)",
        "unfroze block.3 (plateau at step 4)",
    ]
    plan = {row["group"]: row["trainable_from"] for row in json.loads((run.out / "headstart.json").read_text())["plan"]}
    per_epoch = history[0]["trainable_groups"]
    assert plan["head"] == "1" and plan["block.6"] == f"{1 if 'block.6' in per_epoch else 2} (on plateau)"
    text = (run.out / "plan.md").read_text()
    assert "Plateau rule: check validation every 1 steps and at epoch ends; 2 checks without a 1% gain" in text


def test_the_default_rule_reaches_the_whole_backbone_within_a_short_run() -> None:
    for val_per_train, epochs, patience in ((0.25, 5, 1), (1.0, 5, 1), (0.2, 3, 2), (1.0, 20, 1)):
        rule = plateau_rule(8, 22, epochs, patience, 0.01, val_per_train=val_per_train)
        checks = epochs * -(-22 // rule.eval_every)
        assert rule.groups * ((checks // 2) // patience) >= 8, (val_per_train, epochs, rule)
        assert 1 <= -(-22 // rule.eval_every) <= 4  # at most 4 checks per epoch
    assert plateau_rule(8, 22, 5, 2, 0.0, eval_every=22, groups=1).groups == 1  # explicit settings win
    assert plateau_rule(8, 22, 5, 1, 0.0, val_per_train=1.0).eval_every == 22  # a large val set: once an epoch


def test_plan_shows_the_rule_and_bad_settings_are_refused(elpv_folder: Path) -> None:
    result = headstart("plan", str(elpv_folder), "--strategy", "plateau", "--backbone", "mobilenet_v2")
    assert result.returncode == 0, result.stderr
    shown = " ".join(result.stdout.split())
    assert "on plateau" in shown and "Plateau rule: check validation every" in shown
    bad = headstart("plan", str(elpv_folder), "--strategy", "plateau", "--set", "strategy.min_delta=-0.1")
    refused(bad, "strategy.min_delta must be >= 0")
    refused(headstart("plan", str(elpv_folder), "--set", "strategy.eval_every=0"), "strategy.eval_every must be >= 1")
