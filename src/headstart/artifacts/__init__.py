"""Artifacts: run directories (save / load) and their use (evaluate, predict)."""

from headstart.artifacts.predict import SPLIT_CHOICES, Evaluation, evaluate_run, predict_files, predict_texts
from headstart.artifacts.run_dir import LoadedRun, RunFiles, load_run, write_run

__all__ = [
    "SPLIT_CHOICES",
    "Evaluation",
    "LoadedRun",
    "RunFiles",
    "evaluate_run",
    "load_run",
    "predict_files",
    "predict_texts",
    "write_run",
]
