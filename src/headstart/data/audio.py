"""``AudioSet``: a labelled collection of audio clips held as file paths or as in-memory waveforms.

:func:`read_audio` is the one decoder of audio files, for training, evaluation and predict alike: every clip
becomes a float32 mono waveform in [-1, 1] (``soundfile`` scales integer PCM), channels mixed down by their
mean. :func:`resample` (soxr, "HQ") brings it to the recipe's rate and :func:`fit_length` to its length.

Example:
    >>> clip = AudioSet("demo", ["a", "b"], np.array([0, 1]), ["quiet", "loud"],
    ...                 waves=[np.zeros(8000, np.float32), np.ones(4000, np.float32)], rates=np.array([8000, 8000]))
    >>> clip.load(1, 16000).shape, clip.durations().tolist(), clip.class_counts()
    ((8000,), [1.0, 0.5], {'quiet': 1, 'loud': 1})
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import soundfile as sf
import soxr

from headstart.data.targets import target_bytes

__all__ = [
    "AUDIO_EXTENSIONS",
    "MEMO_BYTES",
    "AudioSet",
    "Clip",
    "UnreadableAudio",
    "check_wave",
    "clear_memo",
    "fit_length",
    "probe_audio",
    "read_audio",
    "resample",
    "resample_notice",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
MEMO_BYTES = 512 * 2**20  # decoded + resampled clips kept per process (epochs re-read the same short clips)
REENCODE = "re-export it as WAV or FLAC (e.g. `ffmpeg -i FILE out.wav`) or remove it"
_DECODE_ERRORS = (RuntimeError, OSError, ValueError, EOFError)  # sf.LibsndfileError is a RuntimeError

_memo: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()  # (set fingerprint, index, rate) -> clip
_memo_bytes = 0  # bytes held in _memo


class UnreadableAudio(Exception):
    """An audio file or clip that cannot be decoded ("PATH: reason"); the loaders skip it and name it."""


def probe_audio(path: str | Path) -> tuple[int, int]:
    """(sample rate, frames) from the file's header, without decoding; raises :class:`UnreadableAudio` for an
    empty file, a file soundfile cannot open and a header that declares no samples."""
    try:
        if os.path.getsize(path) == 0:
            raise UnreadableAudio(f"{path}: empty file (0 bytes); {REENCODE}")
        info = sf.info(str(path))
    except _DECODE_ERRORS as exc:
        raise UnreadableAudio(f"{path}: {_reason(exc)}; {REENCODE}") from exc
    if info.frames <= 0:
        raise UnreadableAudio(f"{path}: zero-length audio (the file holds no samples); {REENCODE}")
    return int(info.samplerate), int(info.frames)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode an audio file into a float32 mono waveform ``(samples,)`` at its native rate, and that rate.

    Integer PCM is scaled to [-1, 1] by soundfile; several channels are mixed down by their mean. Raises
    :class:`UnreadableAudio` ("PATH: reason") for an empty or undecodable file, zero-length audio and
    NaN / infinite samples.
    """
    try:
        if os.path.getsize(path) == 0:
            raise UnreadableAudio(f"{path}: empty file (0 bytes); {REENCODE}")
        data, rate = sf.read(str(path), always_2d=True, dtype="float32")  # (samples, channels)
    except _DECODE_ERRORS as exc:
        raise UnreadableAudio(f"{path}: {_reason(exc)}; {REENCODE}") from exc
    return check_wave(data.mean(axis=1, dtype=np.float32), str(path)), int(rate)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    return f"cannot decode ({type(exc).__name__}: {text})" if text else f"cannot decode ({type(exc).__name__})"


def check_wave(wave: np.ndarray, name: str) -> np.ndarray:
    """``wave`` as a contiguous float32 ``(samples,)`` array; :class:`UnreadableAudio` when it is not 1-D, has
    no samples or holds NaN / infinite values."""
    x = np.ascontiguousarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise UnreadableAudio(
            f"{name}: a waveform must be 1-D (samples,), got shape {x.shape}; mix channels down first, "
            "e.g. wave.mean(axis=1) for (samples, channels)"
        )
    if x.size == 0:
        raise UnreadableAudio(f"{name}: zero-length audio (no samples); {REENCODE}")
    bad = int(x.size - np.isfinite(x).sum())
    if bad:
        raise UnreadableAudio(
            f"{name}: {bad} of {x.size} samples are NaN or infinite; replace them (e.g. numpy.nan_to_num) "
            "and save the clip again"
        )
    return x


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``wave`` (float32, ``(samples,)``) from ``rate`` to ``target`` Hz with soxr's "HQ" filter; the same array
    when the rates are equal. The result has ``round(samples * target / rate)`` samples."""
    if rate == target:
        return wave
    return np.asarray(soxr.resample(wave, rate, target, quality="HQ"), dtype=np.float32)


def fit_length(wave: np.ndarray, n: int, offset: int | None = None) -> np.ndarray:
    """Exactly ``n`` samples of ``wave``: a longer clip is cropped to the centre window (``offset`` None) or to
    the window starting at ``offset``; a shorter one is zero-padded at the END, as ``librosa.util.fix_length``
    and the usual audio-classification pipelines do (the onset stays at the start).

    >>> fit_length(np.arange(6, dtype=np.float32), 4).tolist(), fit_length(np.ones(2, np.float32), 4).tolist()
    ([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 0.0, 0.0])
    """
    if n < 1:
        raise ValueError(f"fit_length: n={n} must be at least 1 sample")
    size = len(wave)
    if size < n:
        return np.pad(wave, (0, n - size)).astype(np.float32, copy=False)
    start = (size - n) // 2 if offset is None else offset
    if not 0 <= start <= size - n:
        raise ValueError(f"fit_length: offset={offset} must be in 0..{size - n} for a {size}-sample clip and n={n}")
    return wave[start : start + n]


def resample_notice(data: AudioSet, rate: int) -> str | None:
    """One line on the clips whose native rate is not ``rate`` (they are resampled), or None when all match:
    ``"12 of 754 clips are not at 44100 Hz (22050 Hz: 10, 48000 Hz: 2) and are resampled"``."""
    rates = data.native_rates()
    other = Counter(int(r) for r in rates if int(r) != rate)
    if not other:
        return None
    listed = ", ".join(f"{r} Hz: {n}" for r, n in sorted(other.items()))
    return f"{sum(other.values())} of {len(rates)} clips are not at {rate} Hz ({listed}) and are resampled"


def clear_memo() -> None:
    """Forget the decoded clips this process keeps (tests; a long-lived process after its files changed)."""
    global _memo_bytes
    _memo.clear()
    _memo_bytes = 0


def _remember(key: tuple[str, int, int], clip: np.ndarray) -> None:
    """Keep ``clip`` under ``key``; the least recently used clips go when the memo passes :data:`MEMO_BYTES`."""
    global _memo_bytes
    if clip.nbytes > MEMO_BYTES // 8:  # a long recording: cheaper to decode again than to crowd out the rest
        return
    _memo[key] = clip
    _memo_bytes += clip.nbytes
    while _memo_bytes > MEMO_BYTES:
        _, old = _memo.popitem(last=False)
        _memo_bytes -= old.nbytes


@dataclass(frozen=True)
class Clip:
    """One decoded clip: ``wave`` (samples,) float32 mono in [-1, 1] at ``sample_rate`` Hz."""

    wave: np.ndarray
    sample_rate: int


@dataclass
class AudioSet:
    """Labelled audio clips. Exactly one of ``paths`` / ``waves`` is set."""

    modality: ClassVar[str] = "audio"  # lets the pipeline tell audio sets apart without isinstance

    source: str  # what the user passed (folder, CSV / TSV / JSONL, builtin:NAME, <memory>)
    ids: list[str]  # stable identifier per clip (relative path, "clips.csv:row 3", builtin:drums/KIT/FILE)
    targets: np.ndarray  # (N,) int64 class index into `labels` (a task may re-encode: values, multi-hot rows)
    labels: list[str]  # class names (label strings) in index order
    paths: list[Path] | None = None  # one audio file per clip
    waves: list[np.ndarray] | None = None  # in-memory float32 mono clips (samples,), each at rates[i]
    rates: np.ndarray | None = None  # (N,) int native sample rate per clip (file header, or given with waves)
    given_split: np.ndarray | None = None  # (N,) of "train" / "val" / "test" when the source defines splits
    meta: dict[str, np.ndarray] = field(default_factory=dict)  # extra per-clip columns (e.g. kit)
    skipped: list[str] = field(default_factory=list)  # why files were skipped at load time, one message each
    layout: str = "table"  # folders (the class is the folder name) | table (a label column) | builtin | memory
    _key: str | None = field(default=None, init=False, repr=False, compare=False)  # fingerprint() for the memo

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int, sample_rate: int) -> np.ndarray:
        """Clip ``i`` as float32 mono ``(samples,)`` at ``sample_rate`` (resampled when its native rate differs).

        Decoded clips are kept in a per-process memo (at most :data:`MEMO_BYTES`), since every epoch reads the
        same clips again. Raises :class:`UnreadableAudio`.
        """
        if self._key is None:
            self._key = self.fingerprint()
        key = (self._key, int(i), int(sample_rate))
        clip = _memo.get(key)
        if clip is None:
            wave, rate = self._decode(i)
            clip = resample(wave, rate, sample_rate)
            _remember(key, clip)
        else:
            _memo.move_to_end(key)
        return clip.copy()  # callers may normalise in place; the memo's copy stays as decoded

    def _decode(self, i: int) -> tuple[np.ndarray, int]:
        if self.waves is not None:
            if self.rates is None:
                raise UnreadableAudio(f"{self.ids[i]}: an in-memory clip needs its sample rate (rates)")
            return check_wave(self.waves[i], self.ids[i]), int(self.rates[i])
        assert self.paths is not None, "an AudioSet holds paths or waves"
        return read_audio(self.paths[i])

    def name(self, i: int) -> str:
        """Clip ``i``'s file, or its id for an in-memory clip."""
        return str(self.paths[i]) if self.paths is not None else self.ids[i]

    def example(self, i: int) -> Clip:
        """Clip ``i`` as a report shows it (spectrogram and player): mono, at its own rate."""
        wave, rate = self._decode(i)
        return Clip(wave, rate)

    def subset(self, index: np.ndarray) -> AudioSet:
        """The clips at ``index`` (in that order); ``skipped`` is kept, since it describes the source."""
        index = np.asarray(index, dtype=np.int64)
        return replace(
            self,
            ids=[self.ids[i] for i in index],
            targets=self.targets[index],
            paths=[self.paths[i] for i in index] if self.paths is not None else None,
            waves=[self.waves[i] for i in index] if self.waves is not None else None,
            rates=self.rates[index] if self.rates is not None else None,
            given_split=self.given_split[index] if self.given_split is not None else None,
            meta={k: v[index] for k, v in self.meta.items()},
            skipped=list(self.skipped),
        )

    def fingerprint(self) -> str:
        """Changes whenever a clip, an id, a label or the class list changes (files: size + mtime)."""
        h = hashlib.blake2b(digest_size=16)
        h.update("\x1f".join(self.labels).encode())
        h.update(target_bytes(self.targets))
        h.update("\x1f".join(self.ids).encode())
        if self.waves is not None:
            rates = self.rates if self.rates is not None else np.zeros(len(self.waves), dtype=np.int64)
            for wave, rate in zip(self.waves, rates, strict=True):  # length-prefixed: no two sets collide
                x = np.ascontiguousarray(wave, dtype=np.float32)
                h.update(f"{x.size}@{int(rate)};".encode())
                h.update(x.data)
        else:
            assert self.paths is not None, "an AudioSet holds paths or waves"
            for p in self.paths:
                st = p.stat()
                h.update(f"{st.st_size}:{st.st_mtime_ns};".encode())
        return h.hexdigest()

    def class_counts(self) -> dict[str, int]:
        """Number of clips per class name, in class-index order."""
        counts = np.bincount(self.targets, minlength=len(self.labels))
        return {label: int(c) for label, c in zip(self.labels, counts, strict=True)}

    def native_rates(self) -> np.ndarray:
        """(N,) int64 native sample rate per clip: ``rates``, else read from the files' headers."""
        if self.rates is not None:
            return np.asarray(self.rates, dtype=np.int64)
        assert self.paths is not None, "in-memory clips come with their rates"
        return np.asarray([probe_audio(p)[0] for p in self.paths], dtype=np.int64)

    def durations(self) -> np.ndarray:
        """(N,) float64 seconds per clip, from the file headers (no decoding) or the in-memory lengths."""
        if self.waves is not None:
            lengths = np.asarray([len(w) for w in self.waves], dtype=np.float64)
            return lengths / self.native_rates()
        assert self.paths is not None, "an AudioSet holds paths or waves"
        frames = [probe_audio(p) for p in self.paths]
        return np.asarray([n / r for r, n in frames], dtype=np.float64)
