"""Audio decoding (``data/audio.py``) and audio DATA arguments (``data/audio_sources.py``) on small real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from headstart.data.audio import (
    AudioSet,
    UnreadableAudio,
    fit_length,
    read_audio,
    resample,
    resample_notice,
)
from headstart.data.audio_sources import is_audio_source, load_audio
from headstart.data.targets import LABEL_SET_SEPARATOR
from headstart.errors import HeadstartError

from .audio_fixtures import ESPEAK, animal_folder, noise, speak, tone, write, write_broken

# --- decoding ---------------------------------------------------------------------------------------------


def test_read_audio_mixes_int16_stereo_to_float32_mono(tmp_path: Path) -> None:
    stereo = tone(0.1, 22050, 440, channels=2)  # right channel at 0.8 x the left
    wave, rate = read_audio(write(tmp_path / "s.wav", stereo, 22050, "PCM_16"))
    assert rate == 22050 and wave.dtype == np.float32 and wave.shape == (2205,)
    np.testing.assert_allclose(wave, stereo.mean(axis=1), atol=2 / 32768)  # 16-bit quantization


def test_read_audio_float_and_flac(tmp_path: Path) -> None:
    x = noise(0.2, 44100)
    wave, rate = read_audio(write(tmp_path / "f.wav", x, 44100, "FLOAT"))
    assert rate == 44100 and np.array_equal(wave, x)
    wave, rate = read_audio(write(tmp_path / "f.flac", x, 48000, "PCM_24"))
    assert rate == 48000 and np.abs(wave - x).max() < 1e-6


@pytest.mark.parametrize(
    ("kind", "reason"), [("empty", "empty file (0 bytes)"), ("zero", "zero-length audio"), ("text", "cannot decode")]
)
def test_read_audio_refuses_broken_files(tmp_path: Path, kind: str, reason: str) -> None:
    path = write_broken(tmp_path)[kind]
    with pytest.raises(UnreadableAudio) as err:
        read_audio(path)
    assert str(err.value).startswith(f"{path}: {reason}") and "re-export" in str(err.value)


def test_read_audio_refuses_nan_samples(tmp_path: Path) -> None:
    x = tone(0.1, 8000)
    x[10:13] = np.nan
    path = write(tmp_path / "nan.wav", x, 8000, "FLOAT")
    with pytest.raises(UnreadableAudio, match=r"nan\.wav: 3 of 800 samples are NaN or infinite; replace them"):
        read_audio(path)


def test_resample_keeps_pitch_and_sets_length() -> None:
    x = tone(1.0, 22050, 440)
    y = resample(x, 22050, 16000)
    assert y.dtype == np.float32 and len(y) == 16000
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * 16000 / len(y)
    assert abs(peak_hz - 440) <= 1
    assert resample(x, 22050, 22050) is x


def test_fit_length_crops_centre_or_offset_and_pads_at_the_end() -> None:
    x = np.arange(10, dtype=np.float32)
    assert fit_length(x, 4).tolist() == [3, 4, 5, 6]
    assert fit_length(x, 4, offset=6).tolist() == [6, 7, 8, 9]
    assert fit_length(x, 13).tolist() == [*range(10), 0, 0, 0]
    assert fit_length(x, 10).tolist() == x.tolist()
    with pytest.raises(ValueError, match="offset=7 must be in 0..6"):
        fit_length(x, 4, offset=7)


def test_in_memory_clips_memo_and_fingerprint() -> None:
    def clips(level: float) -> AudioSet:
        waves = [np.full(800, level, np.float32), np.full(400, -level, np.float32)]
        rates = np.array([8000, 16000])
        return AudioSet("<memory>", ["memory:0", "memory:1"], np.array([0, 1]), ["a", "b"], waves=waves, rates=rates)

    quiet, loud = clips(0.1), clips(0.5)
    assert quiet.fingerprint() != loud.fingerprint()
    first = quiet.load(0, 16000)
    assert len(first) == 1600 and len(quiet.load(1, 16000)) == 400
    first[:] = 9  # the memo hands out copies
    np.testing.assert_allclose(quiet.load(0, 16000)[100:-100], 0.1, atol=1e-3)
    np.testing.assert_allclose(loud.load(0, 16000)[100:-100], 0.5, atol=1e-3)  # same ids, other clips
    assert quiet.durations().tolist() == [0.1, 0.025]
    assert quiet.name(1) == "memory:1"
    clip = quiet.example(1)  # what a report shows: the clip at its own rate
    assert clip.sample_rate == int(quiet.rates[1]) and clip.wave.dtype == np.float32
    assert resample_notice(quiet, 16000) == "1 of 2 clips are not at 16000 Hz (8000 Hz: 1) and are resampled"


# --- folders ----------------------------------------------------------------------------------------------


def test_class_folder_skips_broken_files_by_name(tmp_path: Path) -> None:
    data = load_audio(str(animal_folder(tmp_path / "animals")))
    assert data.labels == ["bird", "frog"] and data.layout == "folders" and data.given_split is None
    assert data.class_counts() == {"bird": 3, "frog": 3}
    assert data.ids[:3] == ["bird/a.wav", "bird/b.flac", "bird/deep/c.wav"]
    assert sorted(Path(m.split(":")[0]).name for m in data.skipped) == ["empty.wav", "notes.wav", "zero.wav"]
    assert data.rates is not None and data.rates.tolist() == [22050, 44100, 44100, 22050, 44100, 44100]
    np.testing.assert_allclose(data.durations(), [0.5, 0.25, 1.0, 0.5, 0.4, 0.3])
    assert [len(data.load(i, 16000)) for i in range(len(data))] == [8000, 4000, 16000, 8000, 6400, 4800]
    assert resample_notice(data, 44100) == "2 of 6 clips are not at 44100 Hz (22050 Hz: 2) and are resampled"
    assert resample_notice(data.subset(np.array([1, 2])), 44100) is None
    assert data.name(0) == str(tmp_path / "animals" / "bird" / "a.wav")


def test_split_folders_give_the_split(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        for label in ("yes", "no"):
            for k in range(n):
                write(tmp_path / split / label / f"{k}.wav", noise(0.1, 16000, k), 16000)
    data = load_audio(str(tmp_path))
    assert data.labels == ["no", "yes"] and data.layout == "folders"
    assert data.given_split is not None
    assert {s: int((data.given_split == s).sum()) for s in ("train", "val", "test")} == {
        "train": 6,
        "val": 2,
        "test": 4,
    }
    assert data.ids[0] == "train/no/0.wav"
    sub = data.subset(np.flatnonzero(data.given_split == "test"))
    assert len(sub) == 4 and set(sub.given_split) == {"test"} and sub.rates is not None and len(sub.rates) == 4


def test_split_folders_refuse_a_class_missing_from_train(tmp_path: Path) -> None:
    write(tmp_path / "train" / "yes" / "a.wav", noise(0.1, 16000), 16000)
    write(tmp_path / "test" / "maybe" / "a.wav", noise(0.1, 16000), 16000)
    with pytest.raises(HeadstartError, match="class.*maybe appear in val/test .* add training clips"):
        load_audio(str(tmp_path))


def test_folder_errors_name_the_fix(tmp_path: Path) -> None:
    write(tmp_path / "a" / "yes" / "x.wav", noise(0.1, 16000), 16000)
    (tmp_path / "a" / "no").mkdir()
    with pytest.raises(HeadstartError, match=r"class folder\(s\) no in .* hold no audio files .*add clips or remove"):
        load_audio(str(tmp_path / "a"))
    write_broken(tmp_path / "b" / "no")
    write(tmp_path / "b" / "yes" / "x.wav", noise(0.1, 16000), 16000)
    with pytest.raises(HeadstartError, match="no file in class folder.* no .* can be read .*empty file"):
        load_audio(str(tmp_path / "b"))
    write(tmp_path / "c" / "x.wav", noise(0.1, 16000), 16000)
    with pytest.raises(HeadstartError, match="no class subfolders; lay it out as"):
        load_audio(str(tmp_path / "c"))
    with pytest.raises(HeadstartError, match="does not exist; pass a folder"):
        load_audio(str(tmp_path / "nowhere"))


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    root = animal_folder(tmp_path)
    before = load_audio(str(root)).fingerprint()
    assert load_audio(str(root)).fingerprint() == before
    path = root / "bird" / "a.wav"
    write(path, tone(0.5, 22050, 500), 22050, "PCM_24")
    os.utime(path, ns=(1, 1))  # also a new mtime on coarse file systems
    after = load_audio(str(root))
    assert after.fingerprint() != before
    assert np.abs(after.load(0, 22050) - tone(0.5, 22050, 500)).max() < 1e-5  # not the memo's old clip


# --- tables -----------------------------------------------------------------------------------------------


def _clips(folder: Path) -> list[Path]:
    return [
        write(folder / "clips" / "one.wav", tone(0.2, 22050, 300), 22050, "PCM_16"),
        write(folder / "clips" / "two.flac", tone(0.3, 44100, 600, channels=2), 44100),
        write(folder / "clips" / "three.wav", noise(0.2, 16000), 16000, "FLOAT"),
        write(folder / "clips" / "four.aiff", noise(0.1, 16000, 3), 16000),
    ]


def test_csv_with_relative_paths_split_and_numeric_labels(tmp_path: Path) -> None:
    _clips(tmp_path)
    write_broken(tmp_path / "clips")
    table = tmp_path / "tables" / "clips.csv"
    table.parent.mkdir()
    table.write_text(
        "path,label,split\n../clips/one.wav,1.5,train\n../clips/two.flac,2,train\n../clips/empty.wav,3,val\n"
        "../clips/three.wav,0.25,val\n,4,test\n../clips/four.aiff,1.5,test\n"
    )
    data = load_audio(str(table))
    assert data.layout == "table" and data.labels == ["0.25", "1.5", "2"]  # strings; the task parses values
    assert data.ids == ["clips.csv:row 1", "clips.csv:row 2", "clips.csv:row 4", "clips.csv:row 6"]
    assert data.given_split is not None and data.given_split.tolist() == ["train", "train", "val", "test"]
    assert data.skipped[0] == "clips.csv: row 5: empty 'path' cell (no audio file)"
    assert data.skipped[1].startswith(f"{tmp_path / 'tables' / '../clips/empty.wav'}: empty file")
    assert data.rates is not None and data.rates.tolist() == [22050, 44100, 16000, 16000]


def test_tsv_keeps_joined_label_sets_and_other_columns(tmp_path: Path) -> None:
    files = _clips(tmp_path)
    table = tmp_path / "clips.tsv"
    table.write_text("file\ttags\n" + "".join(f"{f}\t{t}\n" for f, t in zip(files, ["a|b", "b", "", "a"], strict=True)))
    data = load_audio(str(table), path_column="file", label_column="tags", empty_labels=True)
    assert data.labels == ["", "a", "a|b", "b"]  # "a|b" as written: the multi-label task splits it
    with pytest.raises(HeadstartError, match="row 3 has an empty label"):
        load_audio(str(table), path_column="file", label_column="tags")
    with pytest.raises(
        HeadstartError, match=r"no 'path' and no 'label' column \(found: file, tags\).*rename your columns"
    ):
        load_audio(str(table))


def test_jsonl_label_lists(tmp_path: Path) -> None:
    files = _clips(tmp_path)
    labels = [["dog", "bark"], ["dog"], [], "cat"]
    table = tmp_path / "clips.jsonl"
    lines = [
        json.dumps({"path": str(f.relative_to(tmp_path)), "label": lab}) for f, lab in zip(files, labels, strict=True)
    ]
    table.write_text("\n".join(lines) + "\n")
    data = load_audio(str(table), empty_labels=True)
    both = "dog" + LABEL_SET_SEPARATOR + "bark"  # a list joined as the text reader joins it
    assert data.labels == ["", "cat", "dog", both]
    assert [data.labels[t] for t in data.targets] == [both, "dog", "", "cat"]
    assert data.ids == ["clips.jsonl:line 1", "clips.jsonl:line 2", "clips.jsonl:line 3", "clips.jsonl:line 4"]


def test_table_errors_name_the_fix(tmp_path: Path) -> None:
    _clips(tmp_path)
    table = tmp_path / "t.csv"
    table.write_text("path,label\nclips/one.wav,a\nclips/gone.wav,b\n")
    with pytest.raises(
        HeadstartError, match=r"lists 1 file\(s\) that do not exist, e.g. t.csv:row 2: 'clips/gone.wav'"
    ):
        load_audio(str(table))
    table.write_text("path,label\nclips,a\n")
    with pytest.raises(HeadstartError, match=r"folder\(s\) instead of audio files"):
        load_audio(str(table))
    table.write_text("")
    with pytest.raises(HeadstartError, match="is empty; an audio table needs a header line such as path,label"):
        load_audio(str(table))
    write_broken(tmp_path / "bad")
    table.write_text("path,label\nbad/empty.wav,a\nbad/notes.wav,b\n")
    with pytest.raises(HeadstartError, match=r"every clip of .* was skipped \(2\): .*empty\.wav: empty file"):
        load_audio(str(table))


# --- which sources are audio ------------------------------------------------------------------------------


def test_is_audio_source_claims_audio_only(tmp_path: Path) -> None:
    animals = animal_folder(tmp_path / "animals")
    write(tmp_path / "split" / "train" / "yes" / "a.flac", noise(0.1, 16000), 16000)
    (tmp_path / "images" / "cat").mkdir(parents=True)
    for k in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / "cat" / f"{k}.png")
    (tmp_path / "images.csv").write_text("path,label\nimages/cat/0.png,cat\nimages/cat/1.png,cat\n")
    (tmp_path / "texts.csv").write_text("text,label\nwhat a sound,pos\nnoise again,neg\n")
    (tmp_path / "texts.jsonl").write_text('{"text": "a.wav is a file name", "label": "x"}\n')
    (tmp_path / "audio.csv").write_text("path,label\nanimals/bird/a.wav,bird\nanimals/frog/b.ogg,frog\n")
    (tmp_path / "audio.jsonl").write_text('{"path": "animals/bird/a.wav", "label": ["bird"]}\n')
    (tmp_path / "sounds.csv").write_text("clip,label\nanimals/bird/a.wav,bird\n")
    claimed = {name: is_audio_source(str(tmp_path / name)) for name in sorted(os.listdir(tmp_path))}
    assert claimed == {
        "animals": True,
        "audio.csv": True,
        "audio.jsonl": True,
        "images": False,
        "images.csv": False,
        "sounds.csv": False,
        "split": True,
        "texts.csv": False,
        "texts.jsonl": False,
    }
    assert is_audio_source(str(tmp_path / "sounds.csv"), audio_column="clip")
    assert is_audio_source(str(animals / "bird" / "a.wav")) is False
    assert is_audio_source("builtin:drums") and not is_audio_source("builtin:tweets")
    assert not is_audio_source("builtin:elpv") and not is_audio_source(str(tmp_path / "nowhere"))


# --- speech -----------------------------------------------------------------------------------------------


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (`apt-get install espeak-ng`)")
def test_spoken_words(tmp_path: Path) -> None:
    for word in ("stop", "go"):
        for speed in (120, 180):
            speak(tmp_path / word / f"{speed}.wav", word, speed)
    data = load_audio(str(tmp_path))
    assert data.labels == ["go", "stop"] and data.class_counts() == {"go": 2, "stop": 2}
    assert data.rates is not None and set(data.rates.tolist()) == {22050}
    seconds = data.durations()
    assert ((seconds > 0.2) & (seconds < 2.0)).all()
    assert seconds[0] > seconds[1] and seconds[2] > seconds[3]  # 120 words/min is slower than 180
    for i in range(len(data)):
        wave = data.load(i, 16000)
        assert abs(len(wave) - seconds[i] * 16000) <= 1
        assert np.sqrt(np.mean(wave**2)) > 0.01  # speech, not silence
    assert resample_notice(data, 16000) == "4 of 4 clips are not at 16000 Hz (22050 Hz: 4) and are resampled"
    assert data.paths is not None and sf.info(str(data.paths[0])).channels == 1
