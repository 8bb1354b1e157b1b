"""Text backbones: sentence encoders from transformers, their text recipe and the classifier around them.

A :class:`TextClassifier` wraps a Hugging Face encoder with the pooling the checkpoint was trained
with (mean over tokens or the CLS token, optionally L2-normalized) and a linear head. It exposes the
same surface as a timm model (``forward_features``, ``forward_head``, ``get_classifier``,
``reset_classifier``) plus ``depth_groups`` (embeddings, layer.0 .. layer.N), so the
strategies, the train loop, the feature cache and the run directory treat images and text alike.

The :class:`TextRecipe` travels with the weights like the image recipe does: tokenizer, max length,
pooling and normalization come from the checkpoint's sentence-transformers files; overriding pooling
or max length away from them logs the ``preprocessing mismatch`` warning.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from headstart.backbones.heads import linear_head
from headstart.backbones.recipe import MISMATCH, is_int, recipe_field, warn_mismatch
from headstart.config import PreprocessConfig
from headstart.errors import HeadstartError

__all__ = [
    "TextRecipe",
    "TextClassifier",
    "POOLINGS",
    "load_encoder",
    "load_tokenizer",
    "read_recipe",
    "resolve_text_recipe",
]

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class TextRecipe:
    """How text must look when it enters the encoder."""

    kind: ClassVar[str] = "text"
    modality: ClassVar[str] = "text"
    tokenizer: str  # where the tokenizer files are (a folder, or a hub id)
    max_length: int  # tokens per text after truncation (special tokens included)
    pooling: str  # mean (average over real tokens) | cls (first token)
    normalize: bool  # L2-normalize the pooled embedding (sentence-transformers' Normalize module)
    vocab_size: int = field(default=0, compare=False)  # rows of the encoder's token embedding (0 = unknown)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "modality": self.modality, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], tokenizer: str | None = None) -> TextRecipe:
        """A text recipe read back from a run, every value checked (bounds of ``preprocess.max_length``).

        A bad value is a :class:`HeadstartError` naming ``recipe.KEY``, its value and what is allowed.
        """
        if tokenizer is None:
            tokenizer = recipe_field(d, "tokenizer", lambda v: isinstance(v, str) and v != "", "a folder or hub id")
        return cls(
            tokenizer=tokenizer,
            max_length=recipe_field(d, "max_length", lambda v: is_int(v) and 8 <= v <= 8192, "an integer in 8..8192"),
            pooling=recipe_field(d, "pooling", lambda v: v in POOLINGS, f"one of {', '.join(POOLINGS)}"),
            normalize=recipe_field(d, "normalize", lambda v: isinstance(v, bool), "true or false"),
            vocab_size=recipe_field(d, "vocab_size", lambda v: is_int(v) and v >= 0, "an integer >= 0")
            if "vocab_size" in d
            else 0,  # runs written before the vocabulary size was recorded
        )

    def check_batch(self, x: dict[str, torch.Tensor]) -> str | None:
        """A tokenizer that does not belong to the encoder yields ids past its embedding table."""
        top = int(x["input_ids"].max().item()) if x["input_ids"].numel() else 0
        if self.vocab_size and top >= self.vocab_size:
            problem = (
                f"the tokenizer produced token id {top} but the encoder's embedding has {self.vocab_size} rows; "
                "the tokenizer does not belong to this checkpoint"
            )
            raise HeadstartError(f"{MISMATCH}: {problem}")
        return None


@functools.lru_cache(maxsize=8)
def load_tokenizer(path: str) -> Any:
    """The (fast) tokenizer at ``path``; offline, only local folders and cached hub ids load."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=_offline(path))
    except OSError as exc:
        raise _hub_error(path, exc) from exc


def _offline(path: str) -> bool:
    return Path(path).is_dir() or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0")


def _hub_error(path: str, exc: Exception) -> HeadstartError:
    return HeadstartError(
        f"could not load the text encoder {path!r} ({exc.__class__.__name__}: {str(exc)[:200]}); "
        "pass a local folder saved with `save_pretrained` (hf:/path/to/folder), or go online with "
        "HF_HUB_OFFLINE unset to download a hub id"
    )


def load_encoder(path: str, pretrained: bool = True) -> nn.Module:
    """The bare transformer encoder (no task head) at ``path``; ``pretrained=False`` keeps the architecture only."""
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=_offline(path))
        # Our pooling reads the hidden states; a BERT-style pooler (dense + tanh on CLS) would hold
        # parameters that never receive a gradient, so it is left out where the architecture allows.
        no_pooler = {"add_pooling_layer": False} if _has_pooler_switch(config) else {}
        if not pretrained:
            return AutoModel.from_config(config, **no_pooler)
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the dropped pooler's weights are reported as "unexpected"
        try:
            return AutoModel.from_pretrained(path, local_files_only=_offline(path), **no_pooler)
        finally:
            hf_logging.set_verbosity(level)
    except OSError as exc:
        raise _hub_error(path, exc) from exc


def _has_pooler_switch(config: Any) -> bool:
    """Whether the architecture's base model takes ``add_pooling_layer`` (BERT, RoBERTa, MPNet, ...)."""
    import inspect

    from transformers import AutoModel

    cls: Any = AutoModel._model_mapping.get(type(config), None)  # type: ignore[attr-defined]
    return cls is not None and "add_pooling_layer" in inspect.signature(cls).parameters


def _json_file(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def read_recipe(path: str, encoder: nn.Module) -> TextRecipe:
    """The checkpoint's own recipe: sentence-transformers files when present, transformers defaults otherwise.

    A plain transformers encoder (no sentence-transformers files) is pooled from the CLS token, as
    ``AutoModelForSequenceClassification`` does, with its position limit as max length.
    """
    folder = Path(path)
    config = encoder.config  # type: ignore[union-attr]
    positions = int(getattr(config, "max_position_embeddings", 512))
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "mpnet", "camembert"):
        positions -= 2  # these reserve two position ids for the padding offset
    st_config = _json_file(folder / "sentence_bert_config.json")
    pooling_cfg = _json_file(folder / "1_Pooling" / "config.json")
    modules = json.dumps(_json_file(folder / "modules.json")) if (folder / "modules.json").is_file() else ""
    pooling = "cls" if pooling_cfg.get("pooling_mode_cls_token") or not pooling_cfg else "mean"
    return TextRecipe(
        tokenizer=path,
        max_length=min(int(st_config.get("max_seq_length", positions)), positions),
        pooling=pooling,
        normalize="Normalize" in modules,
        vocab_size=int(getattr(config, "vocab_size", 0)),
    )


def resolve_text_recipe(checkpoint: TextRecipe, overrides: PreprocessConfig) -> TextRecipe:
    """Overrides (``preprocess.max_length``, ``preprocess.pooling``) > the checkpoint's recipe, with warnings."""
    resolved = checkpoint
    if overrides.max_length is not None:
        resolved = replace(resolved, max_length=overrides.max_length)
    if overrides.pooling is not None:
        if overrides.pooling not in POOLINGS:
            raise HeadstartError(f"preprocess.pooling={overrides.pooling!r}; choose one of {', '.join(POOLINGS)}")
        resolved = replace(resolved, pooling=overrides.pooling)
    for name in ("max_length", "pooling"):
        ours, theirs = getattr(resolved, name), getattr(checkpoint, name)
        if ours != theirs:
            warn_mismatch(name, ours, theirs, "embeddings")
    return resolved


class TextClassifier(nn.Module):
    """Encoder -> pooling (-> L2 normalization) -> linear head. Input: a dict of (B, T) token tensors."""

    def __init__(self, encoder: nn.Module, num_classes: int, pooling: str = "mean", normalize: bool = False):
        super().__init__()
        self.encoder = encoder
        self.num_features = int(encoder.config.hidden_size)  # type: ignore[union-attr,arg-type]
        self.pooling, self.normalize = pooling, normalize
        self.head = linear_head(self.num_features, num_classes)

    def apply_recipe(self, recipe: TextRecipe) -> None:
        self.pooling, self.normalize = recipe.pooling, recipe.normalize

    def forward_features(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token ids and mask (B, T) -> pooled embedding (B, D) in fp32."""
        hidden = self.encoder(input_ids=x["input_ids"], attention_mask=x["attention_mask"]).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0].float()  # (B, D)
        else:
            mask = x["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
            pooled = (hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, D)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return feats if pre_logits else self.head(feats)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.head = linear_head(self.num_features, num_classes)

    def depth_groups(self) -> list[tuple[str, list[str]]]:
        """``embeddings, layer.0 .. layer.N-1`` and what follows the layers (``final``), head excluded.

        The layers are the encoder's largest ``ModuleList`` (BERT, MPNet, RoBERTa, DistilBERT ... all
        keep their blocks in one); parameters before it are the embeddings, after it the pooler.
        """
        layers_name, layers = max(
            ((n, m) for n, m in self.encoder.named_modules() if isinstance(m, nn.ModuleList)),
            key=lambda nm: sum(p.numel() for p in nm[1].parameters()),
        )
        prefix = f"encoder.{layers_name}."
        before, after = [], []
        per_layer: list[list[str]] = [[] for _ in layers]
        for name, _ in self.named_parameters():
            if name.startswith("head."):
                continue
            if name.startswith(prefix):
                per_layer[int(name[len(prefix) :].split(".", 1)[0])].append(name)
            elif any(per_layer):
                after.append(name)
            else:
                before.append(name)
        groups = [("embeddings", before)] + [(f"layer.{i}", p) for i, p in enumerate(per_layer)]
        return groups + ([("final", after)] if after else [])
