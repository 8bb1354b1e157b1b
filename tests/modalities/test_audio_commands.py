"""The other commands on audio through the console script: rank, shift and advise on sound folders, an hf:
wav2vec2-like encoder from a local folder trained, saved and predicted offline, and the report's spectrograms
and players for audio examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from headstart.data.audio import Clip
from headstart.report.examples import gallery
from tests.console import headstart


def _tones(root: Path, pitches: dict[str, float], n: int = 10, rate: int = 16000, seed: int = 0) -> Path:
    """Real decaying tones with noise, one class folder per pitch (``n`` distinct clips each, 0.5 s)."""
    rng = np.random.default_rng(seed)
    t = np.arange(rate // 2) / rate
    for label, pitch in pitches.items():
        (root / label).mkdir(parents=True)
        for i in range(n):
            f = pitch * (1 + rng.uniform(-0.03, 0.03))
            wave = 0.4 * np.exp(-4 * t) * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(len(t))
            soundfile.write(root / label / f"{i}.wav", wave.astype(np.float32), rate)
    return root


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tones(tmp_path_factory.mktemp("tones") / "clips", {"low": 150.0, "mid": 600.0, "high": 2400.0})


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialized wav2vec2 saved to a folder with its feature extractor (what hf: loads)."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = tmp_path_factory.mktemp("w2v")
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, conv_dim=(32, 32),
        conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(folder)
    return folder


def test_rank_orders_audio_backbones_for_audio_data(tones: Path) -> None:
    result = headstart("rank", str(tones), "--backbones", "aisfx,resemblyzer", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    ranked = rows["ranking"] if isinstance(rows, dict) else rows
    assert {r["backbone"] for r in ranked} == {"aisfx", "resemblyzer"}


def test_shift_and_advise_work_on_audio(tones: Path, tmp_path: Path) -> None:
    other = _tones(tmp_path / "other", {"low": 150.0, "mid": 600.0, "high": 2400.0}, rate=22050, seed=1)
    shift = headstart("shift", str(tones), str(other), "--backbone", "aisfx", "--format", "json")
    assert shift.returncode == 0, shift.stderr
    assert "proxy_a_distance" in shift.stdout or "a_distance" in shift.stdout
    advise = headstart("advise", str(tones), "--backbones", "aisfx", "--format", "json")
    assert advise.returncode == 0, advise.stderr
    assert "aisfx" in advise.stdout


def test_hf_audio_encoder_trains_saves_and_predicts_offline(tones: Path, tiny_wav2vec2: Path, tmp_path: Path) -> None:
    run = tmp_path / "w2v"
    args = ["train", str(tones), "--backbone", f"hf:{tiny_wav2vec2}", "--strategy", "finetune", "--epochs", "1"]
    result = headstart(*args, "--out", str(run), "--set", "train.batch_size=8")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((run / "headstart.json").read_text())
    assert manifest["recipe"]["frontend"] == "waveform" and manifest["recipe"]["normalize"] == "zscore"
    assert (run / "encoder" / "config.json").is_file()  # the run rebuilds without the original folder
    clip = str(next((tones / "high").glob("*.wav")))
    records = json.loads(headstart("predict", str(run), clip, "--format", "json").stdout)
    assert records[0]["path"] == clip and set(records[0]["probabilities"]) == {"high", "low", "mid"}


def test_report_shows_audio_examples_as_spectrograms_with_players() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    clips = {"a": Clip((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate), "b": None}
    body, kind = gallery(["a", "b"], [0, 1], clips.get, lambda i: "kick → snare", ["id"], lambda i: [i], set())
    assert kind == "clips"
    assert body.count("data:image/png;base64,") == 1 and body.count('<audio controls preload="none"') == 1
    assert "data:audio/wav;base64," in body


def test_plan_shows_the_audio_layer_groups(tones: Path) -> None:
    result = headstart("plan", str(tones), "--backbone", "resemblyzer", "--strategy", "progressive")
    assert result.returncode == 0, result.stderr
    groups = [line.split("│")[1].strip() for line in result.stdout.splitlines() if line.startswith("│")]
    assert groups == ["lstm.0", "lstm.1", "lstm.2", "proj", "head"]
