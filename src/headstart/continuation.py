"""Continuing a comparison (``compare --resume``): finished sub-runs are reused, an interrupted one resumes.

Each run folder of a comparison is in one of three states: ``new`` (missing, empty, or killed before its
first checkpoint), ``interrupted`` (it holds a training checkpoint) or ``finished`` (it holds
``headstart.json``). A finished or interrupted one is only taken over when it was made with the same
resolved configuration and on the same examples and splits (:func:`~headstart.engine.checkpoint.data_identity`,
recorded in checkpoints and in ``headstart.json``); anything else is refused, before any work, naming every
difference. A saved config is read as this version reads it (settings added since take their defaults), and a
finished run written before its data was recorded is trained again, with a warning.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from headstart.artifacts.names import MANIFEST
from headstart.config import RunConfig
from headstart.engine.checkpoint import Checkpoint, has_checkpoint, load_checkpoint
from headstart.errors import HeadstartError

__all__ = ["State", "SubRun", "sub_run_state", "config_differences", "data_differences", "inspect_sub_run"]

logger = logging.getLogger(__name__)

State = Literal["new", "interrupted", "finished"]
_MISSING = object()


@dataclass
class SubRun:
    """One run folder of a comparison, as found on disk (and checked against the comparison)."""

    folder: Path
    state: State
    checkpoint: Checkpoint | None = None  # interrupted: what training continues from
    manifest: dict[str, Any] | None = None  # finished: its headstart.json


def sub_run_state(folder: Path) -> State:
    """``finished`` (a written run), ``interrupted`` (a checkpoint to continue) or ``new``."""
    if (folder / MANIFEST).is_file():
        return "finished"
    if has_checkpoint(folder):
        return "interrupted"
    return "new"


def _show(value: Any) -> str:
    return "unset" if value is _MISSING else json.dumps(value)


def config_differences(saved: Any, now: Any, prefix: str = "") -> list[str]:
    """Every setting that differs between two config dicts, as ``"key SAVED then, NOW now"``.

    >>> config_differences({"train": {"epochs": 3, "seed": 0}}, {"train": {"epochs": 5, "seed": 0}})
    ['train.epochs 3 then, 5 now']
    """
    if isinstance(saved, dict) and isinstance(now, dict):
        found: list[str] = []
        for key in sorted(set(saved) | set(now)):
            where = f"{prefix}.{key}" if prefix else str(key)
            found += config_differences(saved.get(key, _MISSING), now.get(key, _MISSING), where)
        return found
    return [] if saved == now else [f"{prefix} {_show(saved)} then, {_show(now)} now"]


def data_differences(saved: dict[str, Any] | None, now: dict[str, Any]) -> list[str]:
    """How the examples and splits differ from those recorded (empty when they are the same)."""
    if saved is None:
        return ["the data it saw was not recorded (written by an older headstart)"]
    if saved.get("examples") == now["examples"] and saved.get("splits") == now["splits"]:
        return []
    if saved.get("classes") != now["classes"]:
        return [f"the classes were {saved.get('classes')}, now {now['classes']}"]
    if saved.get("examples") != now["examples"]:
        return [f"the data: {saved.get('n')} examples then, {now['n']} now (or other files / labels)"]
    return [f"the splits: {saved.get('split_sizes')} then, {now['split_sizes']} now"]


def _current(saved: Any) -> Any:
    """A saved config as this headstart reads it: settings added since it was written take their defaults
    (which keep the old behaviour), so only real differences remain."""
    try:
        return RunConfig.from_dict(saved).to_dict()
    except (HeadstartError, TypeError, ValueError, KeyError):  # not readable now: compared as saved
        return saved


def inspect_sub_run(folder: Path, config: dict[str, Any], identity: dict[str, Any], out: Path) -> SubRun:
    """``folder``'s state, checked against the comparison's resolved ``config`` and data ``identity``.

    A finished or interrupted run made with other settings or data is a :class:`HeadstartError` naming
    every difference (nothing is changed)."""
    state = sub_run_state(folder)
    if state == "new":
        return SubRun(folder, state)
    if state == "finished":
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HeadstartError(
                f"cannot continue the comparison in {out}: {folder / MANIFEST} cannot be read ({exc}); "
                "choose another --out to start a new comparison (nothing was changed)"
            ) from None
        found = SubRun(folder, state, manifest=manifest)
        saved_config, saved_data = manifest.get("config"), (manifest.get("data") or {}).get("identity")
    else:
        ckpt = load_checkpoint(folder)  # a damaged checkpoint is refused here, naming its file
        found = SubRun(folder, state, checkpoint=ckpt)
        saved_config, saved_data = ckpt.state.get("config"), ckpt.state.get("data")
    if state == "finished" and saved_data is None:  # written before headstart recorded a run's data: not checkable
        logger.warning("%s was written by an older headstart that did not record its data; it is trained again", folder)
        return SubRun(folder, "new")
    differences = config_differences(_current(saved_config), config) + data_differences(saved_data, identity)
    if differences:
        what = "finished run" if state == "finished" else "interrupted run"
        raise HeadstartError(
            f"cannot continue the comparison in {out}: the {what} {folder} was made with other settings or data: "
            f"{'; '.join(differences)}. Pass the settings the comparison was started with, or choose another "
            "--out to start a new comparison (nothing was changed)"
        )
    return found
