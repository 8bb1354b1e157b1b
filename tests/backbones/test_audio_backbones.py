"""Audio backbones against the code they re-implement: the front end against librosa and the packages'
own preprocessing, the aisfx CNN against ``aisfx.models.cnn2d.EmbeddingNet``, the Resemblyzer LSTM against
``VoiceEncoder``, and hf-audio with a tiny wav2vec2 saved to a folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from headstart.backbones import get_backbone
from headstart.backbones.audio import AudioClassifier, create_audio_model, rebuild_audio_model, save_encoder_config
from headstart.backbones.audio_frontend import AudioFrontend, normalize_waveforms
from headstart.backbones.audio_recipe import AISFX_RECIPE, RESEMBLYZER_RECIPE, AudioRecipe
from headstart.backbones.catalog import BackboneSpec
from headstart.backbones.layers import layer_groups
from headstart.errors import HeadstartError

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
PACKAGES = Path(librosa.__file__).parent.parent  # site-packages


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` centre-cropped or zero-padded to ``n`` samples, float32."""
    start = max(0, (len(y) - n) // 2)
    y = y[start : start + n]
    return np.pad(y, (0, n - len(y))).astype(np.float32)


def _tone(rate: int, n: int, seed: int = 0) -> np.ndarray:
    """A decaying 200 Hz tone with its harmonics, and noise: a clip with energy across the spectrum."""
    t = np.arange(n) / rate
    tone = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 6)) * np.exp(-3 * t)
    return (0.3 * tone + 0.02 * np.random.RandomState(seed).randn(n)).astype(np.float32)


def _drum(rate: int, n: int) -> np.ndarray:
    """A real recording: the first wav of the hydrogen drum kits (Debian hydrogen-drumkits), resampled."""
    files = sorted(DRUMKITS.glob("*/*.wav")) if DRUMKITS.is_dir() else []
    if not files:
        pytest.skip(
            "no real recording: /usr/share/hydrogen/data/drumkits is absent (apt-get install hydrogen-drumkits)"
        )
    y, sr = sf.read(files[0], dtype="float32", always_2d=True)
    return _fit(librosa.resample(y.mean(axis=1), orig_sr=sr, target_sr=rate), n)


def _speech(text: str, voice: str, rate: int, n: int, folder: Path) -> np.ndarray:
    """``text`` spoken by espeak-ng's ``voice``, resampled to ``rate`` and fitted to ``n`` samples."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make system-deps installs it)")
    path = folder / f"{voice}-{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    y, sr = sf.read(path, dtype="float32")
    return _fit(librosa.resample(y, orig_sr=sr, target_sr=rate), n)


CLIPS = {"tone": _tone, "drum": _drum}


@pytest.fixture(scope="module")
def aisfx() -> AudioClassifier:
    model, recipe = create_audio_model(get_backbone("aisfx"), num_classes=3)
    assert recipe == AISFX_RECIPE
    return model.eval()


@pytest.fixture(scope="module")
def resemblyzer() -> AudioClassifier:
    model, recipe = create_audio_model(get_backbone("resemblyzer"), num_classes=0)
    assert recipe == RESEMBLYZER_RECIPE
    return model.eval()


@pytest.fixture(scope="module")
def resemblyzer_code() -> Iterator[types.ModuleType]:
    """Resemblyzer's own ``audio`` and ``voice_encoder`` modules. The package imports webrtcvad for its
    silence trimming, which is not used here; a missing webrtcvad is stood in for by an empty module."""
    with pytest.MonkeyPatch.context() as mp:
        if "webrtcvad" not in sys.modules and not _importable("webrtcvad"):
            mp.setitem(sys.modules, "webrtcvad", types.ModuleType("webrtcvad"))
        package = pytest.importorskip("resemblyzer", reason="resemblyzer is not installed (make setup)")
        yield package


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.mark.parametrize("clip", list(CLIPS))
def test_frontend_equals_the_aisfx_librosa_spectrogram(clip: str, tmp_path: Path) -> None:
    pytest.importorskip("aisfx.models.cnn2d", reason="aisfx imports tqdm; install it to compare with its code")
    from aisfx.preprocessing import spectrogram_normalize
    from aisfx.spectrogram.spectrogram_librosa import compute_spectrogram

    y = CLIPS[clip](44_100, AISFX_RECIPE.clip_samples)
    sf.write(tmp_path / "clip.wav", y, 44_100, subtype="FLOAT")
    theirs = compute_spectrogram(str(tmp_path / "clip.wav"), 44_100, 2048, 1024, 96, 0.0, 22_050.0)  # (96, T)
    theirs = spectrogram_normalize(theirs).T  # (T, 96): the (time, frequency) layout EmbeddingNet reads
    ours = AudioFrontend(AISFX_RECIPE)(torch.from_numpy(y)[None])[0].numpy()
    assert ours.shape == theirs.shape == (AISFX_RECIPE.frames, 96) == (100, 96)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("clip", "gain"), [("tone", 0.01), ("tone", 1.0), ("drum", 0.01)])
def test_frontend_equals_resemblyzer_mels(clip: str, gain: float, resemblyzer_code: types.ModuleType) -> None:
    from resemblyzer.audio import normalize_volume, wav_to_mel_spectrogram

    y = CLIPS[clip](16_000, RESEMBLYZER_RECIPE.clip_samples) * gain  # quiet: raised to -30 dBFS; loud: kept
    theirs = wav_to_mel_spectrogram(normalize_volume(y, -30, increase_only=True))  # (T, 40)
    ours = AudioFrontend(RESEMBLYZER_RECIPE)(torch.from_numpy(y)[None])[0].numpy()
    assert ours.shape == theirs.shape == (160, 40)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6 * theirs.max())
    plain = librosa.feature.melspectrogram(y=y, sr=16_000, n_fft=400, hop_length=160, n_mels=40).T
    unscaled = AudioFrontend(replace(RESEMBLYZER_RECIPE, normalize="none"))(torch.from_numpy(y)[None])[0]
    np.testing.assert_allclose(unscaled.numpy(), plain, rtol=1e-4, atol=1e-6 * plain.max())


def test_waveform_normalizations() -> None:
    from transformers import Wav2Vec2FeatureExtractor

    x = torch.from_numpy(np.stack([_tone(16_000, 4000), 0.001 * _tone(16_000, 4000, 1), np.zeros(4000, np.float32)]))
    peak = normalize_waveforms(x, "peak")
    assert torch.allclose(peak[:2].abs().amax(-1), torch.ones(2)) and not peak[2].any()
    dbfs = 20 * torch.log10(normalize_waveforms(x, "rms", -30.0)[:2].pow(2).mean(-1).sqrt())
    assert torch.allclose(dbfs, torch.full((2,), -30.0), atol=1e-3)
    up = normalize_waveforms(x, "rms_up", -30.0)
    assert torch.equal(up[0], x[0]) and up[1].pow(2).mean().sqrt() == pytest.approx(10 ** (-30 / 20), rel=1e-4)
    hf = Wav2Vec2FeatureExtractor(do_normalize=True)(x[:2].numpy(), sampling_rate=16_000).input_values
    np.testing.assert_allclose(normalize_waveforms(x, "zscore")[:2].numpy(), np.stack(hf), atol=2e-5)
    assert torch.isfinite(normalize_waveforms(x, "zscore")).all() and torch.isfinite(up).all()


def test_frontend_is_float32_under_autocast() -> None:
    x = torch.from_numpy(_tone(16_000, RESEMBLYZER_RECIPE.clip_samples))[None]
    frontend = AudioFrontend(RESEMBLYZER_RECIPE)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = frontend(x)
    assert inside.dtype == torch.float32 and torch.equal(inside, frontend(x))
    assert not list(frontend.parameters()) and not frontend.state_dict()  # buffers come from the recipe


def test_aisfx_has_the_package_weights_and_its_embeddings(aisfx: AudioClassifier, tmp_path: Path) -> None:
    cnn2d = pytest.importorskip("aisfx.models.cnn2d", reason="aisfx imports tqdm; install it to compare")
    from aisfx.preprocessing import spectrogram_normalize
    from aisfx.spectrogram.spectrogram_librosa import compute_spectrogram

    state = _aisfx_checkpoint()
    assert torch.equal(aisfx.encoder.blocks[0].conv1.weight, state["conv_block1.conv1.weight"])
    assert torch.equal(aisfx.encoder.blocks[3].bn2.running_var, state["conv_block4.bn2.running_var"])
    original = cnn2d.EmbeddingNet("max", 3, 1, 64).eval()
    original.load_state_dict(state)
    clips = np.stack([_tone(44_100, AISFX_RECIPE.clip_samples, seed) * (seed + 1) for seed in range(2)])
    specs = []
    for i, y in enumerate(clips):
        sf.write(tmp_path / f"{i}.wav", y, 44_100, subtype="FLOAT")
        spec = compute_spectrogram(str(tmp_path / f"{i}.wav"), 44_100, 2048, 1024, 96, 0.0, 22_050.0)
        specs.append(spectrogram_normalize(spec).T)
    with torch.inference_mode():
        theirs = original(torch.from_numpy(np.stack(specs)).float())  # (2, 512)
        ours = aisfx.forward_features(torch.from_numpy(clips))
    assert ours.shape == (2, 512) and aisfx.num_features == 512
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def _aisfx_checkpoint() -> dict[str, torch.Tensor]:
    import numpy

    from headstart.backbones.audio import _numpy_globals

    with torch.serialization.safe_globals(_numpy_globals()):
        state, datasets = torch.load(PACKAGES / "aisfx/models/checkpoint.pth", map_location="cpu", weights_only=True)
    assert isinstance(datasets, dict) and all(isinstance(v[0], numpy.integer) for v in datasets.values())
    return {k.removeprefix("embedding_net."): v for k, v in state.items() if k.startswith("embedding_net.")}


def test_resemblyzer_matches_voice_encoder(resemblyzer: AudioClassifier, resemblyzer_code: types.ModuleType) -> None:
    from resemblyzer.audio import normalize_volume, wav_to_mel_spectrogram
    from resemblyzer.voice_encoder import VoiceEncoder

    original = VoiceEncoder("cpu", verbose=False).eval()
    assert torch.equal(resemblyzer.encoder.lstm.weight_hh_l2, original.lstm.weight_hh_l2)
    assert torch.equal(resemblyzer.encoder.linear.bias, original.linear.bias)
    clips = np.stack([_tone(16_000, RESEMBLYZER_RECIPE.clip_samples, s) * g for s, g in enumerate((0.01, 1.0))])
    mels = np.stack([wav_to_mel_spectrogram(normalize_volume(y, -30, increase_only=True)) for y in clips])
    with torch.inference_mode():
        theirs = original(torch.from_numpy(mels))
        ours = resemblyzer(torch.from_numpy(clips))  # num_classes=0: the embedding itself
    assert ours.shape == (2, 256) and torch.allclose(ours.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_resemblyzer_tells_two_voices_apart(resemblyzer: AudioClassifier, tmp_path: Path) -> None:
    texts = ["The quick brown fox jumps over the lazy dog near the river bank.", "She sells sea shells by the shore."]
    voices = ["en-us+m3", "en-us+f4"]  # espeak-ng: a male and a female variant
    n = RESEMBLYZER_RECIPE.clip_samples
    clips = [_speech(t, v, 16_000, n, tmp_path) for v in voices for t in texts]
    with torch.inference_mode():
        emb = resemblyzer(torch.from_numpy(np.stack(clips)))
    sim = emb @ emb.T
    same, other = torch.stack([sim[0, 1], sim[2, 3]]), sim[:2, 2:]
    assert same.min() > other.max() + 0.15, sim


@pytest.mark.parametrize("name", ["aisfx", "resemblyzer"])
def test_packaged_groups_heads_and_scratch(name: str, aisfx: AudioClassifier, resemblyzer: AudioClassifier) -> None:
    expected = {
        "aisfx": ["block.0", "block.1", "block.2", "block.3", "head"],
        "resemblyzer": ["lstm.0", "lstm.1", "lstm.2", "proj", "head"],
    }[name]
    model, recipe = create_audio_model(get_backbone(name), num_classes=4, pretrained=False, drop_rate=0.5)
    assert recipe == {"aisfx": AISFX_RECIPE, "resemblyzer": RESEMBLYZER_RECIPE}[name]
    groups = layer_groups(model)  # asserts every parameter is in exactly one group
    assert [g.name for g in groups] == expected and groups[-1].params == ("head.weight", "head.bias")
    if name == "resemblyzer":
        assert groups[1].params == tuple(
            f"encoder.lstm.{k}_l1" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
    pretrained = {"aisfx": aisfx, "resemblyzer": resemblyzer}[name]
    assert not torch.equal(next(model.encoder.parameters()), next(pretrained.encoder.parameters()))
    x = torch.from_numpy(np.stack([_tone(recipe.sample_rate, recipe.clip_samples, s) for s in range(2)]))
    model.train()
    assert model(x).shape == (2, 4)
    feats = model.forward_features(x)
    assert not torch.equal(model.forward_head(feats, pre_logits=True), feats)  # dropout while training
    model.eval().reset_classifier(0)
    assert torch.equal(model(x), model.forward_features(x)) and model.architecture == name


def test_rebuilt_packaged_model_loads_the_saved_weights(resemblyzer: AudioClassifier, tmp_path: Path) -> None:
    save_encoder_config(resemblyzer, tmp_path)  # the packaged encoders need no files
    assert list(tmp_path.iterdir()) == []
    rebuilt = rebuild_audio_model("resemblyzer", RESEMBLYZER_RECIPE, 0, tmp_path / "encoder")
    rebuilt.load_state_dict(resemblyzer.state_dict())
    x = torch.from_numpy(_tone(16_000, RESEMBLYZER_RECIPE.clip_samples))[None]
    assert torch.equal(rebuilt.eval()(x), resemblyzer(x))


def test_missing_package_and_unknown_architecture_say_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "aisfx" else real(name, *a))
    with pytest.raises(HeadstartError, match=r"make setup.*pip install --no-deps aisfx==0\.1\.2"):
        create_audio_model(get_backbone("aisfx"))
    spec = BackboneSpec("x", "aisfxx", None, "test", modality="audio")
    with pytest.raises(HeadstartError, match="did you mean aisfx"):
        create_audio_model(spec)


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer wav2vec2 (hidden size 32) and its feature extractor, saved to a folder."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(32, 32),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    torch.manual_seed(0)
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16_000, do_normalize=True).save_pretrained(folder)
    return folder


def test_hf_audio_builds_from_a_folder_and_rebuilds(tiny_wav2vec2: Path, tmp_path: Path) -> None:
    from transformers import Wav2Vec2Model

    spec = get_backbone(f"hf:{tiny_wav2vec2}")
    assert spec.architecture == "hf-audio" and spec.modality == "audio"
    model, recipe = create_audio_model(spec, num_classes=3)
    assert recipe == AudioRecipe(16_000, 32_000, "waveform", "zscore")
    saved = Wav2Vec2Model.from_pretrained(tiny_wav2vec2)
    ours_weight = model.encoder.model.encoder.layers[1].feed_forward.output_dense.weight
    assert torch.equal(ours_weight, saved.encoder.layers[1].feed_forward.output_dense.weight)
    names = [g.name for g in layer_groups(model)]
    assert names == ["feature_extractor", "embeddings", "layer.0", "layer.1", "head"]
    x = torch.from_numpy(np.stack([_tone(16_000, 8000, s) for s in range(2)]))
    model.eval()
    with torch.inference_mode():
        logits, feats = model(x), model.forward_features(x)
    assert logits.shape == (2, 3) and feats.shape == (2, 32) and feats.dtype == torch.float32
    save_encoder_config(model, tmp_path)
    rebuilt = rebuild_audio_model("hf-audio", recipe, 3, tmp_path)
    rebuilt.load_state_dict(model.state_dict())
    with torch.inference_mode():
        assert torch.allclose(rebuilt.eval()(x), logits, atol=1e-6)
    with pytest.raises(HeadstartError, match="no config.json"):
        rebuild_audio_model("hf-audio", recipe, 3, tmp_path / "missing")


def test_hf_audio_reads_do_normalize(tiny_wav2vec2: Path, tmp_path: Path) -> None:
    from transformers import Wav2Vec2FeatureExtractor

    shutil.copytree(tiny_wav2vec2, tmp_path, dirs_exist_ok=True)
    Wav2Vec2FeatureExtractor(sampling_rate=8000, do_normalize=False).save_pretrained(tmp_path)
    model, recipe = create_audio_model(get_backbone(f"hf:{tmp_path}"), pretrained=False)
    assert recipe == AudioRecipe(8000, 16_000, "waveform", "none") and isinstance(model.head, torch.nn.Identity)


def test_hf_audio_refuses_other_audio_models(tiny_wav2vec2: Path, tmp_path: Path) -> None:
    from transformers import WhisperConfig, WhisperFeatureExtractor

    WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1, vocab_size=100).save_pretrained(tmp_path / "w")
    WhisperFeatureExtractor().save_pretrained(tmp_path / "w")
    whisper = BackboneSpec("hf:w", "hf-audio", None, "test", modality="audio", weights_file=str(tmp_path / "w"))
    with pytest.raises(HeadstartError, match=r"model type is 'whisper'.*wav2vec2, .*hubert.*not supported"):
        create_audio_model(whisper)
    (tmp_path / "bare").mkdir()
    shutil.copy(tiny_wav2vec2 / "config.json", tmp_path / "bare")
    bare = replace(whisper, weights_file=str(tmp_path / "bare"))
    with pytest.raises(HeadstartError, match="no preprocessor_config.json"):
        create_audio_model(bare, pretrained=False)


def test_apply_recipe_rebuilds_the_front_end() -> None:
    model, recipe = create_audio_model(get_backbone("aisfx"), num_classes=2, pretrained=False)
    model.apply_recipe(replace(recipe, n_mels=64, sample_rate=22_050, clip_samples=99 * 1024, fmax=11_025.0))
    assert model.frontend.mel_fb.shape == (1025, 64)  # the CNN pools over frequency: any number of bands
    assert model.eval()(torch.from_numpy(_tone(22_050, 99 * 1024))[None]).shape == (1, 2)
