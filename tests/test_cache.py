"""The decoded-data cache: ``builtin:elpv`` is decoded once, then read back; a damaged or unwritable cache
costs time, never a run."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from headstart._cache import cache_dir, cached_arrays
from headstart.data import load_images


def test_builtin_elpv_is_decoded_once_then_read_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_images("builtin:elpv")
    files = list((cache_dir() / "datasets").glob("elpv-*.npz"))
    assert len(files) == 1

    import elpv_dataset.utils

    def no_decoding() -> None:
        raise AssertionError("decoded again although the cache holds the data")

    monkeypatch.setattr(elpv_dataset.utils, "load_dataset", no_decoding)
    again = load_images("builtin:elpv")
    np.testing.assert_array_equal(again.arrays, first.arrays)
    np.testing.assert_array_equal(again.targets, first.targets)
    assert again.ids == first.ids and again.labels == first.labels
    assert again.meta["cell_type"].tolist() == first.meta["cell_type"].tolist()
    np.testing.assert_array_equal(again.meta["defect_probability"], first.meta["defect_probability"])
    assert load_images("builtin:elpv-mono").source == "builtin:elpv-mono"  # the cell-type subsets read it too


def _build() -> dict[str, np.ndarray]:
    return {"x": np.arange(6, dtype=np.uint8).reshape(2, 3), "names": np.array(["a", "b"])}


def test_arrays_are_built_once_then_read_back() -> None:
    calls = []

    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        return _build()

    read = [cached_arrays("demo", "v1", build) for _ in range(2)]
    assert len(calls) == 1
    assert [r["names"].tolist() for r in read] == [["a", "b"], ["a", "b"]]
    np.testing.assert_array_equal(read[1]["x"], _build()["x"])
    assert cached_arrays("demo", "v2", build) and len(calls) == 2  # another key is built anew


def test_a_damaged_cache_file_is_rebuilt_and_replaced(caplog: pytest.LogCaptureFixture) -> None:
    cached_arrays("demo", "v1", _build)
    (path,) = (cache_dir() / "datasets").glob("demo-v1*.npz")
    path.write_bytes(b"not a zip file")
    with caplog.at_level(logging.WARNING):
        arrays = cached_arrays("demo", "v1", _build)
    assert "unreadable" in caplog.text and "decoding the data again" in caplog.text
    np.testing.assert_array_equal(arrays["x"], _build()["x"])
    with np.load(path) as stored:  # replaced by a good file
        assert stored["names"].tolist() == ["a", "b"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_cache_folder_is_reported_once_and_worked_around(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    locked = tmp_path / "locked"
    (locked / "datasets").mkdir(parents=True)
    (locked / "datasets").chmod(0o500)
    monkeypatch.setenv("HEADSTART_CACHE_DIR", str(locked))
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert cached_arrays("demo", "v1", _build)["names"].tolist() == ["a", "b"]
    assert caplog.text.count("cannot write the decoded-data cache") == 1
    assert "HEADSTART_CACHE_DIR" in caplog.text


def test_a_cache_path_that_is_a_file_is_worked_around(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Works as root too: the cache 'folder' is a file, so nothing can be written under it."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a user's file")
    monkeypatch.setenv("HEADSTART_CACHE_DIR", str(blocker))
    assert cached_arrays("demo", "v1", _build)["x"].shape == (2, 3)
    assert blocker.read_text() == "a user's file"  # untouched
