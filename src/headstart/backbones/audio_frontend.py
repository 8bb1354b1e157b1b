"""The audio front end: per-clip waveform normalization and the (log-)mel spectrogram, as a module.

The front end sits inside every audio network (:class:`headstart.backbones.audio.AudioClassifier`), so a
saved or exported model takes the decoded waveform and carries its preprocessing with it. It has no
trainable parameters; the window and the mel filter bank are buffers built from the recipe (not saved in
the state dict: the recipe, which travels with the run, rebuilds them).

The spectrogram reproduces ``librosa.feature.melspectrogram`` (librosa >= 0.10: centred frames, zero
padding at the edges, periodic Hann window of ``n_fft`` samples, power spectrogram, the filter bank of
``librosa.filters.mel``), then ``log10(log_multiplier * mel + log_offset)`` when the recipe asks for a log,
then the min-max scaling ``(S - spec_min) / (spec_max - spec_min)``. It always runs in float32, autocast or
not: a half-precision power spectrum loses the quiet bands.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from headstart.backbones.audio_recipe import NORMALIZATIONS, AudioRecipe
from headstart.errors import HeadstartError

__all__ = ["AudioFrontend", "mel_filter_bank", "normalize_waveforms"]

# librosa's ``norm`` argument for each AudioRecipe.mel_norm: 1 = each filter's weights sum to one (L1)
_LIBROSA_NORM: dict[str | None, Literal["slaney"] | float | None] = {"unit_sum": 1.0, "slaney": "slaney", None: None}
ZSCORE_EPS = 1e-7  # Wav2Vec2FeatureExtractor's do_normalize: (x - mean) / sqrt(var + 1e-7)


def mel_filter_bank(recipe: AudioRecipe) -> torch.Tensor:
    """The recipe's mel filter bank from ``librosa.filters.mel``, transposed: ``(1 + n_fft // 2, n_mels)``."""
    import librosa

    weights = librosa.filters.mel(
        sr=recipe.sample_rate,
        n_fft=recipe.n_fft,
        n_mels=recipe.n_mels,
        fmin=recipe.fmin,
        fmax=recipe.fmax,
        htk=recipe.mel_scale == "htk",
        norm=_LIBROSA_NORM[recipe.mel_norm],
    )  # (n_mels, 1 + n_fft // 2)
    return torch.from_numpy(weights).float().T.contiguous()


def normalize_waveforms(x: torch.Tensor, how: str, rms_dbfs: float = -30.0) -> torch.Tensor:
    """Per-clip normalization of a ``(B, samples)`` batch; silent (all-zero) clips stay zero.

    ``peak``: ``x / max|x|``. ``rms``: scaled so that ``20 log10(rms(x)) = rms_dbfs``. ``rms_up``: raised to
    ``rms_dbfs`` when quieter, never turned down (Resemblyzer's ``normalize_volume(increase_only=True)``).
    ``zscore``: ``(x - mean) / sqrt(var + 1e-7)``, as ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does
    (over the whole clip, zero padding included). ``none``: unchanged.
    """
    if how == "none":
        return x
    if how == "peak":
        peak = x.abs().amax(dim=-1, keepdim=True)  # (B, 1)
        return x / torch.where(peak > 0, peak, torch.ones_like(peak))
    if how in ("rms", "rms_up"):
        rms = x.pow(2).mean(dim=-1, keepdim=True).sqrt()  # (B, 1)
        gain = math.pow(10.0, rms_dbfs / 20.0) / torch.where(rms > 0, rms, torch.ones_like(rms))
        gain = torch.where(rms > 0, gain, torch.ones_like(gain))
        return x * (gain.clamp(min=1.0) if how == "rms_up" else gain)
    if how == "zscore":
        mean = x.mean(dim=-1, keepdim=True)  # (B, 1)
        var = x.var(dim=-1, unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + ZSCORE_EPS)
    raise HeadstartError(f"unknown waveform normalization {how!r}; choose one of {', '.join(NORMALIZATIONS)}")


class AudioFrontend(nn.Module):
    """Waveforms ``(B, clip_samples)`` in [-1, 1] at ``recipe.sample_rate`` -> what the encoder reads.

    ``frontend="logmel"``: the (optionally log-compressed, min-max scaled) mel spectrogram
    ``(B, frames, n_mels)`` with ``frames = 1 + samples // hop_length``. ``frontend="waveform"``: the
    normalized waveform ``(B, samples)``. Always float32.
    """

    window: torch.Tensor
    mel_fb: torch.Tensor

    def __init__(self, recipe: AudioRecipe):
        super().__init__()
        self.recipe = recipe
        if recipe.frontend == "logmel":
            if recipe.spec_max == recipe.spec_min:
                raise HeadstartError(
                    f"recipe.spec_min and recipe.spec_max are both {recipe.spec_min}; the spectrogram scaling "
                    "(S - spec_min) / (spec_max - spec_min) needs two different values (0 and 1: no scaling)"
                )
            self.register_buffer("window", torch.hann_window(recipe.n_fft, periodic=True), persistent=False)
            self.register_buffer("mel_fb", mel_filter_bank(recipe), persistent=False)

    def extra_repr(self) -> str:
        r = self.recipe
        if r.frontend == "waveform":
            return f"waveform, sample_rate={r.sample_rate}, normalize={r.normalize}"
        return (
            f"logmel, sample_rate={r.sample_rate}, n_fft={r.n_fft}, hop_length={r.hop_length}, n_mels={r.n_mels}, "
            f"normalize={r.normalize}, log_multiplier={r.log_multiplier}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, samples)`` -> ``(B, frames, n_mels)`` (logmel) or ``(B, samples)`` (waveform), float32."""
        if x.dim() != 2:
            raise HeadstartError(f"audio networks take a (batch, samples) tensor of waveforms, got {tuple(x.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            r = self.recipe
            wave = normalize_waveforms(x.float(), r.normalize, r.rms_dbfs)  # (B, S)
            if r.frontend == "waveform":
                return wave
            return self._mel(wave)

    def _mel(self, wave: torch.Tensor) -> torch.Tensor:
        r = self.recipe
        spec = torch.stft(
            wave,
            n_fft=r.n_fft,
            hop_length=r.hop_length,
            win_length=r.n_fft,
            window=self.window.float(),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (B, 1 + n_fft // 2, frames) complex
        power = torch.view_as_real(spec).pow(2).sum(-1)  # (B, F, frames)
        mel = power.transpose(1, 2) @ self.mel_fb.float()  # (B, frames, n_mels)
        if r.log_multiplier is not None:
            mel = torch.log10(mel * r.log_multiplier + r.log_offset)
        if (r.spec_min, r.spec_max) != (0.0, 1.0):
            mel = (mel - r.spec_min) / (r.spec_max - r.spec_min)
        return mel
