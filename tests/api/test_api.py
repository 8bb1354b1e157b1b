"""The Python API as a notebook user calls it (``import headstart as hs``), on small real data."""

from __future__ import annotations

import json
import platform
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import headstart as hs
from headstart.data import ImageSet
from tests.conftest import served_by_mmap
from tests.console import headstart

README = Path(__file__).resolve().parents[2] / "README.md"
FAST = {"train.batch_size": 8}


def _cells(elpv: ImageSet, per_class: int, offset: int = 0) -> tuple[list[np.ndarray], list[str]]:
    assert elpv.arrays is not None
    pick = np.r_[tuple(np.flatnonzero(elpv.targets == k)[offset : offset + per_class] for k in range(2))]
    return [elpv.arrays[i] for i in pick], [elpv.labels[elpv.targets[i]] for i in pick]


@pytest.fixture(scope="module")
def mem_run(tmp_path_factory: pytest.TempPathFactory, elpv: ImageSet) -> hs.Run:
    images, labels = _cells(elpv, 12)
    out = tmp_path_factory.mktemp("api") / "mem"
    return hs.fit((images, labels), backbone="mobilenet_v2", strategy="linear-probe", out=out, settings=FAST)


def test_public_names() -> None:
    assert set(hs.__all__) >= {"fit", "load", "compare", "rank", "Run", "Model", "HeadstartError", "__version__"}


def test_fit_on_arrays_writes_a_run_like_the_cli(mem_run: hs.Run) -> None:
    manifest = json.loads((mem_run.path / "headstart.json").read_text())
    assert manifest["data"]["source"] == "<memory>" and manifest["data"]["n"] == 24
    assert mem_run.labels == ["defective", "functional"] == manifest["labels"]
    assert mem_run.metrics == json.loads((mem_run.path / "metrics.json").read_text())
    assert (mem_run.path / "report.html").is_file() and "iframe" in mem_run._repr_html_()
    assert repr(mem_run).startswith(f"Run({str(mem_run.path)!r}, linear-probe on mobilenet_v2, accuracy=")
    assert len(repr(hs.load(mem_run.path))) < 300  # not the whole network


def test_predict_takes_paths_pil_arrays_and_tensors_like_the_cli(
    mem_run: hs.Run, elpv: ImageSet, tmp_path: Path
) -> None:
    images, _ = _cells(elpv, 2, offset=50)  # cells the run never saw
    files = []
    for i, a in enumerate(images):
        files.append(str(tmp_path / f"c{i}.png"))
        Image.fromarray(a).save(files[-1])
    cli = headstart("predict", str(mem_run.path), *files, "--format", "json")
    assert cli.returncode == 0, cli.stderr
    expected = np.asarray([[r["probabilities"][k] for k in mem_run.labels] for r in json.loads(cli.stdout)])
    model = hs.load(mem_run.path)
    for kind in (
        files,
        [Image.open(f) for f in files],
        images,  # (H, W) uint8
        [np.repeat(a[..., None], 3, axis=2) for a in images],  # (H, W, 3): the same grey cell
        [torch.from_numpy(a)[None] for a in images],  # (1, H, W) tensors
        [a.astype(np.float32) / 255 for a in images],  # floats in [0, 1]
    ):
        np.testing.assert_allclose(model.predict_proba(kind), expected, atol=1e-6)
    records = model.predict([files[0], images[0]])
    assert records[0]["path"] == files[0] and records[1]["input"] == "ndarray (300, 300) uint8"
    assert records[0]["label"] == json.loads(cli.stdout)[0]["label"]


def test_evaluate_in_memory_data(mem_run: hs.Run, elpv: ImageSet) -> None:
    model = hs.load(mem_run.path)
    images, labels = _cells(elpv, 12)
    own = model.evaluate((images, labels))  # the training data again: its saved test split
    assert own["split"] == "test" and own["accuracy"] == mem_run.metrics["accuracy"]
    other = model.evaluate(_cells(elpv, 10, offset=100))
    assert other["split"] == "all" and other["n"] == 20
    with pytest.raises(hs.HeadstartError, match="in-memory data"):
        model.evaluate()


def test_bad_inputs_say_what_to_do(mem_run: hs.Run, tmp_path: Path) -> None:
    model = hs.load(mem_run.path)
    [bad] = model.predict([np.zeros((2, 3, 4, 5))])
    assert bad["label"] is None and "(H, W) or (H, W, C)" in bad["error"]
    with pytest.raises(hs.HeadstartError, match="could not be predicted"):
        model.predict_proba([str(tmp_path / "missing.png")])
    with pytest.raises(hs.HeadstartError, match="3 inputs but 2 labels"):
        hs.fit(([np.zeros((8, 8), np.uint8)] * 3, ["a", "b"]), out=tmp_path / "x")
    with pytest.raises(hs.HeadstartError, match="single class"):
        hs.fit(([np.zeros((8, 8), np.uint8)] * 3, ["a"] * 3), out=tmp_path / "x")
    with pytest.raises(hs.HeadstartError, match="cannot read data of type dict"):
        hs.fit({"a": 1}, out=tmp_path / "x")
    with pytest.raises(hs.HeadstartError, match="unknown config key 'lr'; known: data.source"):
        hs.fit("builtin:elpv", settings={"lr": 1e-3}, out=tmp_path / "x")
    with pytest.raises(hs.HeadstartError, match="unknown config key"):
        hs.fit("builtin:elpv", settings={"optim.lrr": 1e-3}, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_torch_dataset_of_pairs(elpv: ImageSet, tmp_path: Path) -> None:
    images, labels = _cells(elpv, 6)

    class Cells(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return torch.from_numpy(images[i]).float().div(255)[None], int(labels[i] == "functional")

    run = hs.fit(Cells(), backbone="mobilenet_v2", strategy="linear-probe", out=tmp_path / "ds", settings=FAST)
    assert run.labels == ["0", "1"] and run.metrics["n"] == 2  # 15% of 6 per class


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc tuning applies to glibc only")
def test_notebook_calls_get_the_clis_allocator_settings_and_give_them_back(
    mem_run: hs.Run, elpv: ImageSet, tmp_path: Path, untuned_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hs.fit and model.predict run with the CLI's malloc settings (large tensors from the heap, not fresh mmap'd
    pages: about 0.7x a CPU training step, bench/README.md), and give glibc its defaults back after."""
    from headstart import _runtime, runner
    from headstart.modalities import get_modality
    from headstart.modalities.base import MODALITIES

    calls: list[dict[int, int]] = []
    apply = _runtime._apply
    monkeypatch.setattr(_runtime, "_apply", lambda libc, settings: calls.append(settings) or apply(libc, settings))
    seen: list[tuple[int, bool]] = []  # (mallopt calls so far, whether an 8 MB array got fresh mmap'd pages)
    train, image = runner.train, get_modality("image")
    look = lambda: seen.append((len(calls), served_by_mmap()))  # noqa: E731
    monkeypatch.setattr(runner, "train", lambda *a, **k: (look(), train(*a, **k))[1])
    spy = replace(image, predict=lambda *a: (look(), image.predict(*a))[1])
    monkeypatch.setitem(MODALITIES, "image", spy)
    images, labels = _cells(elpv, 6)
    hs.fit((images, labels), backbone="mobilenet_v2", strategy="linear-probe", out=tmp_path / "fit", settings=FAST)
    assert seen == [(1, False)] and calls == [_runtime._SETTINGS, _runtime._GLIBC_DEFAULTS]
    assert hs.load(mem_run.path).predict(images[:2])[0]["label"] in mem_run.labels
    assert seen == [(1, False), (3, False)] and calls == [_runtime._SETTINGS, _runtime._GLIBC_DEFAULTS] * 2


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python section, executed as written (in a fresh folder: it writes runs/ and cell.png)."""
    blocks = re.findall(r"## Python\n.*?```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(blocks[0], "README.md#python", "exec"), scope)  # noqa: S102 - our own documentation
    assert np.asarray(scope["proba"]).shape == (4, 2)
    records = scope["records"]
    assert isinstance(records, list) and len({r["label"] for r in records}) == 1  # one cell, four forms
    assert (tmp_path / "runs" / "cmp" / "report.html").is_file() and (tmp_path / "runs" / "txt").is_dir()


def test_compare_resume_reuses_finished_runs_and_refuses_other_data(elpv: ImageSet, tmp_path: Path) -> None:
    """hs.compare(..., resume=True) after a kernel restart: the finished run is reused, the missing one trained."""
    out, data = tmp_path / "cmp", _cells(elpv, 10)
    first = hs.compare(data, ["linear-probe"], backbone="mobilenet_v2", epochs=1, out=out, settings=FAST, verbose=False)
    again = hs.compare(
        data, ["linear-probe", "scratch"], backbone="mobilenet_v2", epochs=1, out=out, settings=FAST,
        resume=True, verbose=False,
    )  # fmt: skip
    rows = {row["strategy"]: row for row in again.rows}
    assert rows["linear-probe"]["origin"] == "reused" and "origin" not in rows["scratch"]
    assert rows["linear-probe"]["macro_f1"] == first.rows[0]["macro_f1"]
    with pytest.raises(hs.HeadstartError, match=r"the data: 20 examples then, 24 now.*choose another --out"):
        hs.compare(
            _cells(elpv, 12), ["linear-probe"], backbone="mobilenet_v2", epochs=1, out=out, settings=FAST, resume=True
        )
