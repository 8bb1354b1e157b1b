"""``predict`` for audio runs: files, and in-memory clips with their sample rate.

Inputs go through the run's saved recipe (mono mix-down, resampling, the centre window; the front end is
inside the network) and the same inference path as ``evaluate``, so predicting the test split's files gives
the probabilities of the run's ``predictions.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from headstart.artifacts.predict import _nonfinite, _refuse_nonfinite, _runtime
from headstart.artifacts.run_dir import LoadedRun
from headstart.data.audio import AudioSet
from headstart.data.loader import SkipLog
from headstart.data.pipeline import eval_loader
from headstart.engine.inference import run_scores
from headstart.errors import HeadstartError

__all__ = ["predict_audio", "audio_inputs"]


def audio_inputs(inputs: Sequence[Any]) -> tuple[list[int], AudioSet | None, list[int], AudioSet | None]:
    """Files (str / Path) and ``(wave, sample_rate)`` pairs ((samples,) or (samples, channels) arrays, mixed to
    mono) as two :class:`AudioSet` s: ``(file positions, files, clip positions, clips)`` (None when empty)."""
    files: list[int] = []
    clips: list[int] = []
    waves: list[np.ndarray] = []
    rates: list[int] = []
    for k, item in enumerate(inputs):
        if isinstance(item, str | Path):
            files.append(k)
            continue
        if not (isinstance(item, tuple) and len(item) == 2):
            raise HeadstartError(
                f"audio input {k} is a {type(item).__name__}; pass a file path or a (waveform, sample_rate) pair, "
                "e.g. model.predict([(wave, 16000)])"
            )
        wave, rate = np.asarray(item[0], dtype=np.float32), item[1]
        if (
            wave.ndim not in (1, 2)
            or wave.size == 0
            or isinstance(rate, bool)
            or not isinstance(rate, int)
            or rate <= 0
        ):
            raise HeadstartError(
                f"audio input {k}: a waveform must be a non-empty (samples,) or (samples, channels) array with an "
                f"integer sample rate in Hz; got shape {wave.shape} and rate {rate!r}"
            )
        clips.append(k)
        waves.append(wave.mean(axis=1 if wave.shape[1] <= wave.shape[0] else 0) if wave.ndim == 2 else wave)
        rates.append(rate)
    zeros = lambda n: np.zeros(n, dtype=np.int64)  # noqa: E731  # targets: predict has none
    by_path = None
    if files:
        by_path = AudioSet("predict", [str(inputs[k]) for k in files], zeros(len(files)), [""],
                           paths=[Path(inputs[k]) for k in files])  # fmt: skip
    in_memory = None
    if clips:
        in_memory = AudioSet("predict", [f"input {k}" for k in clips], zeros(len(clips)), [""], waves=waves,
                             rates=np.asarray(rates, dtype=np.int64))  # fmt: skip
    return files, by_path, clips, in_memory


def predict_audio(run: LoadedRun, inputs: Sequence[Any], batch_size: int | None = None) -> list[dict[str, Any]]:
    """One record per input, in input order: ``path`` (or ``input`` for an in-memory clip) and the task's fields
    (``label`` and ``probabilities`` for classes). An unreadable or missing file gets ``label: None`` and an
    ``error`` field instead of stopping the batch."""
    if run.modality != "audio":
        raise HeadstartError(f"{str(run.path)!r} is a {run.modality} model; pass it {run.modality} inputs, not audio")
    files, by_path, clips, in_memory = audio_inputs(inputs)
    records: list[dict[str, Any]] = [{} for _ in inputs]
    runtime = _runtime(run)
    model = runtime.model(run.model)
    for positions, data in ((files, by_path), (clips, in_memory)):
        if data is None:
            continue
        skips = SkipLog()
        loader = eval_loader(data, np.arange(len(data)), run.recipe, batch_size or run.config.train.batch_size)
        scores, _, index = run_scores(model, loader, runtime, run.recipe, skips, "predicting", run.task)
        if bad := _nonfinite(scores):
            raise _refuse_nonfinite(run, bad)
        for k, position in enumerate(positions):
            records[position] = {"path": data.name(k)} if data.paths is not None else {"input": data.name(k)}
        for row, pos in zip(scores, index, strict=True):
            records[positions[int(pos)]].update(run.task.record(row, run.labels, run.manifest.get("threshold")))
        for k in sorted(set(range(len(data))) - {int(p) for p in index}):
            reason = skips.items.get(data.name(k), f"{data.name(k)}: cannot be read")
            records[positions[k]].update(label=None, probabilities=None, error=reason)
    return records
