"""A run's manifest (``headstart.json``), read and checked before anything is built from it.

A manifest cut short by a copy, or edited by hand, fails with a message that names the file, the key
and the fix, never with a traceback from deep inside model building. The values a model is rebuilt
from are checked where they are parsed (``ImageRecipe.from_dict``, ``TextRecipe.from_dict``,
``RunConfig.from_dict``); this module checks the structure around them.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from headstart.config import RunConfig
from headstart.errors import HeadstartError
from headstart.modalities import known_recipe_kinds, saved_recipe_kind
from headstart.tasks import DEFAULT_TASK, known_tasks

__all__ = ["read_manifest", "damaged_run", "DamagedRun"]

SECTIONS = ("backbone", "recipe", "config", "data")  # JSON objects every manifest holds


class DamagedRun(HeadstartError):
    """A file of a saved run cannot be used (its message names the file, the problem and the fix)."""


def damaged_run(file: Path, problem: str) -> DamagedRun:
    """The error for a file of a run that cannot be used: the file, the problem and how to get a good run back."""
    run = file.parent
    return DamagedRun(
        f"{file} {problem.rstrip('.')}. The run {run} is damaged (cut short while copying, or edited by hand): copy it "
        f"again from where it was trained, or train it again with `headstart train DATA --out {run}`"
    )


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_manifest(file: Path) -> tuple[dict[str, Any], RunConfig]:
    """The manifest at ``file`` and its validated config; a :class:`HeadstartError` naming the bad key otherwise."""
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise damaged_run(file, f"is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise damaged_run(file, f"must hold a JSON object, not {_short(manifest)}")
    for key in SECTIONS:
        if not isinstance(manifest.get(key), dict):
            raise damaged_run(file, f"has no {key!r} section (a JSON object); found {_short(manifest.get(key))}")
    _check_labels(file, manifest.get("labels"))
    kinds = known_recipe_kinds()  # recipe plug-ins (image, text, tfidf, ...)
    tasks = known_tasks()  # task plug-ins (classification, ...)
    checks = [
        ("backbone.architecture", manifest["backbone"].get("architecture"), _is_name, "the timm architecture name"),
        ("recipe.kind", saved_recipe_kind(manifest["recipe"]), kinds.__contains__, " | ".join(kinds)),
        ("task", manifest.get("task", DEFAULT_TASK), tasks.__contains__, " | ".join(tasks)),
        ("data.source", manifest["data"].get("source"), _is_name, "the data the run was trained on"),
        ("threshold", manifest.get("threshold"), _is_threshold, "null or a number in [0, 1] (a list: one per label)"),
    ]
    for key, value, ok, expected in checks:
        if not ok(value):
            raise damaged_run(file, f"has {key}={_short(value)}; it must be {expected}")
    try:
        config = RunConfig.from_dict(manifest["config"])
    except HeadstartError as exc:
        raise damaged_run(file, f"holds an invalid config: {exc}") from exc
    return manifest, config


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_threshold(value: Any) -> bool:
    """None, a probability, or (multi-label) one probability per label."""
    if value is None:
        return True
    if isinstance(value, list):
        return len(value) > 0 and all(_is_threshold(v) and v is not None for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _check_labels(file: Path, labels: Any) -> None:
    """``labels``: a non-empty list of distinct, non-empty strings (the class names, in output order)."""
    if not isinstance(labels, list) or not labels or not all(_is_name(x) for x in labels):
        raise damaged_run(file, f"has labels={_short(labels)}; it must be a non-empty list of class names")
    repeated = sorted(label for label, count in Counter(labels).items() if count > 1)
    if repeated:
        raise damaged_run(file, f"lists the label(s) {', '.join(map(repr, repeated))} more than once")
