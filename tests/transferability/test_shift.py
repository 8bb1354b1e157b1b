"""Domain shift: proxy A-distance, per-feature shift and the probe-transfer drop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headstart.config import load_config
from headstart.data import ImageSet
from headstart.errors import HeadstartError
from headstart.runner import prepare_data
from headstart.transferability.features import parse_candidates
from headstart.transferability.shift import feature_shift, measure_shift, proxy_a_distance


def test_proxy_a_distance_is_near_zero_for_one_distribution_and_two_for_separate_ones() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(150, 16))
    pad, acc = proxy_a_distance(a, b)
    assert pad < 0.4 and acc < 0.6
    pad, acc = proxy_a_distance(a, b + 3.0)
    assert pad > 1.9 and acc > 0.97


def test_proxy_a_distance_checks_its_input() -> None:
    with pytest.raises(HeadstartError, match="feature sizes differ"):
        proxy_a_distance(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(HeadstartError, match="at least 5 examples"):
        proxy_a_distance(np.zeros((3, 3)), np.zeros((10, 3)))


def test_feature_shift_in_pooled_standard_deviations() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20000, 4))
    same = feature_shift(a, a)
    assert same["median_smd"] == 0.0 and same["median_abs_log_var_ratio"] == 0.0
    b = a.copy()
    b[:, :2] += 1.0  # two of four features move by one standard deviation
    moved = feature_shift(a, b)
    assert moved["share_smd_over_0.5"] == 0.5
    assert moved["p90_smd"] == pytest.approx(1.0, abs=0.01)
    wider = feature_shift(a, a * np.e)  # variance x e^2
    assert wider["median_abs_log_var_ratio"] == pytest.approx(2.0, abs=1e-6)


def _cells(elpv: ImageSet, kind: str, root: Path) -> Path:
    from tests.conftest import write_class_folder

    return write_class_folder(root / kind, elpv.subset(np.flatnonzero(elpv.meta["cell_type"] == kind)), 12)


def test_mono_to_poly_cells_report_a_transfer_drop(elpv: ImageSet, tmp_path: Path) -> None:
    mono, poly = _cells(elpv, "mono", tmp_path), _cells(elpv, "poly", tmp_path)
    cfg = load_config(None, [f"data.source={mono}", "train.batch_size=8"])
    source = prepare_data(cfg)
    target = prepare_data(load_config(None, [f"data.source={poly}"]))[0]
    report = measure_shift(cfg, parse_candidates("efficientnet_lite0", "image")[0], source, target)
    assert report.n_source == 24 and report.n_target == 24
    assert 0.0 <= report.proxy_a_distance <= 2.0 and report.proxy_a_distance > 0.5  # mono and poly look different
    assert report.transfer is not None
    t = report.transfer
    assert t["drop"] == pytest.approx(t["source_test_accuracy"] - t["target_accuracy"])
    assert set(report.feature_shift) == {"median_smd", "p90_smd", "share_smd_over_0.5", "median_abs_log_var_ratio"}


def test_different_classes_have_no_transfer_row(tiny_config, photos, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    for name, arr in photos.items():
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.ascontiguousarray(np.rot90(arr, i % 4))).save(tmp_path / "photos" / name / f"{i}.png")
    target = prepare_data(load_config(None, [f"data.source={tmp_path / 'photos'}", "data.val_fraction=0.2"]))[0]
    report = measure_shift(
        tiny_config, parse_candidates("efficientnet_lite0", "image")[0], prepare_data(tiny_config), target
    )
    assert report.transfer is None
    assert report.proxy_a_distance > 1.5  # solar cells vs photos of a cat and a cup


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_measure_shift_refuses_other_tasks_before_reading_any_data(task: str) -> None:
    cfg = load_config(None, ["data.source=builtin:elpv-severity", f"task.kind={task}"])
    cand = parse_candidates("mobilenet_v2", "image")[0]
    with pytest.raises(HeadstartError, match=f"supports --task classification only .* not --task {task}"):
        measure_shift(cfg, cand, (None, {}), None)  # type: ignore[arg-type]  # refused before the data is read
