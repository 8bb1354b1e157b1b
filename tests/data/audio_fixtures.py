"""Small real audio files for the audio tests: sines and noise written with soundfile, and spoken words."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

ESPEAK = shutil.which("espeak-ng")


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine at half scale, (samples,) or (samples, channels) with each channel a little quieter."""
    t = np.arange(round(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    if channels == 1:
        return wave.astype(np.float32)
    return np.stack([wave * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)


def noise(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).uniform(-1, 1, round(seconds * rate))).astype(np.float32)


def write(path: Path, wave: np.ndarray, rate: int, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, rate, subtype=subtype)
    return path


def write_broken(folder: Path) -> dict[str, Path]:
    """An empty file, a WAV with a header and no samples, and a text file named .wav."""
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    zero = write(folder / "zero.wav", np.zeros(0, dtype=np.float32), 16000)
    text = folder / "notes.wav"
    text.write_text("these are my notes, not audio\n")
    return {"empty": empty, "zero": zero, "text": text}


def animal_folder(root: Path) -> Path:
    """``root/{bird,frog}/``: 3 readable clips each (22.05 and 44.1 kHz, mono and stereo, int16 and float)
    and, in frog/, the three broken files."""
    write(root / "bird" / "a.wav", tone(0.5, 22050, 880), 22050, "PCM_16")
    write(root / "bird" / "b.flac", tone(0.25, 44100, 660, channels=2), 44100, "PCM_16")
    write(root / "bird" / "deep" / "c.wav", tone(1.0, 44100, 1000), 44100, "FLOAT")
    write(root / "frog" / "a.wav", noise(0.5, 22050, 1), 22050, "PCM_16")
    write(root / "frog" / "b.ogg", noise(0.4, 44100, 2), 44100)
    write(root / "frog" / "c.wav", tone(0.3, 44100, 120, channels=2), 44100, "FLOAT")
    write_broken(root / "frog")
    return root


def speak(path: Path, word: str, speed: int = 150) -> Path:
    """A real spoken word (espeak-ng, 22.05 kHz mono); the caller skips when :data:`ESPEAK` is None."""
    assert ESPEAK is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ESPEAK, "-v", "en-us", "-s", str(speed), "-w", str(path), word], check=True, capture_output=True)
    return path
