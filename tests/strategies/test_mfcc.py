import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.linear_model import LogisticRegression, Ridge

from headstart.backbones.audio_recipe import AudioRecipe
from headstart.backbones.mfcc import MfccClassifier, MfccRecipe, mfcc_features
from headstart.data.audio import AudioSet, clear_memo
from headstart.data.mfcc import make_mfcc_loader, mfcc_matrix
from headstart.errors import HeadstartError
from headstart.strategies.mfcc import MfccFit, fit_mfcc
from headstart.tasks import get_task

RATE = 16000
AUDIO = AudioRecipe(sample_rate=RATE, clip_samples=RATE)  # 1 s windows at 16 kHz


def _tone(rng: np.random.RandomState, hz: float, rate: int) -> np.ndarray:
    """A decaying tone of 0.6..1.4 s with a random phase, loudness and decay, plus noise."""
    t = np.arange(int(rate * rng.uniform(0.6, 1.4))) / rate
    decay = np.exp(-t * rng.uniform(2, 6))
    wave = rng.uniform(0.2, 0.6) * decay * np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
    return (wave + 0.01 * rng.randn(len(t))).astype(np.float32)


def _write(folder: Path, pitches: list[float], seed: int) -> list[Path]:
    """One WAV per pitch; every third at 22.05 kHz (resampled by the loader)."""
    rng = np.random.RandomState(seed)
    paths = []
    for k, hz in enumerate(pitches):
        rate = 22050 if k % 3 == 0 else RATE
        paths.append(folder / f"clip{k:03d}.wav")
        sf.write(paths[-1], _tone(rng, hz, rate), rate)
    return paths


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> AudioSet:
    """Two classes, low (~220 Hz) and high (~1760 Hz) tones, 20 clips each, alternating; one broken file last."""
    folder = tmp_path_factory.mktemp("tones")
    rng = np.random.RandomState(1)
    y = np.arange(40) % 2
    paths = _write(folder, [float(rng.uniform(200, 240) * (8 if c else 1)) for c in y], seed=0)
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    clear_memo()
    ids, files = [p.name for p in paths] + ["broken.wav"], [*paths, folder / "broken.wav"]
    return AudioSet("tones", ids, np.append(y, 0), ["low", "high"], paths=files)


def _fit(data: AudioSet, task_name: str = "classification") -> tuple[MfccFit, np.ndarray]:
    """The baseline fitted on clips 0..23 (C chosen on 24..31) with the task's head; returns it and the test rows."""
    idx = np.arange(len(data))
    task = get_task(task_name).bind(data.targets[idx[:24]])
    head = lambda x, y, xv, yv: task.sparse_head(x, y, xv, yv, data.labels)  # noqa: E731
    return fit_mfcc(data, idx[:24], idx[24:32], AUDIO, task.num_outputs(data.labels), head), idx[32:]


def _logits(fit: MfccFit, data: AudioSet, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs, kept = [], []
    for batch in make_mfcc_loader(data, index, fit.recipe, 4):
        with torch.inference_mode():
            xs.append(fit.model(batch.x).numpy())
        kept.append(batch.index.numpy())
    return np.concatenate(xs), np.concatenate(kept)


def test_baseline_separates_two_pitches_on_held_out_clips(tones: AudioSet) -> None:
    fit, test = _fit(tones)
    assert fit.C in [h["C"] for h in fit.history] and len(fit.history) > 1
    assert all("val_accuracy" in h for h in fit.history) and fit.skipped == []
    logits, kept = _logits(fit, tones, test)
    assert logits.shape == (len(test) - 1, 2) and kept.tolist() == test[:-1].tolist()  # the broken clip is left out
    assert (logits.argmax(1) == tones.targets[kept]).mean() > 0.9
    assert isinstance(fit.model, MfccClassifier) and fit.model.get_classifier() is fit.model.head
    x_train, _, _ = mfcc_matrix(tones, np.arange(24), fit.recipe)  # the torch module is scikit-learn's model
    clf = LogisticRegression(C=fit.C, max_iter=2000).fit(fit.recipe.standardize(x_train), tones.targets[:24])
    expected = clf.predict_proba(fit.recipe.standardize(mfcc_matrix(tones, kept, fit.recipe)[0]))
    np.testing.assert_allclose(torch.from_numpy(logits).softmax(-1).numpy(), expected, atol=1e-4)


def test_regression_head_predicts_the_pitch_in_octaves(tmp_path: Path) -> None:
    octaves = np.random.RandomState(2).uniform(0, 3, 40)  # the target: octaves above 220 Hz
    paths = _write(tmp_path, list(220 * 2**octaves), seed=3)
    data = AudioSet("pitch", [p.name for p in paths], octaves.astype(np.float32), [], paths=paths)
    fit, test = _fit(data, "regression")
    assert fit.model.head.weight.shape == (1, 80) and fit.C in [h["C"] for h in fit.history]
    logits, kept = _logits(fit, data, test)
    task = get_task("regression").bind(data.targets[:24])
    values = task.scores(torch.from_numpy(logits)).numpy()[:, 0]  # back in octaves
    r2 = 1 - np.mean((values - octaves[kept]) ** 2) / np.var(octaves[kept])
    assert r2 > 0.6  # 24 training clips; 0.79 here
    z = (octaves[:24] - octaves[:24].mean()) / octaves[:24].std()  # ridge on the standardized target, as the task
    ridge = Ridge(alpha=1 / fit.C).fit(fit.recipe.standardize(mfcc_matrix(data, np.arange(24), fit.recipe)[0]), z)
    expected = ridge.predict(fit.recipe.standardize(mfcc_matrix(data, kept, fit.recipe)[0]))
    np.testing.assert_allclose(values, expected * octaves[:24].std() + octaves[:24].mean(), atol=1e-4)


def test_loader_batches_are_the_standardized_matrix_rows(tones: AudioSet) -> None:
    recipe = MfccRecipe.from_audio(AUDIO)
    index = np.arange(30, 41)  # the broken clip (40) is last
    x, kept, skipped = mfcc_matrix(tones, index, recipe)
    assert x.shape == (10, 80) and x.dtype == np.float32 and kept.tolist() == list(range(30, 40))
    assert len(skipped) == 1 and skipped[0].startswith(str(tones.paths[40]) + ": ")  # type: ignore[index]
    fitted = recipe.with_stats(x.mean(0), x.std(0))
    batches = list(make_mfcc_loader(tones, index, fitted, 4))
    assert [len(b.index) for b in batches] == [4, 4, 2] and [b.skipped for b in batches][:2] == [[], []]
    assert batches[-1].skipped == skipped
    np.testing.assert_allclose(torch.cat([b.x for b in batches]).numpy(), fitted.standardize(x), rtol=1e-6)
    assert torch.cat([b.y for b in batches]).tolist() == tones.targets[kept].tolist()
    assert torch.cat([b.x for b in batches]).dtype == torch.float32


def test_unreadable_training_clip_is_skipped_by_name(tones: AudioSet) -> None:
    idx = np.arange(len(tones))
    train = np.append(idx[:24], 40)
    fit = fit_mfcc(tones, train, idx[24:32], AUDIO, 2)
    assert len(fit.skipped) == 1 and "broken.wav: " in fit.skipped[0]
    with pytest.raises(HeadstartError, match="none of the 1 validation clips could be read"):
        fit_mfcc(tones, idx[:24], idx[40:], AUDIO, 2)


def test_features_have_the_documented_shape_and_are_finite() -> None:
    recipe = MfccRecipe.from_audio(AUDIO)
    assert (recipe.n_fft, recipe.hop_length, recipe.n_mfcc, recipe.n_mels) == (1024, 512, 20, 64)
    assert MfccRecipe.from_audio(AudioRecipe(sample_rate=44100, clip_samples=44100)).n_fft == 2048  # ~46 ms
    rng = np.random.RandomState(0)
    for wave in (_tone(rng, 440, RATE)[:RATE], np.zeros(RATE, np.float32)):
        f = mfcc_features(wave, recipe)
        assert f.shape == (80,) and f.dtype == np.float32 and np.isfinite(f).all()
    short = MfccRecipe(RATE, 1100, n_mfcc=13, n_fft=256, hop_length=256)
    for samples in (300, 1100):  # 2 frames (no delta window fits), 5 frames (a 5-frame window)
        f = mfcc_features(rng.randn(samples).astype(np.float32), short)
        assert f.shape == (52,) and np.isfinite(f).all() and (f[39:].any() == (samples == 1100))
    f = mfcc_features(_tone(rng, 440, RATE)[:RATE], recipe)
    assert (f[20:40] >= 0).all() and (f[60:] >= 0).all()  # the std halves
    with pytest.raises(ValueError, match="NaN or infinite"):
        mfcc_features(np.full(RATE, np.nan, np.float32), recipe)


def test_recipe_round_trips_through_json(tones: AudioSet) -> None:
    fit, _ = _fit(tones)
    d = json.loads(json.dumps(fit.recipe.to_dict()))
    assert d["kind"] == "mfcc" and d["modality"] == "audio" and d["num_features"] == 80 and len(d["mean"]) == 80
    assert MfccRecipe.from_dict(d) == fit.recipe


def test_check_batch_warns_about_non_finite_features() -> None:
    recipe = MfccRecipe.from_audio(AUDIO)
    x = torch.zeros(2, 80)
    x[0, 3] = float("nan")
    assert "1 of 160 MFCC features" in (recipe.check_batch(x) or "")
    assert recipe.check_batch(torch.zeros(2, 80)) is None


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("sample_rate", True, "an integer in 1000..384000"),
        ("clip_samples", 8.5, "an integer number of samples"),
        ("n_mfcc", 65, "an integer in 1..n_mels (64)"),
        ("n_fft", 0, "an integer in 16..65536"),
        ("hop_length", 4096, "an integer in 1..n_fft (1024)"),
        ("fmin", 9000, "a frequency in [0, rate / 2)"),
        ("fmax", 16000, "null or Hz in (fmin, rate / 2]"),
        ("mean", [0.0] * 79, "a list of 80 numbers"),
        ("std", [0.0] * 80, "a list of 80 numbers > 0"),
        ("n_mels", None, "an integer in 1..512"),
        ("std", "missing", "is missing"),
    ],
)
def test_recipe_refuses_bad_values_naming_the_key(key: str, value: object, expected: str) -> None:
    good = MfccRecipe.from_audio(AUDIO).with_stats(np.zeros(80), np.ones(80)).to_dict()
    assert MfccRecipe.from_dict(good).fitted
    bad = {k: v for k, v in good.items() if k != key} if value == "missing" else {**good, key: value}
    with pytest.raises(HeadstartError, match=rf"recipe\.{key}\b.*") as err:
        MfccRecipe.from_dict(bad)
    assert expected in str(err.value)
