"""The builtin data sets: one list of every ``builtin:NAME``, image, text and audio."""

import pytest

from headstart.data.builtin import BUILTINS, known_builtins, load_builtin
from headstart.errors import HeadstartError


def test_known_builtins_asks_every_registry() -> None:
    assert known_builtins() == [f"builtin:{n}" for n in BUILTINS]
    assert {n: b.modality for n, b in BUILTINS.items()} == {
        "elpv": "image",
        "elpv-mono": "image",
        "elpv-poly": "image",
        "fashion-mnist": "image",
        "elpv-severity": "image",
        "fashion-multilabel": "image",
        "tweets": "text",
        "bbc-news": "text",
        "drums": "audio",
    }
    assert {"builtin:elpv", "builtin:fashion-mnist", "builtin:tweets", "builtin:bbc-news"} <= set(known_builtins())


def test_unknown_builtin_suggests_and_lists_every_builtin() -> None:
    with pytest.raises(HeadstartError) as err:
        load_builtin("elpv-mnoo")
    assert str(err.value) == (
        "unknown builtin dataset 'builtin:elpv-mnoo'; did you mean builtin:elpv-mono? known: "
        + ", ".join(known_builtins())
    )
