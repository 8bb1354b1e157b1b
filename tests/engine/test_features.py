import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from headstart._permissions import umask
from headstart.backbones import backbone_identity, get_backbone, resolve_recipe
from headstart.config import PreprocessConfig, TrainConfig
from headstart.data import ImageSet, SkipLog, load_images
from headstart.engine import cache_dir, extract_features, resolve_runtime
from headstart.modalities import create_model
from tests.console import headstart


def _extract(images, runtime=None, rows=None, model=None):  # type: ignore[no-untyped-def]
    spec = get_backbone("mobilenet_v2")
    fresh, ckpt = create_model(spec)
    recipe = resolve_recipe(ckpt, PreprocessConfig())
    runtime = runtime or resolve_runtime(TrainConfig())
    return extract_features(model or fresh, images, recipe, runtime, backbone_identity(spec), 8, SkipLog(), rows=rows)


def test_second_extraction_hits_the_cache(elpv_folder: Path) -> None:
    images = load_images(str(elpv_folder))
    first = _extract(images)
    second = _extract(images)
    assert not first.cached and second.cached and first.key == second.key
    np.testing.assert_array_equal(first.features, second.features)
    assert first.features.shape == (28, 1280) and first.valid.all()
    cached = cache_dir() / "features" / f"{first.key}.safetensors"
    assert cached.is_file() and cached.stat().st_mode & 0o777 == 0o666 & ~umask()  # readable by the team


def test_rows_are_extracted_once_and_added_to_the_cache(elpv_folder: Path) -> None:
    images = load_images(str(elpv_folder))
    model, _ = create_model(get_backbone("mobilenet_v2"))
    seen: list[int] = []
    model.conv_stem.register_forward_hook(lambda _m, inputs, _o: seen.append(len(inputs[0])))
    part = _extract(images, rows=np.arange(0, 28, 2), model=model)
    assert not part.cached and sum(seen) == 14
    assert part.valid[::2].all() and not part.valid[1::2].any() and not part.features[1::2].any()
    again = _extract(images, rows=np.arange(0, 28, 4), model=model)  # a subset of what is cached
    assert again.cached and sum(seen) == 14
    whole = _extract(images, model=model)  # only the 14 missing rows are extracted
    assert not whole.cached and sum(seen) == 28 and whole.valid.all()
    np.testing.assert_array_equal(whole.features[::2], part.features[::2])
    spec = get_backbone("mobilenet_v2")
    fresh, ckpt = create_model(spec)
    recipe, runtime = resolve_recipe(ckpt, PreprocessConfig()), resolve_runtime(TrainConfig())
    full = extract_features(fresh, images, recipe, runtime, backbone_identity(spec), 8, SkipLog(), use_cache=False)
    np.testing.assert_allclose(whole.features, full.features, atol=1e-4)  # same as one extraction of every row
    assert _extract(images, model=model).cached and sum(seen) == 28


def test_cache_files_without_a_done_mask_are_complete(elpv_folder: Path) -> None:
    """Files written before the cache recorded which rows it holds still count as every row."""
    from safetensors.numpy import load_file, save_file

    images = load_images(str(elpv_folder))
    first = _extract(images)
    path = cache_dir() / "features" / f"{first.key}.safetensors"
    old = {k: v for k, v in load_file(str(path)).items() if k != "done"}
    save_file(old, str(path))
    again = _extract(images)
    assert again.cached and again.valid.all()
    np.testing.assert_array_equal(again.features, first.features)


def test_cache_key_depends_on_the_features_precision_only(elpv_folder: Path) -> None:
    images = load_images(str(elpv_folder))
    fp32 = resolve_runtime(TrainConfig(precision="fp32"))
    trained_in_bf16 = resolve_runtime(TrainConfig(precision="bf16"))  # kept passes are fp32 all the same
    a = _extract(images, fp32)
    again = _extract(images, trained_in_bf16)
    assert again.key == a.key and again.cached
    b = _extract(images, dataclasses.replace(fp32, precision="bf16"))  # a head's fitting features (bf16)
    assert a.key != b.key and not b.cached
    # bf16 features stay close to fp32 ones
    cos = (a.features * b.features).sum(1) / (np.linalg.norm(a.features, axis=1) * np.linalg.norm(b.features, axis=1))
    assert cos.mean() > 0.98 and cos.min() > 0.95


def test_unreadable_image_is_skipped_and_reported(
    elpv_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    shutil.copytree(elpv_folder, tmp_path / "d")
    bad = tmp_path / "d" / "defective" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    images = load_images(str(tmp_path / "d"))
    skips = SkipLog()
    spec = get_backbone("mobilenet_v2")
    model, ckpt = create_model(spec)
    with caplog.at_level(logging.WARNING):
        fs = extract_features(model, images, ckpt, resolve_runtime(TrainConfig()), backbone_identity(spec), 8, skips)
    assert fs.valid.sum() == 28 and not fs.valid[images.ids.index("defective/broken.png")]
    assert len(skips.items) == 1 and "broken.png" in caplog.text


def _block_cache(how: str, images: ImageSet, cache: Path) -> None:
    """Make the feature cache unwritable: a FILE where its folder should be, a folder where the cache file
    should be (it cannot be replaced), or a read-only folder (only without root, whom chmod does not stop)."""
    if how == "file-above":
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("a file, not a folder")
    elif how == "folder-at-file":
        key = _extract(images).key  # a first, normal extraction writes the cache file
        path = cache / "features" / f"{key}.safetensors"
        path.unlink()
        path.mkdir()
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders; the other cases cover root")
        (cache / "features").mkdir(parents=True)
        (cache / "features").chmod(0o500)


@pytest.mark.parametrize("how", ["file-above", "folder-at-file", "read-only"])
def test_unwritable_cache_warns_once_and_goes_on(
    elpv_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    images = load_images(str(elpv_folder))
    monkeypatch.setenv("HEADSTART_CACHE_DIR", str(tmp_path / "cache"))
    _block_cache(how, images, tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="headstart.engine.features"):
        first, second = _extract(images), _extract(images)
    assert not first.cached and not second.cached and first.valid.all() and first.features.shape == (28, 1280)
    np.testing.assert_array_equal(first.features, second.features)
    warnings = [r.getMessage() for r in caplog.records if "cannot write the feature cache" in r.getMessage()]
    assert len(warnings) == 1 and "going on without caching" in warnings[0], caplog.text


def test_train_with_an_unwritable_cache_warns_and_finishes(elpv_folder: Path, tmp_path: Path) -> None:
    """Through the console script: the run is written; one warning, no traceback, at the end of extraction."""
    (tmp_path / "not-a-folder").write_text("")
    args = ["--backbone", "mobilenet_v2", "--strategy", "linear-probe", "--set", "train.batch_size=8"]
    cache = str(tmp_path / "not-a-folder" / "cache")
    result = headstart("train", str(elpv_folder), *args, "--out", str(tmp_path / "run"), HEADSTART_CACHE_DIR=cache)
    assert result.returncode == 0, result.stderr
    assert (
        result.stderr.count("cannot write the feature cache") == 1 and (tmp_path / "run" / "headstart.json").is_file()
    )
