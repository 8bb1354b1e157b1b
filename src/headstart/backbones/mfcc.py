"""The MFCC "backbone" of the audio ``scratch`` baseline: its recipe (how a clip becomes a vector of MFCC and
delta statistics, standardized with the training mean and std) and its model (a linear head, a torch module so
it is saved, loaded and used for ``predict`` like every other run). It is fitted by
:func:`headstart.strategies.mfcc.fit_mfcc`; :func:`headstart.data.mfcc.mfcc_matrix` computes the features of a
labelled set.

The clip window is the one the neural backbones see (the run's :class:`~headstart.backbones.audio_recipe.AudioRecipe`:
rate and clip length); the MFCC settings are the speech / music classics: 20 coefficients from 64 mel bands,
a ~46 ms window and a ~23 ms hop (librosa's 2048 / 1024 samples at 44.1 kHz), the bands up to Nyquist.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from headstart.backbones.recipe import MISMATCH, is_int, is_number, recipe_field
from headstart.errors import HeadstartError

if TYPE_CHECKING:
    from headstart.backbones.audio_recipe import AudioRecipe

__all__ = ["MfccRecipe", "MfccClassifier", "mfcc_features", "N_MFCC", "WINDOW_SECONDS"]

logger = logging.getLogger(__name__)

N_MFCC = 20  # coefficients per frame (librosa's default; 13 is the speech classic, 20 keeps more timbre)
N_MELS = 64  # mel bands the cepstrum is taken of
WINDOW_SECONDS = 0.046  # FFT window (~2048 samples at 44.1 kHz); the hop is half of it


@dataclass(frozen=True)
class MfccRecipe:
    """How a clip becomes the (F,) feature vector of :class:`MfccClassifier`, F = 4 * n_mfcc."""

    kind: ClassVar[str] = "mfcc"
    modality: ClassVar[str] = "audio"  # it reads audio clips

    sample_rate: int  # Hz; clips are resampled to it (the backbone recipe's rate)
    clip_samples: int  # samples per clip after centre crop / zero padding (the backbone recipe's window)
    n_mfcc: int = N_MFCC  # cepstral coefficients per frame
    n_fft: int = 1024  # FFT size and window length in samples
    hop_length: int = 512  # samples between frames
    n_mels: int = N_MELS  # mel bands (>= n_mfcc)
    fmin: float = 0.0  # lowest band edge (Hz)
    fmax: float | None = None  # highest band edge (Hz); None = sample_rate / 2
    mean: tuple[float, ...] = field(default=(), repr=False)  # (F,) training mean of each feature; () before fitting
    std: tuple[float, ...] = field(default=(), repr=False)  # (F,) training std of each feature (> 0)

    def __post_init__(self) -> None:
        if self.n_mfcc > self.n_mels:
            raise HeadstartError(f"n_mfcc={self.n_mfcc} needs at least as many mel bands (n_mels={self.n_mels})")
        if len(self.mean) not in (0, self.num_features) or len(self.std) != len(self.mean):
            raise HeadstartError(
                f"the MFCC standardization has {len(self.mean)} means and {len(self.std)} stds; "
                f"both must be {self.num_features} (4 x n_mfcc) once fitted"
            )

    @classmethod
    def from_audio(cls, audio: AudioRecipe, n_mfcc: int = N_MFCC, n_mels: int = N_MELS) -> MfccRecipe:
        """The MFCC recipe for the clips a backbone recipe makes: same rate and window, a ~46 ms FFT window
        (the power of two nearest to it) and half of it as hop.

        >>> from headstart.backbones.audio_recipe import AudioRecipe
        >>> r = MfccRecipe.from_audio(AudioRecipe(sample_rate=16000, clip_samples=160000))
        >>> r.n_fft, r.hop_length, r.num_features
        (1024, 512, 80)
        """
        n_fft = 2 ** round(math.log2(WINDOW_SECONDS * audio.sample_rate))
        return cls(audio.sample_rate, audio.clip_samples, n_mfcc, n_fft, n_fft // 2, n_mels)

    @property
    def num_features(self) -> int:
        """F: mean and std over time of each coefficient and of its delta."""
        return 4 * self.n_mfcc

    @property
    def fitted(self) -> bool:
        return len(self.mean) == self.num_features

    def with_stats(self, mean: np.ndarray, std: np.ndarray) -> MfccRecipe:
        """This recipe with the training standardization (F,) each."""
        return replace(self, mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std))

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """Raw feature rows (n, F) -> (x - mean) / std, float32 (n, F)."""
        if not self.fitted:
            raise HeadstartError("this MFCC recipe has no training mean / std yet; fit it (fit_mfcc) first")
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        return ((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        d = {**asdict(self), "mean": list(self.mean), "std": list(self.std)}
        extra = {"num_features": self.num_features, "clip_seconds": self.clip_samples / self.sample_rate}
        return {"kind": self.kind, "modality": self.modality, **d, **extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MfccRecipe:
        """A recipe read back from a run, every value checked (a bad value names ``recipe.KEY``)."""
        integer = lambda lo, hi: lambda v: is_int(v) and lo <= v <= hi  # noqa: E731
        rate = recipe_field(d, "sample_rate", integer(1000, 384_000), "an integer in 1000..384000 (Hz)")
        clip = recipe_field(d, "clip_samples", integer(16, 384_000 * 60), "an integer number of samples (<= 60 s)")
        n_mels = recipe_field(d, "n_mels", integer(1, 512), "an integer in 1..512")
        n_mfcc = recipe_field(d, "n_mfcc", integer(1, n_mels), f"an integer in 1..n_mels ({n_mels})")
        n_fft = recipe_field(d, "n_fft", integer(16, 65536), "an integer in 16..65536")
        hop = recipe_field(d, "hop_length", integer(1, n_fft), f"an integer in 1..n_fft ({n_fft})")
        nyquist = rate / 2
        fmin = recipe_field(d, "fmin", lambda v: is_number(v) and 0 <= v < nyquist, "a frequency in [0, rate / 2)")
        fmax = recipe_field(
            d, "fmax", lambda v: v is None or (is_number(v) and fmin < v <= nyquist), "null or Hz in (fmin, rate / 2]"
        )
        n = 4 * n_mfcc
        mean = recipe_field(d, "mean", lambda v: _numbers(v, n), f"a list of {n} numbers (the training mean)")
        std = recipe_field(d, "std", lambda v: _numbers(v, n) and min(v) > 0, f"a list of {n} numbers > 0")
        fmax = None if fmax is None else float(fmax)
        stats = (tuple(float(v) for v in mean), tuple(float(v) for v in std))
        return cls(rate, clip, n_mfcc, n_fft, hop, n_mels, float(fmin), fmax, *stats)

    def check_batch(self, x: torch.Tensor) -> str | None:
        """A warning (also logged) when the first batch of standardized features (B, F) holds NaN or inf."""
        x = x.detach()
        bad = int(x.numel() - torch.isfinite(x).sum().item())
        if not bad:
            return None
        problem = f"{bad} of {x.numel()} MFCC features of the first batch are NaN or infinite; check the clips"
        logger.warning("%s: %s", MISMATCH, problem)
        return problem


def _numbers(value: Any, n: int) -> bool:
    return isinstance(value, list) and len(value) == n and all(is_number(v) for v in value)


def mfcc_features(wave: np.ndarray, recipe: MfccRecipe) -> np.ndarray:
    """One clip's raw (unstandardized) MFCC statistics.

    ``wave``: (S,) float mono samples at ``recipe.sample_rate`` (already cropped / padded to the clip window).
    The MFCCs (n_mfcc, T) and their deltas (n_mfcc, T) (librosa ``feature.mfcc`` and ``feature.delta``, a
    9-frame window, narrower for clips of fewer frames) are summarised over time: returns (F,) float32,
    F = 4 * n_mfcc, laid out as [mean(mfcc), std(mfcc), mean(delta), std(delta)], n_mfcc values each.
    Raises ``ValueError`` for a wave with NaN or infinite samples.
    """
    import librosa

    y = np.asarray(wave, dtype=np.float32)
    if not np.isfinite(y).all():
        raise ValueError(f"{int(y.size - np.isfinite(y).sum())} of {y.size} samples are NaN or infinite")
    m = librosa.feature.mfcc(
        y=y,
        sr=recipe.sample_rate,
        n_mfcc=recipe.n_mfcc,
        n_fft=recipe.n_fft,
        hop_length=recipe.hop_length,
        n_mels=recipe.n_mels,
        fmin=recipe.fmin,
        fmax=recipe.fmax,
    )  # (n_mfcc, T)
    frames = m.shape[1]
    width = min(9, frames if frames % 2 else frames - 1)  # an odd window no longer than the clip
    d = librosa.feature.delta(m, width=width) if width >= 3 else np.zeros_like(m)  # (n_mfcc, T)
    return np.concatenate([m.mean(1), m.std(1), d.mean(1), d.std(1)]).astype(np.float32)


class MfccClassifier(nn.Module):
    """Standardized MFCC statistics (B, F) -> linear head (B, K)."""

    def __init__(self, num_features: int, num_outputs: int):
        super().__init__()
        self.num_features = num_features
        self.head = nn.Linear(num_features, num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()  # (B, F): the features are computed (and standardized) by the loader

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return feats if pre_logits else self.head(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head
