import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import headstart.data.splits as splitting
from headstart.config import DataConfig
from headstart.data import (
    ImageSet,
    limit_per_class,
    load_images,
    make_splits,
    splits_from_json,
    splits_to_json,
    stratified_split,
)
from headstart.data.builtin import FASHION_DIR
from headstart.data.splits import duplicate_groups
from headstart.errors import HeadstartError

from ..conftest import write_class_folder
from ..console import headstart


def test_stratified_split_is_disjoint_complete_and_stratified() -> None:
    targets = np.repeat([0, 1, 2], [100, 40, 20])
    train, val, test = stratified_split(targets, [0.15, 0.15], seed=0)
    assert len(np.intersect1d(train, val)) == len(np.intersect1d(train, test)) == len(np.intersect1d(val, test)) == 0
    assert len(train) + len(val) + len(test) == len(targets)
    assert np.bincount(targets[test]).tolist() == [15, 6, 3]
    assert np.bincount(targets[val]).tolist() == [15, 6, 3]


def test_split_depends_on_seed_only() -> None:
    targets = np.repeat([0, 1], [50, 50])
    a = stratified_split(targets, [0.15, 0.15], seed=3)
    b = stratified_split(targets, [0.15, 0.15], seed=3)
    c = stratified_split(targets, [0.15, 0.15], seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[2], c[2])


def test_tiny_class_keeps_a_training_example() -> None:
    targets = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    train, val, test = stratified_split(targets, [0.15, 0.15], seed=0)
    assert (targets[train] == 0).sum() >= 1


def test_given_splits_and_carved_validation(elpv: ImageSet) -> None:
    sub = limit_per_class(elpv, 20, seed=0)
    sub.given_split = np.where(np.arange(len(sub)) % 4 == 0, "test", "train")
    s = make_splits(sub, DataConfig())
    assert set(s["test"]) == set(np.flatnonzero(sub.given_split == "test"))
    assert len(s["val"]) > 0 and not set(s["val"]) & set(s["train"])
    assert all(sub.given_split[i] == "train" for i in s["val"])


def test_limit_per_class(elpv: ImageSet) -> None:
    sub = limit_per_class(elpv, 5, seed=0)
    assert sub.class_counts() == {"functional": 5, "defective": 5}


def test_splits_json_round_trip(elpv: ImageSet) -> None:
    sub = limit_per_class(elpv, 10, seed=0)
    s = make_splits(sub, DataConfig(seed=1))
    saved = splits_to_json(sub, s, 1)
    back = splits_from_json(sub, saved)
    assert all(np.array_equal(back[k], s[k]) for k in s)
    saved["test"].append("builtin:elpv/999999")
    with pytest.raises(HeadstartError, match="no longer in"):
        splits_from_json(sub, saved)


def _texts(texts: list[str], targets: list[int]):  # type: ignore[no-untyped-def]
    from headstart.data import TextSet

    ids = [f"row {i}" for i in range(len(texts))]
    return TextSet("inline", ids, np.asarray(targets, dtype=np.int64), ["neg", "pos"], texts)


def test_repeated_texts_stay_in_one_split(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    base = [f"review number {i}" for i in range(200)]
    picks = rng.integers(0, 200, 400)  # 400 texts drawn with repeats from 200 distinct ones
    texts = [base[i] if j % 2 else f"  {base[i].upper()} " for j, i in enumerate(picks)]  # case and spaces vary
    targets = [int(i % 2) for i in picks]
    targets[1] = 1 - targets[1]  # one repeat carries the other label
    data = _texts(texts, targets)
    with caplog.at_level("WARNING"):
        s = make_splits(data, DataConfig())
    assert sorted(np.concatenate(list(s.values())).tolist()) == list(range(400))
    split_of = {i: name for name, idx in s.items() for i in idx}
    for i in range(200):  # every copy of a text is in the split of its first copy
        assert len({split_of[j] for j in np.flatnonzero(picks == i)}) <= 1
    assert all(len(v) > 30 for v in s.values())
    repeats = 400 - len(np.unique(picks))
    assert f"{repeats} example(s) repeat an earlier identical input" in caplog.text
    assert "1 repeated input(s) carry more than one label" in caplog.text


def test_without_repeats_the_split_is_the_plain_stratified_one() -> None:
    targets = np.arange(100) % 2
    data = _texts([f"text {i}" for i in range(100)], targets.tolist())
    s = make_splits(data, DataConfig(seed=5))
    plain = stratified_split(targets, [0.15, 0.15], seed=5)
    for got, want in zip(s.values(), plain, strict=True):
        np.testing.assert_array_equal(got, want)


# --- repeated images -----------------------------------------------------------------------------------------


def repeated_csv(root: Path, folder: Path) -> Path:
    """A path,label CSV of the real cells in ``folder``: each listed once, then 12 listed again, 4 byte-identical
    copies under other names, and the first cell listed again under the other class (17 repeats in all)."""
    files = sorted(folder.rglob("*.png"))
    rows = [f"{f},{f.parent.name}" for f in files]
    rows += [f"{files[i]},{files[i].parent.name}" for i in np.random.RandomState(0).choice(len(files), 12, False)]
    (root / "copies").mkdir()
    for i in (3, 9, 17, 25):
        shutil.copy(files[i], root / "copies" / f"copy{i}.png")
        rows.append(f"copies/copy{i}.png,{files[i].parent.name}")
    other = {"defective": "functional", "functional": "defective"}[files[0].parent.name]
    rows.append(f"{files[0]},{other}")
    path = root / "cells.csv"
    path.write_text("\n".join(["path,label", *rows]) + "\n")
    return path


def contents(images: ImageSet) -> list[bytes]:
    assert images.paths is not None
    return [hashlib.sha256(p.read_bytes()).digest() for p in images.paths]


def splits_of_each_content(images: ImageSet, splits: dict[str, np.ndarray]) -> dict[bytes, set[str]]:
    content = contents(images)
    found: dict[bytes, set[str]] = {}
    for name, index in splits.items():
        for i in index:
            found.setdefault(content[i], set()).add(name)
    return found


def test_repeated_image_files_stay_in_one_split(
    tmp_path: Path, elpv_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images = load_images(str(repeated_csv(tmp_path, elpv_folder)))
    with caplog.at_level("WARNING"):
        s = make_splits(images, DataConfig())
    assert all(len(names) == 1 for names in splits_of_each_content(images, s).values())
    assert sorted(np.concatenate(list(s.values())).tolist()) == list(range(45))
    assert len(images) == 45 and len(set(images.ids)) == 45
    assert len(s["test"]) >= 4 and len(s["val"]) >= 4
    first = str(sorted(elpv_folder.rglob("*.png"))[0])
    assert "17 example(s) repeat an earlier identical input" in caplog.text
    assert (
        f"1 repeated input(s) carry more than one label, e.g. '{first}' (defective) and '{first} (row 45)'"
        in caplog.text
    )
    assert "so none crosses from training into evaluation" in caplog.text


def test_duplicate_groups_of_files(tmp_path: Path, elpv_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cell = sorted(elpv_folder.rglob("*.png"))[0].read_bytes()
    (tmp_path / "a.png").write_bytes(cell)
    (tmp_path / "link.png").symlink_to(tmp_path / "a.png")
    (tmp_path / "copy.png").write_bytes(cell)
    (tmp_path / "same-size.png").write_bytes(cell[:-1] + bytes([cell[-1] ^ 1]))
    (tmp_path / "other-size.png").write_bytes(cell + b"\0")
    (tmp_path / "long-a.bin").write_bytes(b"\0" * 70_000)  # same first 64 KiB: told apart by the full hash
    (tmp_path / "long-b.bin").write_bytes(b"\0" * 69_999 + b"\1")
    names = ["a.png", "./a.png", "link.png", "copy.png", "same-size.png", "other-size.png", "long-a.bin", "long-b.bin"]
    read: list[str] = []
    digest = splitting._digest
    monkeypatch.setattr(splitting, "_digest", lambda path, limit: read.append(path.name) or digest(path, limit))
    data = ImageSet("inline", names, np.zeros(8, np.int64), ["x"], paths=[tmp_path / n for n in names])
    groups = duplicate_groups(data)
    assert groups is not None and groups.tolist() == [0, 0, 0, 0, 1, 2, 3, 4]
    assert "other-size.png" not in read  # a size no other file has: never read
    assert sorted(set(read)) == ["a.png", "copy.png", "long-a.bin", "long-b.bin", "same-size.png"]


def test_repeated_arrays_stay_in_one_split(elpv: ImageSet, caplog: pytest.LogCaptureFixture) -> None:
    sub = limit_per_class(elpv, 20, seed=0)
    again = np.random.RandomState(1).choice(40, 20)  # 20 repeats of in-memory cells (as in builtin sets)
    data = sub.subset(np.concatenate([np.arange(40), again]))
    with caplog.at_level("WARNING"):
        s = make_splits(data, DataConfig())
    groups = duplicate_groups(data)
    assert groups is not None and groups.tolist() == [*range(40), *again.tolist()]
    split_of = {i: name for name, idx in s.items() for i in idx}
    assert all(split_of[40 + j] == split_of[i] for j, i in enumerate(again))
    assert "20 example(s) repeat an earlier identical input" in caplog.text


def test_images_without_repeats_split_as_before(
    elpv: ImageSet, elpv_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for data in (limit_per_class(elpv, 30, seed=0), load_images(str(elpv_folder))):
        with caplog.at_level("WARNING"):
            s = make_splits(data, DataConfig(seed=2))
        plain = stratified_split(data.targets, [0.15, 0.15], seed=2)
        for got, want in zip(s.values(), plain, strict=True):
            np.testing.assert_array_equal(got, want)
    assert "repeat" not in caplog.text


def test_builtin_image_sets_hold_no_repeated_images(elpv: ImageSet) -> None:
    groups = duplicate_groups(elpv)
    assert groups is not None and groups.max() + 1 == len(elpv) == 2624  # so grouping leaves its splits alone
    if FASHION_DIR.is_dir():
        fashion = load_images("builtin:fashion-mnist")
        assert int(duplicate_groups(fashion).max()) + 1 == len(fashion) == 70000  # type: ignore[union-attr]


def test_given_splits_report_repeats_across_them(
    tmp_path: Path, elpv: ImageSet, caplog: pytest.LogCaptureFixture
) -> None:
    write_class_folder(tmp_path / "train", elpv, 6, seed=1)
    write_class_folder(tmp_path / "test", elpv, 3, seed=2)
    train_file = sorted((tmp_path / "train").rglob("*.png"))[0]
    shutil.copy(train_file, tmp_path / "test" / train_file.parent.name / "copy.png")
    images = load_images(str(tmp_path))
    with caplog.at_level("WARNING"):
        s = make_splits(images, DataConfig())
    content = contents(images)
    in_train = {content[i] for i in s["train"]}
    crossing = sum(content[i] in in_train for i in np.concatenate([s["val"], s["test"]]))
    assert crossing >= 1 and set(s["test"]) == set(np.flatnonzero(images.given_split == "test"))
    assert f"{crossing} val/test example(s) repeat a training input in the splits the source gives" in caplog.text


def test_splits_json_round_trips_with_repeated_rows(tmp_path: Path, elpv_folder: Path) -> None:
    images = load_images(str(repeated_csv(tmp_path, elpv_folder)))
    s = make_splits(images, DataConfig(seed=3))
    saved = json.loads(json.dumps(splits_to_json(images, s, 3)))
    back = splits_from_json(load_images(str(tmp_path / "cells.csv")), saved)
    assert all(np.array_equal(back[k], s[k]) for k in s)
    assert sum(len(saved[k]) for k in s) == len({i for k in s for i in saved[k]}) == 45


def test_splits_json_refuses_repeated_ids(elpv: ImageSet) -> None:
    sub = limit_per_class(elpv, 3, seed=0)
    twice = sub.subset(np.array([0, 1, 2, 3, 4, 5, 0]))
    with pytest.raises(HeadstartError, match=r"ids of 'builtin:elpv' are not unique \('builtin:elpv/\d+' appears 2"):
        splits_to_json(twice, make_splits(twice, DataConfig()), 0)


def test_repeated_rows_never_reach_the_test_split_of_a_run(tmp_path: Path, elpv_folder: Path) -> None:
    csv = repeated_csv(tmp_path, elpv_folder)
    out = tmp_path / "run"
    args = [
        "--backbone",
        "mobilenet_v2",
        "--strategy",
        "linear-probe",
        "--out",
        str(out),
        "--set",
        "train.batch_size=8",
    ]
    result = headstart("train", str(csv), *args)
    assert result.returncode == 0, result.stderr
    images = load_images(str(csv))
    content = dict(zip(images.ids, contents(images), strict=True))
    saved = json.loads((out / "splits.json").read_text())
    train, val, test = ({content[i] for i in saved[name]} for name in ("train", "val", "test"))
    assert len(train & test) == len(train & val) == len(val & test) == 0  # no cell on both sides
    assert sum(len(saved[name]) for name in ("train", "val", "test")) == len(set(images.ids)) == 45
    assert "17 example(s) repeat an earlier identical input" in " ".join(result.stderr.split())
