"""``builtin:drums``: the hydrogen kits' one-shot samples in 8 classes, split by kit (``data/audio_builtins.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headstart.data import audio_builtins
from headstart.data.audio import AudioSet
from headstart.data.audio_builtins import DRUMKITS_DIR, KIT_SPLITS, drum_class
from headstart.data.audio_sources import load_audio
from headstart.errors import HeadstartError

needs_kits = pytest.mark.skipif(
    not DRUMKITS_DIR.is_dir(), reason=f"{DRUMKITS_DIR} is missing (`apt-get install hydrogen-drumkits`)"
)

# the module docstring's table (hydrogen-drumkits 0.9.x): class -> (train, val, test)
COUNTS = {
    "clap": (12, 3, 2),
    "cymbal": (77, 2, 45),
    "hi-hat": (74, 10, 41),
    "kick": (29, 13, 12),
    "percussion": (94, 3, 6),
    "snare": (65, 7, 18),
    "stick": (17, 1, 7),
    "tom": (54, 3, 21),
}


@pytest.fixture(scope="module")
def drums() -> AudioSet:
    return load_audio("builtin:drums")


def test_instrument_names_map_to_classes() -> None:
    assert [
        drum_class(name)
        for name in (
            "BassDrum",
            "Snare Rimshot (Pearl Free Floating Maple 14x3.5)",
            "Side OHH",
            'Ride (Custom, Zagrebin 22")',  # "Custom" holds "tom", but not at a word start
            "tomhi2",
            'Crash/Ride Bell (Paiste Rude Crash/Ride 18")',
            "Pearl Side Stick",
            "Dununba1 Bell",
            "redo super opaco",
            "Finger Snaps",
            "Sample: beats_01-10.flac",
            "17",
        )
    ] == ["kick", "snare", "hi-hat", "cymbal", "tom", "cymbal", "stick", "percussion", "snare", None, None, None]


@needs_kits
def test_classes_and_counts_per_split_as_documented(drums: AudioSet) -> None:
    assert drums.labels == sorted(COUNTS) and drums.layout == "builtin" and drums.skipped == []
    assert drums.given_split is not None
    names = np.asarray(drums.labels)[drums.targets]
    counts = {
        label: tuple(int(((names == label) & (drums.given_split == s)).sum()) for s in ("train", "val", "test"))
        for label in drums.labels
    }
    assert counts == COUNTS
    assert len(drums) == 616


@needs_kits
def test_split_by_kit(drums: AudioSet) -> None:
    assert drums.given_split is not None
    kits = drums.meta["kit"]
    assert len(set(kits)) == 14
    for kit in set(kits):
        splits = set(drums.given_split[kits == kit])
        assert splits == {KIT_SPLITS[kit]}, kit  # no kit in two splits
    assert sorted(k for k, s in KIT_SPLITS.items() if s != "train") == [
        "Audiophob",
        "ColomboAcousticDrumkit",
        "ElectricEmpireKit",
        "The Black Pearl 1.0",
        "rumpf_kit_z01_h2",
    ]


@needs_kits
def test_every_id_is_a_real_file_used_once(drums: AudioSet) -> None:
    assert drums.paths is not None and drums.rates is not None
    assert len(set(drums.paths)) == len(drums) == len(set(drums.ids))
    for id_, path, kit in zip(drums.ids, drums.paths, drums.meta["kit"], strict=True):
        assert path.is_file() and id_ == f"builtin:drums/{kit}/{path.relative_to(DRUMKITS_DIR / kit).as_posix()}"
    assert set(drums.rates.tolist()) <= {22050, 44100, 48000}


@needs_kits
def test_clips_decode_at_the_recipe_rate(drums: AudioSet) -> None:
    assert drums.given_split is not None
    picks = [int(np.flatnonzero(drums.given_split == s)[0]) for s in ("train", "val", "test")]
    seconds = drums.durations()[picks]
    for i, s in zip(picks, seconds, strict=True):
        wave = drums.load(i, 16000)
        assert wave.dtype == np.float32 and abs(len(wave) - s * 16000) <= 1 and np.abs(wave).max() > 0.01


def test_missing_package_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_builtins, "DRUMKITS_DIR", tmp_path / "drumkits")
    with pytest.raises(HeadstartError, match="apt-get install hydrogen-drumkits` \\(or `make setup` as root\\)"):
        load_audio("builtin:drums")
