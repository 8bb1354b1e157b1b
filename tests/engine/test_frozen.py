"""The frozen-prefix activation cache: a run with it equals the same run without it, and it is off where it
would not be exact (issue 18, part 2)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import headstart as hs
from headstart.backbones.layers import LayerGroup, module_owners
from headstart.engine.activations import ActivationStore, Budget
from headstart.engine.frozen import FrozenPrefix
from tests.console import headstart, refused

ON = "frozen-prefix cache on"
READ = "example passes read from it"


def _reads(log: str) -> int:
    """How many example passes the run's cache served (0 when it said nothing)."""
    found = re.findall(r"(\d+) example passes read from it", log)
    return sum(int(n) for n in found)


def _fit(data: Path, out: Path, strategy: str, cache: bool, backbone: str | None = None, **settings: object) -> hs.Run:
    base = {"train.cache_frozen": cache, "train.batch_size": 8, **settings}
    return hs.fit(data, backbone=backbone, strategy=strategy, epochs=3, out=out, settings=base, verbose=False)


def _numbers(obj: object) -> list[float]:
    """Every number in a metrics.json document, in order."""
    if isinstance(obj, dict):
        return [n for k in sorted(obj) for n in _numbers(obj[k])]
    if isinstance(obj, list):
        return [n for v in obj for n in _numbers(v)]
    return [float(obj)] if isinstance(obj, int | float) and obj is not None else []


def _same_run(a: hs.Run, b: hs.Run) -> None:
    wa, wb = load_file(a.path / "model.safetensors"), load_file(b.path / "model.safetensors")
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    assert worst <= 1e-6, f"weights differ by {worst}"
    ma, mb = json.loads((a.path / "metrics.json").read_text()), json.loads((b.path / "metrics.json").read_text())
    assert _numbers(ma) == pytest.approx(_numbers(mb), abs=1e-6)
    ha = [json.loads(line) for line in (a.path / "history.jsonl").read_text().splitlines()]
    hb = [json.loads(line) for line in (b.path / "history.jsonl").read_text().splitlines()]
    # validation runs in the training precision: bf16 sums over a text batch's padded length (which differs
    # between the batch an example was cached in and the one it comes in) move the loss in the 6th digit
    assert [r["val_loss"] for r in ha] == pytest.approx([r["val_loss"] for r in hb], abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "settings", "used"),
    [
        ("partial", {"strategy.train_groups": 2}, True),
        ("progressive", {"strategy.unfreeze_every": 2.0}, True),  # head only for two epochs, then block.6
        ("lp-ft", {}, False),  # everything trains after the probe head: nothing frozen to cache
    ],
)
def test_images_same_run_with_and_without_the_cache(
    elpv_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, strategy: str, settings: dict, used: bool
) -> None:
    caplog.set_level(logging.INFO, logger="headstart.engine")
    cached = _fit(elpv_folder, tmp_path / "cached", strategy, True, **settings)
    assert (ON in caplog.text and _reads(caplog.text) > 0) is used
    caplog.clear()
    plain = _fit(elpv_folder, tmp_path / "plain", strategy, False, **settings)
    assert "frozen-prefix cache off: train.cache_frozen=false" in caplog.text
    _same_run(cached, plain)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "settings"),
    [("partial", {"strategy.train_groups": 2}), ("progressive", {"strategy.unfreeze_every": 2.0}), ("lp-ft", {})],
)
def test_text_same_run_with_and_without_the_cache(
    tweets_csv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, strategy: str, settings: dict
) -> None:
    caplog.set_level(logging.INFO, logger="headstart.engine")
    cached = _fit(tweets_csv, tmp_path / "cached", strategy, True, "minilm", **settings)
    assert (_reads(caplog.text) > 0) is (strategy != "lp-ft")
    plain = _fit(tweets_csv, tmp_path / "plain", strategy, False, "minilm", **settings)
    _same_run(cached, plain)


def test_spilled_to_a_file_the_run_is_the_same_and_the_file_is_removed(
    elpv_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADSTART_CACHE_DIR", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="headstart.engine")
    settings = {"strategy.train_groups": 2, "train.cache_memory_gb": 0}
    spilled = _fit(elpv_folder, tmp_path / "spilled", "partial", True, **settings)
    assert _reads(caplog.text) > 0 and "(0 MB in memory" in caplog.text
    assert list((tmp_path / "cache" / "activations").iterdir()) == []  # the spill file is gone
    _same_run(spilled, _fit(elpv_folder, tmp_path / "plain", "partial", False, **settings))


def test_off_with_the_reason_when_augmentation_is_on(
    elpv_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="headstart.engine")
    _fit(elpv_folder, tmp_path / "run", "partial", True, **{"preprocess.augment": True, "train.epochs": 1})
    assert "frozen-prefix cache off: augmentation is on (preprocess.augment=true)" in caplog.text
    assert ON not in caplog.text


def test_console_runs_with_the_cache_and_refuses_a_bad_budget(elpv_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", str(elpv_folder), "--strategy", "partial", "--epochs", "2", "--out", str(out), "--verbose"]
    ran = headstart(*args)
    assert ran.returncode == 0, ran.stderr
    assert "frozen-prefix cache on: stem..block.4" in ran.stderr + ran.stdout  # partial: the last 3 groups
    bad = tmp_path / "bad"
    refused(headstart(*args[:-3], "--out", str(bad), "--set", "train.cache_memory_gb=-2"), "train.cache_memory_gb=-2")
    assert not bad.exists()


def test_bad_memory_budget_is_refused(elpv_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(hs.HeadstartError, match=r"train.cache_memory_gb=-1.*must be >= 0"):
        _fit(elpv_folder, tmp_path / "run", "partial", True, **{"train.cache_memory_gb": -1})
    assert not (tmp_path / "run").exists()


# -- the cache's own checks, on small networks --------------------------------------------------------------------
class _Skip(nn.Module):
    """The head reads the stem's output as well as the block's: the prefix does not hand over one tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.block, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        return self.head(torch.cat([self.block(s), s], 1))


def _groups(model: nn.Module, names: list[str]) -> list[LayerGroup]:
    return [LayerGroup(n, tuple(p for p, _ in model.named_parameters() if p.startswith(f"{n}."))) for n in names]


def _prefix(model: nn.Module, names: list[str], frozen: int) -> FrozenPrefix:
    cache = FrozenPrefix(model, names, module_owners(model, _groups(model, names)), 2**20)
    cache.set_frozen(frozen)
    return cache


def _serve(cache: FrozenPrefix, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with cache.serving(x, torch.arange(len(x)), "train", torch.no_grad):
        return model(x)


def test_a_prefix_read_later_is_not_cached(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="headstart.engine")
    torch.manual_seed(0)
    model, x = _Skip(), torch.randn(6, 4)
    cache = _prefix(model, ["stem", "block", "head"], 2)  # stem and block frozen: the head also reads stem
    assert torch.equal(_serve(cache, model, x), model(x))
    assert "output from the cached activations differs from the full forward" in caplog.text
    assert cache.hits == cache.computed == 0


def test_a_chain_is_cached_and_read_back() -> None:
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("stem", nn.Linear(4, 8))
    model.add_module("drop", nn.Dropout(0.0))
    model.add_module("head", nn.Linear(8, 2))
    x = torch.randn(6, 4)
    cache = _prefix(model, ["stem", "head"], 1)
    first, second = _serve(cache, model, x), _serve(cache, model, x)
    assert torch.equal(first, model(x)) and torch.equal(second, first)
    assert (cache.computed, cache.hits) == (6, 6)
    cache.set_frozen(0)  # nothing frozen: the model runs as it is, the store is emptied
    assert torch.equal(_serve(cache, model, x), model(x)) and len(cache.stores["train"]) == 0


def test_dropout_outside_every_group_before_the_boundary_turns_it_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="headstart.engine")
    model = nn.Sequential()
    model.add_module("drop", nn.Dropout(0.5))
    model.add_module("stem", nn.Linear(4, 4))
    model.add_module("head", nn.Linear(4, 2))
    cache = _prefix(model, ["stem", "head"], 1)
    model.eval()
    x = torch.randn(3, 4)
    assert torch.equal(_serve(cache, model, x), model(x))
    assert "drop (Dropout) draws random numbers before their output" in caplog.text


def test_store_keeps_bf16_in_memory_and_in_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADSTART_CACHE_DIR", str(tmp_path))
    a, b = torch.randn(3, 5).bfloat16(), torch.randn(2, 7)
    store = ActivationStore(Budget(a.numel() * 2))
    assert store.put(0, a) and store.put(1, b)
    assert 0 in store.memory and 1 in store.on_disk
    assert torch.equal(store.get(0), a) and torch.equal(store.get(1), b)
    (spill,) = (tmp_path / "activations").iterdir()
    store.clear()
    assert not spill.exists() and len(store) == 0


def test_store_without_a_writable_cache_folder_keeps_nothing_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a user's file")
    monkeypatch.setenv("HEADSTART_CACHE_DIR", str(blocker))
    store = ActivationStore(Budget(0))
    assert not store.put(0, torch.ones(2)) and 0 not in store
    assert "cannot write the frozen-prefix activation cache" in caplog.text
    assert blocker.read_text() == "a user's file"
