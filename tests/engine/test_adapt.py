"""Domain adaptation: the gradient-reversal layer, the DANN critic and CORAL loss, AdaBN, and runs with a target
domain (labelled and not) that resume to the same model, on real ELPV cells."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from headstart import runner
from headstart.artifacts import load_run
from headstart.config import RunConfig
from headstart.data.images import ImageSet
from headstart.data.target import UNLABELLED, Target, load_target
from headstart.engine.adapt import DomainAligner, adabn, coral_loss, dann_ramp, reverse_gradient
from headstart.engine.checkpoint import load_checkpoint
from headstart.engine.runtime import resolve_runtime
from headstart.engine.train import Trainer
from headstart.errors import HeadstartError
from headstart.tasks import get_task
from tests.conftest import write_class_folder


@pytest.fixture(scope="module")
def target_folder(tmp_path_factory: pytest.TempPathFactory, elpv: ImageSet) -> Path:
    """Other real ELPV cells (6 per class), as a labelled class folder."""
    return write_class_folder(tmp_path_factory.mktemp("target"), elpv, per_class=6, seed=7)


@pytest.fixture(scope="module")
def unlabelled_folder(target_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same cells in one folder, without class subfolders."""
    flat = tmp_path_factory.mktemp("flat")
    for i, path in enumerate(sorted(target_folder.rglob("*.png"))):
        (flat / f"img{i}.png").write_bytes(path.read_bytes())
    return flat


def _cfg(cfg: RunConfig, strategy: str, target: Path | None, epochs: int = 1, **strategy_fields: object) -> RunConfig:
    return dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, target=str(target) if target else None),
        strategy=dataclasses.replace(cfg.strategy, name=strategy, **strategy_fields),  # type: ignore[arg-type]
        train=dataclasses.replace(cfg.train, epochs=epochs),
    )


def test_gradient_reversal_flips_and_scales_the_gradient() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    (reverse_gradient(x, 0.3) * w).sum().backward()
    assert x.grad is not None and torch.allclose(x.grad, -0.3 * w)
    assert torch.equal(reverse_gradient(x, 0.3), x)  # identity forward
    assert dann_ramp(0.0) == 0.0 and 0.99 < dann_ramp(1.0) <= 1.0


def test_coral_loss_is_zero_for_equal_statistics_and_grows_with_shift() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 8, generator=g)
    assert float(coral_loss(a, a)) == pytest.approx(0.0, abs=1e-7)
    near, far = coral_loss(a, a + 0.1), coral_loss(a, 3 * a + 1)
    assert 0 < float(near) < float(far)
    b = (a + 1).requires_grad_(True)
    coral_loss(a, b).backward()
    assert b.grad is not None and b.grad.abs().sum() > 0


def _real_features(elpv: ImageSet) -> tuple[torch.Tensor, torch.Tensor, object]:
    """Pooled pretrained features of real mono and poly cells (the two ELPV domains)."""
    from headstart.backbones import get_backbone, resolve_recipe
    from headstart.config import PreprocessConfig
    from headstart.data.pipeline import eval_loader
    from headstart.modalities import create_model

    model, ckpt = create_model(get_backbone("efficientnet_lite0"), 2)
    recipe = resolve_recipe(ckpt, PreprocessConfig(input_size=96))
    kinds = elpv.meta["cell_type"]
    out = []
    for kind in ("mono", "poly"):
        rows = np.flatnonzero(kinds == kind)[:48]
        batch = next(iter(eval_loader(elpv, rows, recipe, 48)))
        with torch.no_grad():
            out.append(model.eval().forward_head(model.forward_features(batch.x), pre_logits=True))
    return out[0], out[1], recipe


def test_dann_critic_learns_the_domains_and_hands_the_backbone_the_reversed_gradient(
    elpv: ImageSet, tiny_config: RunConfig
) -> None:
    mono, poly, recipe = _real_features(elpv)
    cfg = _cfg(tiny_config, "dann", None)
    target = Target(elpv.subset(np.arange(8)), labelled=False)
    model = torch.nn.Sequential()
    model.get_classifier = lambda: torch.nn.Linear(mono.shape[1], 2)  # type: ignore[attr-defined]
    aligner = DomainAligner("dann", target, model, recipe, cfg, resolve_runtime(cfg.train))
    assert aligner.critic is not None
    opt = torch.optim.Adam(aligner.critic.parameters(), lr=1e-3)
    losses = []
    for _ in range(60):  # the critic alone (weight of the reversal irrelevant to it)
        loss = aligner.loss(mono, poly, progress=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[0] > 0.5 and losses[-1] < 0.5 * losses[0]  # mono vs poly is learnable (PAD ~1.5)

    fs, ft = mono.clone().requires_grad_(True), poly.clone().requires_grad_(True)
    aligner.critic.eval()  # no dropout: the two passes see the same network
    aligner.loss(fs, ft, progress=0.5).backward()
    reversed_grad = fs.grad.clone()  # type: ignore[union-attr]
    fs.grad = None
    plain = aligner.critic(torch.cat([fs, ft])).squeeze(1)
    domain = torch.cat([torch.ones(len(fs)), torch.zeros(len(ft))])
    torch.nn.functional.binary_cross_entropy_with_logits(plain, domain).backward()
    coeff = aligner.weight * dann_ramp(0.5)
    assert torch.allclose(reversed_grad, -coeff * fs.grad, atol=1e-7)  # type: ignore[operator]


def test_adabn_changes_only_batchnorm_statistics(elpv: ImageSet, tiny_config: RunConfig) -> None:
    from headstart.backbones import get_backbone, resolve_recipe
    from headstart.data.loader import SkipLog
    from headstart.modalities import create_model

    model, ckpt = create_model(get_backbone("efficientnet_lite0"), 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = _cfg(tiny_config, "adabn", None)
    recipe = resolve_recipe(ckpt, dataclasses.replace(cfg.preprocess, input_size=96))
    target = Target(elpv.subset(np.flatnonzero(elpv.meta["cell_type"] == "poly")[:40]), labelled=False)
    layers = adabn(model, target, recipe, cfg, resolve_runtime(cfg.train), SkipLog())
    after = model.state_dict()
    stats = [k for k in before if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert layers > 10 and len(stats) == 3 * layers
    assert all(not torch.equal(before[k], after[k]) for k in stats if k.endswith("running_mean"))
    assert all(torch.equal(before[k], after[k]) for k in before if k not in stats)
    assert not model.training and all(m.momentum == 0.1 for m in model.modules() if hasattr(m, "running_var"))


def test_load_target_labelled_unlabelled_and_refused(
    tiny_config: RunConfig, target_folder: Path, unlabelled_folder: Path, tweets_csv: Path
) -> None:
    task = get_task("classification")
    source, _ = runner.prepare_data(tiny_config)
    labelled = load_target(_cfg(tiny_config, "dann", target_folder), source, task)
    assert labelled is not None and labelled.labelled and labelled.data.labels == source.labels
    plain = load_target(_cfg(tiny_config, "dann", unlabelled_folder), source, task)
    assert plain is not None and not plain.labelled and plain.data.labels == [UNLABELLED] and len(plain) == 12
    with pytest.raises(HeadstartError, match="holds text data but the training data"):
        load_target(_cfg(tiny_config, "dann", tweets_csv), source, task)
    assert load_target(tiny_config, source, task) is None


def test_dann_run_with_a_labelled_target_writes_target_metrics(
    tiny_config: RunConfig, target_folder: Path, tmp_path: Path
) -> None:
    summary = runner.train(_cfg(tiny_config, "dann", target_folder, epochs=2), tmp_path / "dann")
    metrics = json.loads((summary.out / "target_metrics.json").read_text())
    assert set(metrics) == set(summary.metrics) and metrics["n"] == 12 and metrics == summary.target_metrics
    history = [json.loads(line) for line in (summary.out / "history.jsonl").read_text().splitlines()]
    assert all("target_accuracy" in h and "domain_loss" in h for h in history)
    assert history[0]["reversal"] < history[1]["reversal"]  # the ramp
    manifest = json.loads((summary.out / "headstart.json").read_text())
    assert manifest["target"]["source"] == str(target_folder) and manifest["target"]["labelled"]
    saved = load_file(str(summary.out / "model.safetensors"))
    assert not any("critic" in k for k in saved)  # an ordinary model: the domain classifier is not saved


def test_coral_and_adabn_runs_on_an_unlabelled_target(
    tiny_config: RunConfig, unlabelled_folder: Path, tmp_path: Path
) -> None:
    coral = runner.train(_cfg(tiny_config, "coral", unlabelled_folder), tmp_path / "coral")
    assert coral.target_metrics is None and not (coral.out / "target_metrics.json").exists()
    history = json.loads((coral.out / "history.jsonl").read_text().splitlines()[0])
    assert history["coral"] > 0 and "target_accuracy" not in history
    cfg = _cfg(tiny_config, "partial", unlabelled_folder, adabn=True)
    run = runner.train(cfg, tmp_path / "adabn")
    manifest = json.loads((run.out / "headstart.json").read_text())
    assert manifest["adabn_layers"] > 10 and manifest["target"]["labelled"] is False


class Killed(Exception):
    pass


@pytest.mark.parametrize("strategy", ["dann", "adabn"])
def test_adaptation_run_resumes_to_the_same_model(
    tiny_config: RunConfig, target_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    cfg = _cfg(tiny_config, strategy, target_folder, epochs=2)
    full = runner.train(cfg, tmp_path / "full")

    def kill(self: Trainer, path: Path) -> None:
        if self.epoch == 1:
            raise Killed

    monkeypatch.setattr(Trainer, "on_checkpoint", kill)
    with pytest.raises(Killed):
        runner.train(cfg, tmp_path / "cut")
    if strategy == "dann":
        assert any(k.startswith("_domain_critic.") for k in load_checkpoint(tmp_path / "cut").model)
    monkeypatch.undo()
    resumed = runner.resume(tmp_path / "cut")
    assert resumed.metrics == full.metrics and resumed.target_metrics == full.target_metrics
    a, b = load_run(full.out).model.state_dict(), load_run(resumed.out).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_refusals_come_before_any_work(tiny_config: RunConfig, tmp_path: Path, target_folder: Path) -> None:
    with pytest.raises(HeadstartError, match="pass its data with --target TARGET"):
        runner.train(_cfg(tiny_config, "dann", None), tmp_path / "a")
    with pytest.raises(HeadstartError, match="strategy.adabn=true adapts to a target domain"):
        runner.train(_cfg(tiny_config, "finetune", None, adabn=True), tmp_path / "b")
    with pytest.raises(HeadstartError, match="does not run"):
        runner.train(_cfg(tiny_config, "linear-probe", target_folder, adabn=True), tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
