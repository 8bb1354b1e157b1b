"""Looking a name up in a registry: one error for every unknown name, with a did-you-mean suggestion.

The backbone catalog, the strategy registry and the config keys all refuse an unknown name the same way::

    >>> str(unknown_choice("strategy", "fintune", ["linear-probe", "finetune", "scratch"]))
    "unknown strategy 'fintune'; did you mean finetune? known: linear-probe, finetune, scratch"
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable

from headstart.errors import HeadstartError

__all__ = ["CUTOFF", "closest", "unknown_choice"]


# difflib similarity a suggestion needs: efnet-lite0 -> efficientnet_lite0 is 0.69, extra -> train only 0.6
CUTOFF = 0.65


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice most similar to ``name`` (difflib ratio >= :data:`CUTOFF`), or None when nothing is close.

    A prefix shared by the name and every choice is left out of the comparison, so ``builtin:imdb`` is not
    "close" to ``builtin:elpv`` for their common ``builtin:``:

    >>> closest("builtin:imdb", ["builtin:elpv", "builtin:tweets"]), closest("builtin:twets", ["builtin:tweets"])
    (None, 'builtin:tweets')
    """
    known = list(choices)
    cut = len(os.path.commonprefix([name, *known])) if known else 0
    by_rest = {c[cut:]: c for c in known}
    matches = difflib.get_close_matches(name[cut:], list(by_rest), n=1, cutoff=CUTOFF)
    return by_rest[matches[0]] if matches else None


def unknown_choice(kind: str, name: str, choices: Iterable[str], also: str = "") -> HeadstartError:
    """The error for an unknown ``name`` of ``kind``: the closest choice, every choice, and ``also``
    (other accepted forms, e.g. ``"or timm:<model_name> for any timm model"``) after them."""
    known = list(choices)
    match = closest(name, known)
    hint = f"did you mean {match}? " if match else ""
    tail = f", {also}" if also else ""
    return HeadstartError(f"unknown {kind} {name!r}; {hint}known: {', '.join(known)}{tail}")
