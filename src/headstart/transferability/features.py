"""Features of one candidate backbone on a dataset, through the shared feature cache.

A candidate is a catalog name (``efficientnet_lite0``, ``hf:<folder>``, ``timm:<name>``) or
``random:<name>``: the same architecture with random weights, a control that tells whether the
pretrained features carry anything the target can use. Candidates keep their source classifier
(ImageNet head) so that LEEP and NCE can read the source predictions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.backbones.build import classifier
from headstart.backbones.catalog import BackboneSpec, backbone_identity, get_backbone, list_backbones
from headstart.config import RunConfig
from headstart.data.loader import SkipLog
from headstart.engine.features import extract_features
from headstart.engine.inference import head_logits
from headstart.engine.runtime import Runtime
from headstart.errors import HeadstartError
from headstart.modalities import build_backbone, check_modality

__all__ = ["Candidate", "CandidateFeatures", "parse_candidates", "candidate_features"]

RANDOM_PREFIX = "random:"


@dataclass(frozen=True)
class Candidate:
    name: str  # as the user wrote it (random:<name> for the random-weights control)
    spec: BackboneSpec  # the catalog entry that builds it
    pretrained: bool  # False for the random-weights control


@dataclass
class CandidateFeatures:
    features: np.ndarray  # (N, D) pooled features in dataset order
    valid: np.ndarray  # (N,) bool; False for unreadable images
    source_proba: np.ndarray | None  # (N, Z) softmax of the source classifier; None without one
    cached: bool  # features read from the cache
    seconds: float  # model build + extraction (or cache read) + source head


def parse_candidates(names: str, modality: str) -> list[Candidate]:
    """``"a,b,random:c"`` or ``"all"`` (every catalog backbone of the data's modality) -> candidates."""
    parts = [n.strip() for n in names.split(",") if n.strip()]
    if not parts:
        raise HeadstartError("--backbones is empty; pass a comma-separated list of catalog names, or all")
    if parts == ["all"]:
        parts = [s.name for s in list_backbones() if s.modality == modality]
    out = []
    for name in dict.fromkeys(parts):
        base = name.removeprefix(RANDOM_PREFIX)
        spec = get_backbone(base)
        if spec.modality != modality:
            raise HeadstartError(
                f"backbone {base!r} is a {spec.modality} model but the data holds {modality}; rank "
                f"{', '.join(s.name for s in list_backbones() if s.modality == modality)} (or all) instead"
            )
        out.append(Candidate(name, spec, pretrained=not name.startswith(RANDOM_PREFIX)))
    return out


def _identity(cand: Candidate, seed: int) -> dict[str, Any]:
    ident = backbone_identity(cand.spec)
    if not cand.pretrained:
        ident |= {"init": "random", "seed": seed}
    return ident


def candidate_features(
    cand: Candidate,
    data: Any,
    cfg: RunConfig,
    runtime: Runtime,
    skips: SkipLog,
    fingerprint: str,
    rows: np.ndarray | None = None,
) -> CandidateFeatures:
    """Extract (or read from the cache) one candidate's features for the examples ``rows`` of ``data``.

    ``rows`` defaults to every example; rows left out are zeros with ``valid`` False.
    """
    start = time.perf_counter()
    torch.manual_seed(cfg.train.seed)  # the random control is the same network on every call
    check_modality(data, cand.spec)
    built = build_backbone(cand.spec, None, cfg.preprocess, pretrained=cand.pretrained)
    model, recipe = built.model, built.recipe
    runtime = runtime.for_fitting()  # estimates only: the training precision, as the probe's fitting features
    fs = extract_features(
        model,
        data,
        recipe,
        runtime,
        _identity(cand, cfg.train.seed),
        cfg.train.batch_size,
        skips,
        num_workers=cfg.train.num_workers,
        fingerprint=fingerprint,
        rows=rows,
    )
    source = None
    if cand.pretrained and isinstance(classifier(model), nn.Linear):  # a source task's head (ImageNet's)
        with torch.inference_mode():
            logits = head_logits(model.to(runtime.device), torch.from_numpy(fs.features).to(runtime.device))
        if logits.shape[1] > 1:
            source = logits.softmax(-1).double().cpu().numpy()
    return CandidateFeatures(fs.features, fs.valid, source, fs.cached, time.perf_counter() - start)
