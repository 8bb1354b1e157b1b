"""Per-epoch training checkpoints, written atomically and read back without unpickling code.

``RUN/checkpoint/`` holds ``model.safetensors``, ``best.safetensors`` (weights of the best epoch so
far), ``optimizer.pt`` (tensors and numbers only: read with ``weights_only=True``), ``rng.safetensors``
and ``state.json`` (epoch, step, strategy phase by group name, history, config). A new checkpoint
is built beside the old one and swapped in, so a kill at any moment leaves one complete checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from headstart._atomic import atomic_dir
from headstart.config import RunConfig
from headstart.errors import HeadstartError

__all__ = [
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "has_checkpoint",
    "capture_rng",
    "restore_rng",
    "data_identity",
    "check_same_data",
    "CHECKPOINT_DIR",
    "damaged_checkpoint",
    "interrupted_message",
]

CHECKPOINT_DIR = "checkpoint"
PREVIOUS_DIR = ".checkpoint.old"  # the previous checkpoint, present only while a new one is swapped in
# state.json: what Trainer.restore and runner.resume read, with the JSON types they need
STATE_KEYS: dict[str, type | tuple[type, ...]] = {
    "epoch": int,
    "step": int,
    "trainable": list,
    "unfrozen_at": dict,
    "pending": dict,
    "plateau": (dict, type(None)),
    "best_key": (list, type(None)),
    "best_epoch": int,
    "history": list,
    "seconds": (int, float),
    "config": dict,
}
RNG_KEYS = ("torch", "loader", "numpy_keys", "numpy_pos", "python")
DATA_KEYS = {"n", "classes", "split_sizes", "examples", "splits"}  # see data_identity


@dataclass
class Checkpoint:
    model: dict[str, torch.Tensor]  # current weights
    best: dict[str, torch.Tensor] | None  # weights of the best validation epoch so far
    optimizer: dict[str, Any]  # optimizer.state_dict()
    rng: dict[str, torch.Tensor]  # RNG states as uint8 tensors
    state: dict[str, Any]  # JSON-serializable trainer state (epoch, step, phase, history, config, ...)


def capture_rng(loader_generator: torch.Generator) -> dict[str, torch.Tensor]:
    np_state: tuple[Any, ...] = tuple(np.random.get_state())
    py_state = json.dumps(random.getstate()).encode()
    out = {
        "torch": torch.get_rng_state(),
        "loader": loader_generator.get_state(),
        "numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.uint32).view(np.uint8).copy()),
        "numpy_pos": torch.tensor([np_state[2]], dtype=torch.int64),
        "python": torch.frombuffer(bytearray(py_state), dtype=torch.uint8),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def restore_rng(rng: dict[str, torch.Tensor], loader_generator: torch.Generator) -> None:
    torch.set_rng_state(rng["torch"])
    loader_generator.set_state(rng["loader"])
    keys = rng["numpy_keys"].numpy().view(np.uint32)
    np.random.set_state(("MT19937", keys, int(rng["numpy_pos"][0]), 0, 0.0))
    state = json.loads(bytes(rng["python"].numpy()).decode())
    random.setstate((state[0], tuple(state[1]), state[2]))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_checkpoint(run_dir: Path, ckpt: Checkpoint) -> Path:
    """Write ``run_dir/checkpoint`` atomically (build beside, then swap)."""
    target = run_dir / CHECKPOINT_DIR
    with atomic_dir(target, previous=run_dir / PREVIOUS_DIR) as tmp:
        save_file(_contiguous(ckpt.model), str(tmp / "model.safetensors"))
        if ckpt.best is not None:
            save_file(_contiguous(ckpt.best), str(tmp / "best.safetensors"))
        torch.save(ckpt.optimizer, tmp / "optimizer.pt")
        save_file(_contiguous(ckpt.rng), str(tmp / "rng.safetensors"))
        (tmp / "state.json").write_text(json.dumps(ckpt.state))
    return target


def _readable_checkpoint(run_dir: Path) -> Path | None:
    """``run_dir/checkpoint``, or the previous one if a kill hit the swap; None when there is neither."""
    for name in (CHECKPOINT_DIR, PREVIOUS_DIR):
        if (run_dir / name / "state.json").is_file():
            return run_dir / name
    return None


def has_checkpoint(run_dir: Path) -> bool:
    """True when ``run_dir`` holds an interrupted run that ``load_checkpoint`` can continue."""
    return _readable_checkpoint(run_dir) is not None


def interrupted_message(run_dir: Path) -> str:
    """What an interrupted run left in ``run_dir`` and the command that continues from it."""
    if has_checkpoint(run_dir):
        return (
            f"interrupted; the last epoch's checkpoint is in {run_dir / CHECKPOINT_DIR}. "
            f"Continue with: headstart train --resume {run_dir}"
        )
    return f"interrupted before the first checkpoint; nothing to resume in {run_dir}. Run the same command again"


def load_checkpoint(run_dir: Path) -> Checkpoint:
    """Read ``run_dir/checkpoint`` (or the previous one, if a kill hit the swap).

    Every file is checked: a damaged checkpoint (a cut copy, a full disk, a hand edit) is a
    :class:`HeadstartError` that names the file and says how to start over, never a traceback.
    """
    path = _readable_checkpoint(run_dir)
    if path is None:
        raise HeadstartError(
            f"{str(run_dir)!r} holds no training checkpoint to resume; pass the --out folder of an interrupted "
            "`headstart train` (finished runs need no resume)"
        )
    best = path / "best.safetensors"
    rng = _tensors(path, "rng.safetensors")
    missing = [k for k in RNG_KEYS if k not in rng]
    if missing:
        raise damaged_checkpoint(path, f"rng.safetensors lacks the random state(s) {', '.join(missing)}")
    return Checkpoint(
        model=_tensors(path, "model.safetensors"),
        best=_tensors(path, best.name) if best.is_file() else None,
        optimizer=_optimizer(path),
        rng=rng,
        state=_state(path),
    )


def damaged_checkpoint(path: Path, problem: str) -> HeadstartError:
    """The error for an unreadable checkpoint at ``path`` (``RUN/checkpoint``): what is wrong and how to start over."""
    run = path.parent
    return HeadstartError(
        f"the training checkpoint in {path} is damaged: {problem}. The run cannot be resumed; to start over, "
        f"delete {path} (or the whole folder {run}) and train again, or train into another --out"
    )


def _tensors(path: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path / name))
    except (SafetensorError, OSError) as exc:
        raise damaged_checkpoint(path, f"{name} cannot be read ({exc})") from exc


def _optimizer(path: Path) -> dict[str, Any]:
    """``optimizer.pt``, unpickled with ``weights_only=True`` (tensors and numbers, never code)."""
    try:
        state = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise damaged_checkpoint(path, f"optimizer.pt cannot be read ({str(exc).splitlines()[0]})") from exc
    if not isinstance(state, dict) or not {"state", "param_groups"} <= set(state):
        raise damaged_checkpoint(path, "optimizer.pt holds no optimizer state (no 'state' / 'param_groups')")
    return state


def _state(path: Path) -> dict[str, Any]:
    """``state.json`` with every key the trainer reads, of the right JSON type, and a valid config."""
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise damaged_checkpoint(path, f"state.json is not valid JSON ({exc})") from exc
    if not isinstance(state, dict):
        raise damaged_checkpoint(path, "state.json does not hold a JSON object")
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise damaged_checkpoint(path, f"state.json lacks the key(s) {', '.join(missing)}")
    for key, kind in STATE_KEYS.items():
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise damaged_checkpoint(path, f"state.json {key}={_short(state[key])} has the wrong type")
    data = state.get("data")  # absent in checkpoints written before the data identity was recorded
    if data is not None and not (isinstance(data, dict) and DATA_KEYS <= set(data)):
        raise damaged_checkpoint(
            path, f"state.json data={_short(data)} lacks the data identity ({', '.join(sorted(DATA_KEYS))})"
        )
    try:
        RunConfig.from_dict(state["config"])
    except HeadstartError as exc:
        raise damaged_checkpoint(path, f"state.json holds an invalid config ({exc})") from exc
    return state


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def data_identity(images: Any, splits: dict[str, np.ndarray]) -> dict[str, Any]:
    """What a resumed run must find again: the examples (ids, labels, classes) and the splits.

    File contents and modification times are left out on purpose, so that a run copied to another
    machine with its data still resumes.
    """
    h = hashlib.blake2b(digest_size=12)
    h.update("\x1f".join(images.labels).encode())
    h.update("\x1f".join(images.ids).encode())
    h.update(np.asarray(images.targets, dtype=np.int64).tobytes())
    examples = h.hexdigest()
    h = hashlib.blake2b(digest_size=12)
    for name in sorted(splits):
        h.update(name.encode() + np.asarray(splits[name], dtype=np.int64).tobytes())
    return {
        "n": len(images),
        "classes": list(images.labels),
        "split_sizes": {k: len(v) for k, v in splits.items()},
        "examples": examples,
        "splits": h.hexdigest(),
    }


def check_same_data(saved: dict[str, Any] | None, now: dict[str, Any], run_dir: Path | None) -> None:
    """Refuse to resume on other data than the checkpoint's (a silent mix of two datasets otherwise)."""
    if saved is None:  # a checkpoint written before the data identity was recorded
        return
    if saved["examples"] == now["examples"] and saved["splits"] == now["splits"]:
        return
    if saved["classes"] != now["classes"]:
        what = f"the classes were {saved['classes']}, now {now['classes']}"
    elif saved["examples"] != now["examples"]:
        what = f"{saved['n']} examples then, {now['n']} now (or other files / labels)"
    else:
        what = f"the same examples but other splits ({saved['split_sizes']} then, {now['split_sizes']} now)"
    raise HeadstartError(
        f"cannot resume {str(run_dir)!r}: the data changed since the checkpoint: {what}. A resumed run would "
        "continue on other examples than it started with; restore the data as it was, or start a new run "
        "with `headstart train ... --out NEW_FOLDER`"
    )
