"""Audio examples in a report: a log-mel spectrogram image and an ``<audio>`` player per clip, both as
``data:`` URIs, so the report stays one self-contained file.

A clip is any object with ``wave`` ((samples,) float32 in [-1, 1]) and ``sample_rate`` (Hz); the player
gets at most ``MAX_SECONDS`` at no more than ``PLAYER_RATE`` as 16-bit PCM WAV (about 100 kB per clip).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

__all__ = ["is_clip", "spectrogram_image", "wav_data_uri", "MAX_SECONDS", "PLAYER_RATE"]

MAX_SECONDS = 3.0  # seconds of each clip embedded in the report
PLAYER_RATE = 16_000  # Hz of the embedded players (enough to hear what went wrong)


def is_clip(x: Any) -> bool:
    """Does the report example ``x`` hold audio (a waveform and its rate)?"""
    return hasattr(x, "wave") and hasattr(x, "sample_rate")


def spectrogram_image(wave: np.ndarray, sample_rate: int, n_mels: int = 64) -> np.ndarray:
    """(n_mels, frames) uint8 image of the clip's log-mel spectrogram (dB, 80 dB range), low bands at the bottom."""
    import librosa

    y = np.asarray(wave, dtype=np.float32)[: int(MAX_SECONDS * sample_rate)]
    n_fft = min(2048, max(256, 1 << int(np.log2(0.046 * sample_rate))))
    mel = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels)
    db = librosa.power_to_db(mel, ref=float(mel.max()) if mel.max() > 0 else 1.0, top_db=80.0)  # (n_mels, T), <= 0
    return np.flipud(np.clip((db + 80.0) / 80.0 * 255.0, 0, 255)).astype(np.uint8)


def wav_data_uri(wave: np.ndarray, sample_rate: int) -> str:
    """A ``data:audio/wav`` URI of the clip's first seconds, resampled down to ``PLAYER_RATE`` when higher."""
    import soundfile
    import soxr

    y = np.asarray(wave, dtype=np.float32)[: int(MAX_SECONDS * sample_rate)]
    rate = sample_rate
    if rate > PLAYER_RATE:
        y, rate = soxr.resample(y, rate, PLAYER_RATE).astype(np.float32), PLAYER_RATE
    buf = io.BytesIO()
    soundfile.write(buf, np.clip(y, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
