"""Candidates for ``rank``: parsing, the random-weights control, the source head, the shared cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headstart.config import RunConfig
from headstart.data import SkipLog
from headstart.engine import resolve_runtime
from headstart.errors import HeadstartError
from headstart.runner import prepare_data
from headstart.transferability.features import candidate_features, parse_candidates


def test_all_expands_to_the_catalog_backbones_of_the_modality() -> None:
    image = parse_candidates("all", "image")
    assert [c.name for c in image] == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2"]
    assert [c.name for c in parse_candidates("all", "text")] == ["minilm", "mpnet"]


def test_random_prefix_is_a_random_weights_control() -> None:
    cands = parse_candidates("mobilenet_v2, random:mobilenet_v2,mobilenet_v2", "image")
    assert [(c.name, c.pretrained) for c in cands] == [("mobilenet_v2", True), ("random:mobilenet_v2", False)]
    assert cands[0].spec == cands[1].spec


@pytest.mark.parametrize(
    ("names", "modality", "message"),
    [
        ("minilm", "image", "is a text model but the data holds image"),
        (
            "efnet-lite0",
            "image",
            "unknown backbone 'efnet-lite0'; did you mean efficientnet_lite0\\? known: efficientnet_lite0",
        ),
        (" , ", "image", "--backbones is empty"),
    ],
)
def test_bad_candidates_say_what_to_pass(names: str, modality: str, message: str) -> None:
    with pytest.raises(HeadstartError, match=message):
        parse_candidates(names, modality)


def test_source_head_random_control_and_cache(tiny_config: RunConfig, elpv_folder: Path) -> None:
    images, _ = prepare_data(tiny_config)
    runtime = resolve_runtime(tiny_config.train)
    pre, rnd = parse_candidates("efficientnet_lite0,random:efficientnet_lite0", "image")
    a = candidate_features(pre, images, tiny_config, runtime, SkipLog(), images.fingerprint())
    assert a.features.shape == (len(images), 1280) and a.valid.all() and not a.cached
    assert a.source_proba is not None and a.source_proba.shape == (len(images), 1000)
    np.testing.assert_allclose(a.source_proba.sum(1), 1.0, atol=1e-6)
    again = candidate_features(pre, images, tiny_config, runtime, SkipLog(), images.fingerprint())
    assert again.cached
    np.testing.assert_array_equal(again.features, a.features)
    b = candidate_features(rnd, images, tiny_config, runtime, SkipLog(), images.fingerprint())
    assert not b.cached, "the random control must not share the pretrained backbone's cache entry"
    assert b.source_proba is None
    assert not np.allclose(a.features, b.features)
    b2 = candidate_features(rnd, images, tiny_config, runtime, SkipLog(), images.fingerprint())
    np.testing.assert_array_equal(b2.features, b.features)  # seeded: the same random network every time
