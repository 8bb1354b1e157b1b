"""The audio recipe: how a clip must look when it enters an audio network, saved with the run.

A clip is decoded, mixed down to mono, resampled to ``sample_rate`` and cropped or zero-padded to
``clip_samples`` (centre for evaluation, a random window for training when ``random_crop``); the network's
own front end (a module inside it, so every exported graph carries it) then normalizes the waveform and,
for spectrogram encoders, computes the log-mel the checkpoint was trained on. Resolution order as for
images: ``preprocess.*`` override > the checkpoint's recipe; an override of the rate or of the front end
logs a ``preprocessing mismatch`` warning naming both values.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from headstart.backbones.recipe import MISMATCH, is_int, is_number, recipe_field, warn_mismatch

if TYPE_CHECKING:
    import torch

    from headstart.config import PreprocessConfig

__all__ = [
    "AudioRecipe",
    "AISFX_RECIPE",
    "RESEMBLYZER_RECIPE",
    "FRONTENDS",
    "NORMALIZATIONS",
    "resolve_audio_recipe",
    "check_waveforms",
]

logger = logging.getLogger(__name__)

FRONTENDS = ("logmel", "waveform")  # log-mel spectrogram inside the network | the raw waveform (wav2vec2-like)
# per clip: as is | max |x| = 1 | RMS at rms_dbfs | RMS raised to rms_dbfs when below it, never lowered
# (Resemblyzer's normalize_volume(increase_only=True)) | mean 0, std 1
NORMALIZATIONS = ("none", "peak", "rms", "rms_up", "zscore")
MEL_SCALES = ("htk", "slaney")


@dataclass(frozen=True)
class AudioRecipe:
    """How a clip must look when it enters the network (waveform level) and what its front end computes."""

    kind: ClassVar[str] = "audio"
    modality: ClassVar[str] = "audio"

    sample_rate: int  # Hz; clips at another rate are resampled
    clip_samples: int  # samples per example after cropping / zero padding (at sample_rate)
    frontend: str = "logmel"  # logmel | waveform
    normalize: str = "none"  # per-clip waveform normalization before the front end: none | peak | rms | rms_up | zscore
    rms_dbfs: float = -30.0  # normalize=rms: target loudness in dB relative to full scale
    n_fft: int = 2048  # logmel: FFT size (and window length) in samples
    hop_length: int = 1024  # logmel: samples between frames
    n_mels: int = 96  # logmel: mel bands
    fmin: float = 0.0  # logmel: lowest band edge (Hz)
    fmax: float | None = None  # logmel: highest band edge (Hz); None = sample_rate / 2
    mel_scale: str = "htk"  # logmel: htk | slaney mel formula
    mel_norm: str | None = "unit_sum"  # logmel: filter weights: unit_sum (each band sums to 1) | slaney | None
    log_multiplier: float | None = 1e4  # logmel: log10(log_multiplier * mel + log_offset); None = no log (power)
    log_offset: float = 1.0
    spec_min: float = 0.0  # logmel: the spectrogram is scaled to (S - spec_min) / (spec_max - spec_min)
    spec_max: float = 1.0
    random_crop: bool = False  # training only: a random window of clip_samples instead of the centre one

    @property
    def clip_seconds(self) -> float:
        return self.clip_samples / self.sample_rate

    @property
    def frames(self) -> int:
        """Spectrogram frames per clip (centred STFT): ``1 + clip_samples // hop_length``."""
        return 1 + self.clip_samples // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "modality": self.modality, **asdict(self), "clip_seconds": self.clip_seconds}

    def check_batch(self, x: torch.Tensor) -> str | None:
        """The first batch of waveforms against what a decoded clip looks like (see :func:`check_waveforms`)."""
        return check_waveforms(x)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioRecipe:
        """A recipe read back from a run, every value checked (a bad value names ``recipe.KEY``)."""
        number = lambda lo, hi: lambda v: is_number(v) and lo <= v <= hi  # noqa: E731
        integer = lambda lo, hi: lambda v: is_int(v) and lo <= v <= hi  # noqa: E731
        rate = recipe_field(d, "sample_rate", integer(1000, 384_000), "an integer in 1000..384000 (Hz)")
        clip = recipe_field(d, "clip_samples", integer(16, 384_000 * 60), "an integer number of samples (<= 60 s)")
        frontend = recipe_field(d, "frontend", lambda v: v in FRONTENDS, f"one of {', '.join(FRONTENDS)}")
        norm = recipe_field(d, "normalize", lambda v: v in NORMALIZATIONS, f"one of {', '.join(NORMALIZATIONS)}")
        out = cls(int(rate), int(clip), frontend, norm)
        if frontend == "logmel":
            out = replace(
                out,
                n_fft=recipe_field(d, "n_fft", integer(16, 65536), "an integer in 16..65536"),
                hop_length=recipe_field(d, "hop_length", integer(1, 65536), "an integer in 1..65536"),
                n_mels=recipe_field(d, "n_mels", integer(1, 512), "an integer in 1..512"),
                fmin=float(recipe_field(d, "fmin", number(0, rate / 2), "a frequency in [0, sample_rate / 2]")),
                fmax=_optional_float(recipe_field(d, "fmax", lambda v: v is None or number(0, rate)(v), "null or Hz")),
                mel_scale=recipe_field(d, "mel_scale", lambda v: v in MEL_SCALES, "htk or slaney"),
                mel_norm=recipe_field(
                    d, "mel_norm", lambda v: v in (None, "unit_sum", "slaney"), "null, unit_sum or slaney"
                ),
                log_multiplier=_optional_float(
                    recipe_field(d, "log_multiplier", lambda v: v is None or number(1e-12, 1e12)(v), "null or > 0")
                ),
                log_offset=float(recipe_field(d, "log_offset", number(1e-12, 1e6), "a number > 0")),
                spec_min=float(recipe_field(d, "spec_min", number(-1e6, 1e6), "a number")),
                spec_max=float(recipe_field(d, "spec_max", number(-1e6, 1e6), "a number")),
            )
        if "rms_dbfs" in d:
            out = replace(out, rms_dbfs=float(recipe_field(d, "rms_dbfs", number(-120, 0), "a level in dBFS")))
        if "random_crop" in d:
            out = replace(out, random_crop=recipe_field(d, "random_crop", lambda v: isinstance(v, bool), "a bool"))
        return out


def _optional_float(v: Any) -> float | None:
    return None if v is None else float(v)


# preprocess.* keys an audio run reads, and the recipe field each overrides
OVERRIDES = {
    "sample_rate": "sample_rate",
    "n_mels": "n_mels",
    "n_fft": "n_fft",
    "hop_length": "hop_length",
    "fmin": "fmin",
    "fmax": "fmax",
}
WARN_ON = ("sample_rate", "n_mels", "n_fft", "hop_length", "fmin", "fmax")  # the checkpoint learned these


def resolve_audio_recipe(checkpoint: AudioRecipe, overrides: PreprocessConfig) -> AudioRecipe:
    """The checkpoint's recipe with the user's ``preprocess.*`` overrides (clip length, rate, front end,
    random crops); an override of something the checkpoint learned logs a ``preprocessing mismatch``."""
    changes: dict[str, Any] = {}
    for key, name in OVERRIDES.items():
        value = getattr(overrides, key, None)
        if value is not None:
            changes[name] = type(getattr(checkpoint, name) or 0.0)(value) if name != "fmax" else float(value)
    rate = changes.get("sample_rate", checkpoint.sample_rate)
    seconds = getattr(overrides, "clip_seconds", None)
    if seconds is not None:
        changes["clip_samples"] = max(16, round(float(seconds) * rate))
    elif rate != checkpoint.sample_rate:  # same duration at the new rate
        changes["clip_samples"] = round(checkpoint.clip_seconds * rate)
    if overrides.augment:
        changes["random_crop"] = True
    resolved = replace(checkpoint, **changes)
    for name in WARN_ON:
        ours, theirs = getattr(resolved, name), getattr(checkpoint, name)
        if checkpoint.frontend == "waveform" and name != "sample_rate":
            continue
        if ours != theirs:
            warn_mismatch(name, ours, theirs)
    return resolved


# Decoded float audio stays within [-1, 1] up to the overshoot of resampling a full-scale transient (measured up to
# ~2 on drum one-shots resampled to 16 kHz); integer samples passed unscaled reach hundreds or thousands.
INT_RANGE_PEAK = 8.0


def check_waveforms(batch: torch.Tensor) -> str | None:
    """The audio analogue of the image input checks on a (B, samples) batch of decoded clips.

    Decoded audio lies in [-1, 1]: values far beyond mean int16 (or int32) samples were passed without
    scaling; a batch that is all (near) silence means the clips are empty or were scaled twice; many samples
    at full scale mean the recordings clip. Returns the warning (also logged) or None.
    """
    x = batch.detach().float()
    peak = float(x.abs().max()) if x.numel() else 0.0
    problem = None
    if peak > INT_RANGE_PEAK:
        guess = "int16" if peak <= 40_000 else "int32"
        problem = (
            f"waveform samples reach {peak:.0f} but decoded audio lies in [-1, 1]; these look like {guess} samples: "
            f"divide by {'32768' if guess == 'int16' else '2147483648'} (or pass float audio)"
        )
    elif peak < 1e-4:
        problem = (
            f"every clip of the first batch is silent (peak {peak:.2g}); check the files, the crop window "
            "(preprocess.clip_seconds) or a double scaling of the samples"
        )
    else:
        clipped = float((x.abs() >= 0.999).float().mean())
        if clipped > 0.01:
            problem = (
                f"{clipped:.1%} of the first batch's samples sit at full scale: the recordings clip (distorted "
                "input); re-record or lower the gain if you can"
            )
    if problem:
        logger.warning("%s: %s", MISMATCH, problem)
    return problem


# The checkpoints' own recipes (read from the packages' preprocessing code; see backbones/audio.py).
AISFX_RECIPE = AudioRecipe(  # aisfx/spectrogram/spectrogram_librosa.py + preprocessing.py: 100 frames, ~2.3 s
    sample_rate=44100,
    clip_samples=99 * 1024,
    frontend="logmel",
    normalize="peak",
    n_fft=2048,
    hop_length=1024,
    n_mels=96,
    fmin=0.0,
    fmax=22050.0,
    mel_scale="htk",
    mel_norm="unit_sum",
    log_multiplier=1e4,
    log_offset=1.0,
    spec_min=0.0,
    spec_max=9.457798957824707,  # the min-max bounds of the ISMIR paper's spectrograms
)
RESEMBLYZER_RECIPE = AudioRecipe(  # resemblyzer/hparams.py + audio.py: 25 ms windows, 10 ms hop, 40 mels, 160 frames
    sample_rate=16000,
    clip_samples=159 * 160,
    frontend="logmel",
    normalize="rms_up",  # quiet clips raised to -30 dBFS, louder ones kept
    rms_dbfs=-30.0,
    n_fft=400,
    hop_length=160,
    n_mels=40,
    fmin=0.0,
    fmax=None,
    mel_scale="slaney",
    mel_norm="slaney",
    log_multiplier=None,  # the GE2E encoder reads the mel power spectrogram itself
)
