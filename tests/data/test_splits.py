import numpy as np
import pytest

from headstart.config import DataConfig
from headstart.data import ImageSet, limit_per_class, make_splits, splits_from_json, splits_to_json, stratified_split
from headstart.errors import HeadstartError


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
