"""Audio runs the way users run them: the console script on real drum one-shots (Debian's hydrogen kits), the
Python API on files and in-memory clips, the MFCC scratch baseline, every kind of strategy, the preprocessing
mismatch warning, resampling and the first-batch checks, and refusals."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile

import headstart as hs
from headstart.backbones.audio_recipe import check_waveforms
from tests.console import headstart, refused

DRUMS = Path("/usr/share/hydrogen/data/drumkits")
needs_drums = pytest.mark.skipif(not DRUMS.is_dir(), reason="Debian hydrogen-drumkits is not installed (make setup)")
CLASSES = ("kick", "snare", "hi-hat")
PER_CLASS = 10


@pytest.fixture(scope="module")
def drums_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real one-shots of three drum classes (10 each, from several kits) as a path,label CSV of absolute paths."""
    if not DRUMS.is_dir():
        pytest.skip("Debian hydrogen-drumkits is not installed (make setup)")
    from headstart.data.audio_sources import load_audio

    drums = load_audio("builtin:drums")
    rows = []
    for name in CLASSES:
        k = drums.labels.index(name)
        picks = np.flatnonzero(drums.targets == k)[:: max(1, int((drums.targets == k).sum()) // PER_CLASS)][:PER_CLASS]
        assert drums.paths is not None
        rows += [(str(drums.paths[i]), name) for i in picks]
    out = tmp_path_factory.mktemp("drums") / "drums.csv"
    with out.open("w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return out


def _predictions(run: Path) -> list[dict[str, str]]:
    with (run / "predictions.csv").open() as f:
        return list(csv.DictReader(f))


def _files(table: Path) -> dict[str, str]:
    """Example id (``drums.csv:row N``) -> its audio file."""
    from headstart.data.audio_sources import load_audio

    data = load_audio(str(table))
    return {data.ids[i]: data.name(i) for i in range(len(data))}


@needs_drums
def test_probe_run_predicts_and_evaluates_what_it_recorded(drums_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "probe"
    result = headstart("train", str(drums_csv), "--backbone", "aisfx", "--strategy", "linear-probe", "--out", str(run))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((run / "headstart.json").read_text())
    assert manifest["recipe"]["kind"] == "audio" and manifest["recipe"]["sample_rate"] == 44100
    assert manifest["data"]["audio"]["seconds"]["max"] > 0 and manifest["labels"] == sorted(CLASSES)
    rows, files = _predictions(run), _files(drums_csv)
    records = json.loads(headstart("predict", str(run), *[files[r["id"]] for r in rows], "--format", "json").stdout)
    assert len(records) == len(rows) and all(set(r) >= {"path", "label", "probabilities"} for r in records)
    for r, saved in zip(records, rows, strict=True):  # the saved recipe, the same inference path: the run's numbers
        assert r["label"] == saved["pred"]
        assert r["probabilities"][saved["pred"]] == pytest.approx(float(saved["confidence"]), abs=1e-4)
    out = tmp_path / "eval.json"
    assert headstart("evaluate", str(run), "--out", str(out)).returncode == 0
    metrics, evaluated = json.loads((run / "metrics.json").read_text()), json.loads(out.read_text())
    assert evaluated["macro_f1"] == pytest.approx(metrics["macro_f1"], abs=1e-6)


@needs_drums
def test_python_api_predicts_files_and_in_memory_clips_alike(drums_csv: Path, tmp_path: Path) -> None:
    model = hs.fit(str(drums_csv), backbone="aisfx", strategy="linear-probe", out=tmp_path / "api").load()
    first = _files(drums_csv)[_predictions(tmp_path / "api")[0]["id"]]
    wave, rate = soundfile.read(first, dtype="float32", always_2d=True)
    by_file, by_array, stereo = model.predict([first, (wave[:, 0], rate), (np.repeat(wave[:, :1], 2, 1), rate)])
    assert by_file["label"] == by_array["label"] == stereo["label"]
    for label, p in by_file["probabilities"].items():
        assert by_array["probabilities"][label] == pytest.approx(p, abs=1e-5)
    with pytest.raises(hs.HeadstartError, match="sample_rate"):
        model.predict([wave[:, 0]])  # an array without its rate is refused with the fix


@needs_drums
def test_scratch_is_mfcc_statistics_and_predicts_like_any_run(drums_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "scratch"
    result = headstart("train", str(drums_csv), "--backbone", "aisfx", "--strategy", "scratch", "--out", str(run))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((run / "headstart.json").read_text())
    assert manifest["recipe"]["kind"] == "mfcc" and "mfcc" in json.dumps(manifest["backbone"])
    rows = _predictions(run)
    records = json.loads(headstart("predict", str(run), _files(drums_csv)[rows[0]["id"]], "--format", "json").stdout)
    assert records[0]["label"] == rows[0]["pred"]


@needs_drums
@pytest.mark.slow
@pytest.mark.parametrize(
    ("backbone", "strategy"), [("aisfx", "lp-ft"), ("aisfx", "progressive"), ("resemblyzer", "finetune")]
)
def test_fine_tuning_strategies_train_audio_backbones(
    drums_csv: Path, tmp_path: Path, backbone: str, strategy: str
) -> None:
    run = tmp_path / strategy
    args = ["train", str(drums_csv), "--backbone", backbone, "--strategy", strategy, "--epochs", "1", "--out", str(run)]
    result = headstart(*args, "--set", "train.batch_size=8")
    assert result.returncode == 0, result.stderr
    assert "macro_f1" in json.loads((run / "metrics.json").read_text())
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert history and all(np.isfinite(h["train_loss"]) for h in history)


@needs_drums
def test_overriding_the_rate_warns_with_both_values_and_resamples(drums_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "22k"
    args = ["train", str(drums_csv), "--backbone", "aisfx", "--strategy", "linear-probe", "--out", str(run)]
    result = headstart(*args, "--set", "preprocess.sample_rate=22050")
    assert result.returncode == 0, result.stderr
    assert (
        "preprocessing mismatch" in result.stderr and "sample_rate=22050" in result.stderr and "44100" in result.stderr
    )
    assert "resampled" in result.stderr  # said once, with the count
    manifest = json.loads((run / "headstart.json").read_text())
    assert manifest["recipe"]["sample_rate"] == 22050 and manifest["data"]["audio"]["resampled"]


def test_first_batch_checks_catch_int16_silence_and_clipping(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    speech_like = (0.1 * rng.standard_normal((4, 16000))).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        assert check_waveforms(__import__("torch").from_numpy(speech_like)) is None
        torch = __import__("torch")
        assert "int16" in (check_waveforms(torch.from_numpy(speech_like * 32767)) or "")
        overshoot = speech_like.copy()
        overshoot[0, :5] = 2.0  # resampling a full-scale drum hit overshoots [-1, 1] a little: not int16
        assert check_waveforms(torch.from_numpy(overshoot)) is None
        assert "silent" in (check_waveforms(torch.zeros(4, 16000)) or "")
        assert "full scale" in (check_waveforms(torch.from_numpy(np.clip(speech_like * 50, -1, 1))) or "")
    assert caplog.text.count("preprocessing mismatch") == 3


def test_audio_folder_with_an_image_backbone_is_refused_with_the_fix(tmp_path: Path) -> None:
    for label, pitch in (("low", 110.0), ("high", 880.0)):
        (tmp_path / "clips" / label).mkdir(parents=True)
        for i in range(8):
            t = np.arange(8000) / 16000
            wave = 0.3 * np.sin(2 * np.pi * pitch * (1 + i / 50) * t)  # distinct clips
            soundfile.write(tmp_path / "clips" / label / f"{i}.wav", wave, 16000)
    result = headstart("train", str(tmp_path / "clips"), "--out", str(tmp_path / "run"))
    refused(result, "audio data", "efficientnet_lite0", "--backbone aisfx")
    assert not (tmp_path / "run").exists()
