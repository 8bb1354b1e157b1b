import numpy as np
import pytest
import torch

from headstart.backbones import get_backbone
from headstart.backbones.text import TextRecipe
from headstart.data.tokens import BUCKET, LengthBuckets, make_text_loader
from headstart.modalities import create_model


def _batches(sampler: LengthBuckets) -> list[list[int]]:
    return list(iter(sampler))


def test_eval_order_is_sorted_by_length_and_complete() -> None:
    lengths = np.random.RandomState(0).randint(3, 200, size=101)
    batches = _batches(LengthBuckets(lengths, 16, shuffle=False, generator=torch.Generator()))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(101)) and len(batches) == 7
    assert list(lengths[flat]) == sorted(lengths)


@pytest.mark.parametrize("drop_last", [False, True])
def test_training_buckets_group_similar_lengths(drop_last: bool) -> None:
    n, size = 3 * 16 * BUCKET + 5, 16
    lengths = np.random.RandomState(1).randint(3, 300, size=n)
    sampler = LengthBuckets(
        lengths, size, shuffle=True, generator=torch.Generator().manual_seed(0), drop_last=drop_last
    )
    batches = _batches(sampler)
    assert len(batches) == len(sampler) == (n // size if drop_last else -(-n // size))
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == len(flat) == (n // size * size if drop_last else n)
    # padding waste: within-batch spread is far below that of random batches
    spread = np.mean([np.ptp(lengths[b]) for b in batches if len(b) == size])
    random_spread = np.mean([np.ptp(lengths[np.random.RandomState(i).choice(n, size)]) for i in range(50)])
    assert spread < random_spread / 5


def test_training_order_follows_the_generator() -> None:
    lengths = np.arange(500) % 37
    a = _batches(LengthBuckets(lengths, 8, True, torch.Generator().manual_seed(3)))
    b = _batches(LengthBuckets(lengths, 8, True, torch.Generator().manual_seed(3)))
    c = _batches(LengthBuckets(lengths, 8, True, torch.Generator().manual_seed(4)))
    assert a == b and a != c


def test_text_loader_pads_to_the_longest_in_batch() -> None:
    _, recipe = create_model(get_backbone("minilm"), num_classes=2, pretrained=False)
    assert isinstance(recipe, TextRecipe)
    texts = ["tiny", "a somewhat longer sentence here", "mid length text", "word " * 300]
    loader = make_text_loader(texts, np.array([0, 1, 0, 1]), np.arange(4), recipe, 2)
    batches = list(loader)
    widths = [b.x["input_ids"].shape[1] for b in batches]
    assert widths[0] < 10 and widths[1] == recipe.max_length  # short texts are not padded to the long one
    for b in batches:
        mask = b.x["attention_mask"]
        assert mask.sum(1).tolist() == [int((row != 0).sum()) for row in b.x["input_ids"]]
    assert sorted(int(i) for b in batches for i in b.index) == [0, 1, 2, 3]
    assert {int(i): int(t) for b in batches for i, t in zip(b.index, b.y, strict=True)} == {0: 0, 1: 1, 2: 0, 3: 1}


def test_text_stats_count_truncated_texts_and_warn(caplog: pytest.LogCaptureFixture) -> None:
    import dataclasses
    import logging

    from headstart.data.texts import TextSet
    from headstart.data.tokens import text_stats

    _, recipe = create_model(get_backbone("minilm"), pretrained=False)
    assert isinstance(recipe, TextRecipe)
    short = dataclasses.replace(recipe, max_length=8)
    texts = ["a short one", "this text has far more than eight word pieces in it, so it is cut"]
    data = TextSet("demo", ["a", "b"], np.array([0, 1]), ["neg", "pos"], texts, skipped=["x.csv: row 3: empty text"])
    with caplog.at_level(logging.WARNING):
        stats = text_stats(data, short)
    assert stats == {"skipped_rows": ["x.csv: row 3: empty text"], "truncated": 1, "max_length": 8}
    assert "1 of 2 texts are longer than max_length=8" in caplog.text
    assert text_stats(data, None) == {"skipped_rows": ["x.csv: row 3: empty text"]}  # tf-idf: nothing truncated
