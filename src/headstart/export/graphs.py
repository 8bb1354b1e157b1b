"""The modules an export traces: the run's preprocessing, its network and its task's scores in one graph.

A deployed model should take what a user has (decoded images, token ids) and give what ``headstart predict``
reports, with nothing to re-implement beside it. So each graph wraps the run's network (``LoadedRun.model``:
the full network for every strategy, a linear probe's fitted head included) between

* an input step: images, uint8 RGB ``(N, H, W, 3)`` of any size, go through the recipe's eval transform
  inside the graph (:class:`ImagePreprocess`); texts come as the tokenizer's ``input_ids`` and
  ``attention_mask`` (``tokenizer.json`` ships beside the graph, truncating and padding as the run did);
* the run's own forward path (the one ``predict`` uses: pooled features, then the head in fp32);
* the task's ``scores`` (softmax, per-label sigmoid, or the value in the target's units).

:data:`GRAPHS` maps a recipe kind to the function building its :class:`Graph`; a run of another kind (the
TF-IDF baseline, audio) is refused by the exporter with the kinds that are supported.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.export import Dim

from headstart.artifacts.run_dir import LoadedRun
from headstart.backbones.build import classifier
from headstart.backbones.recipe import ImageRecipe
from headstart.backbones.text import TextRecipe, load_tokenizer

__all__ = [
    "Graph",
    "GRAPHS",
    "ImagePreprocess",
    "TokenInputs",
    "ScoresGraph",
    "TOKENIZER_FILE",
    "image_graph",
    "text_graph",
]

TOKENIZER_FILE = "tokenizer.json"  # written beside a text run's graph


@dataclass
class Graph:
    """What the exporter traces, and what travels with it."""

    module: nn.Module  # the inputs -> the task's scores (N, K), in eval mode
    inputs: tuple[torch.Tensor, ...]  # an example batch to trace with
    check: tuple[torch.Tensor, ...]  # another batch (other N and sizes) the exported graph is checked on
    input_names: list[str]  # the graph's input names, in ``inputs`` order
    dynamic_shapes: dict[str, dict[int, Any]]  # input name -> {axis: torch.export.Dim}
    metadata: dict[str, str]  # the modality's entries of the model's metadata_props (input layout, ...)
    tolerance: float  # the largest score difference onnxruntime may show against the module on ``check``
    files: dict[str, bytes] = field(default_factory=dict)  # file name -> contents, written beside the graph


class ImagePreprocess(nn.Module):
    """uint8 RGB images ``(N, H, W, 3)`` of any size -> the network's input ``(N, 3, C, C)``: the recipe's eval
    transform (:func:`headstart.data.transforms.eval_transform`) as graph operations.

    The short side is resized to ``resize_size`` (the long side to ``int(resize_size * long / short)``),
    antialiased with the recipe's interpolation, in two passes (width, then height) each rounded to whole
    pixel values, as torchvision's uint8 kernels resize (one float pass differed from them by one level on 17%
    of the pixels, two passes on 0.1%); then the centre ``C x C`` crop (offset rounded half to even, as
    torchvision's ``round``), the scaling to [0, 1] and ``(x - mean) / std``. Sizes are computed from the
    input's shape, so one graph takes any image size.
    """

    mean: torch.Tensor  # (1, 3, 1, 1) buffers
    std: torch.Tensor

    def __init__(self, recipe: ImageRecipe):
        super().__init__()
        self.crop = recipe.input_size
        self.short = recipe.input_size if recipe.crop_pct >= 1.0 else recipe.resize_size
        self.mode = recipe.interpolation
        self.register_buffer("mean", torch.tensor(recipe.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(recipe.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[1], images.shape[2]
        short = torch.sym_min(h, w)
        new_h, new_w = self.short * h // short, self.short * w // short  # torchvision's Resize(int) sizes
        x = images.permute(0, 3, 1, 2).contiguous().float()  # (N, 3, H, W)
        x = self._resize(x, (h, new_w))  # (N, 3, H, new_w): rows first, then columns, as the uint8 kernels do
        x = self._resize(x, (new_h, new_w))  # (N, 3, new_h, new_w)
        x = x.narrow(2, _centre(new_h, self.crop), self.crop).narrow(3, _centre(new_w, self.crop), self.crop)
        return ((x / 255.0 - self.mean) / self.std).contiguous()  # (N, 3, C, C)

    def _resize(self, x: torch.Tensor, size: tuple[Any, Any]) -> torch.Tensor:
        """One antialiased resize pass, rounded to whole pixel values (the uint8 intermediate of the kernels)."""
        smooth = self.mode != "nearest"
        x = F.interpolate(x, size=size, mode=self.mode, align_corners=False if smooth else None, antialias=smooth)
        return x.round().clamp(0.0, 255.0)


def _centre(size: Any, crop: int) -> Any:
    """torchvision's crop offset ``int(round((size - crop) / 2))``, Python's half-to-even rounding in integers."""
    gap = size - crop
    half = gap // 2
    return half + (gap % 2) * (half % 2)


class TokenInputs(nn.Module):
    """``input_ids`` and ``attention_mask`` (N, T) -> the dict of token tensors the text network takes."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"input_ids": input_ids, "attention_mask": attention_mask}


class ScoresGraph(nn.Module):
    """Inputs -> ``prepare`` -> the run's network (pooled features, then the head in fp32, as ``predict``
    runs it) -> the task's scores (N, K)."""

    def __init__(self, prepare: nn.Module, network: nn.Module, scores: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.prepare, self.network, self.scores = prepare, _out_of_place(network), scores

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = self.prepare(*inputs)
        network: Any = self.network  # a timm model or a TextClassifier: forward_features, forward_head
        feats = network.forward_head(network.forward_features(x), pre_logits=True)  # (N, D)
        return self.scores(classifier(network)(feats.float()))  # (N, K)


def _out_of_place(network: nn.Module) -> nn.Module:
    """A copy of the network whose activations (``ReLU6(inplace=True)``, ...) compute out of place: the same
    numbers, but the exporter decomposes every in-place one into a dozen shape-symbolic operations, which made
    exporting MobileNetV2 four times slower. The run's own module is left as it is."""
    network = copy.deepcopy(network).eval()
    for module in network.modules():
        if isinstance(getattr(module, "inplace", None), bool):
            module.inplace = False  # type: ignore[assignment]
    return network


def image_graph(run: LoadedRun) -> Graph:
    """uint8 RGB images ``(N, H, W, 3)``, any N, H, W -> scores; the recipe's resize and crop inside."""
    recipe = run.recipe
    assert isinstance(recipe, ImageRecipe)
    batch, height, width = Dim("batch"), Dim("height", min=2), Dim("width", min=2)
    generator = torch.Generator().manual_seed(0)
    side = recipe.resize_size

    def images(n: int, h: int, w: int) -> torch.Tensor:
        return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=generator)

    layout = (
        "uint8 RGB images (N, H, W, 3), channels last, any N, H and W (one size per batch); a grey image: its "
        "channel repeated 3 times"
    )
    steps = (
        f"resize the short side to {recipe.input_size if recipe.crop_pct >= 1 else side} ({recipe.interpolation}, "
        f"antialiased), centre crop {recipe.input_size}, /255, (x - mean) / std with mean={list(recipe.mean)}, "
        f"std={list(recipe.std)}"
    )
    return Graph(
        module=ScoresGraph(ImagePreprocess(recipe), run.model, run.task.scores).eval(),
        inputs=(images(2, side + 7, side + 23),),
        check=(images(3, side + 41, side - 5),),
        input_names=["images"],
        dynamic_shapes={"images": {0: batch, 1: height, 2: width}},
        metadata={"input": layout, "preprocessing": f"inside the graph: {steps}"},
        tolerance=1e-3,  # a resized pixel within float error of x.5 may round the other way
    )


def text_graph(run: LoadedRun) -> Graph:
    """``input_ids`` and ``attention_mask`` (int64, (N, T), any N and T up to max_length) -> scores, with the
    run's tokenizer as ``tokenizer.json`` (truncating to max_length, padding to the longest text of a batch)."""
    recipe = run.recipe
    assert isinstance(recipe, TextRecipe)
    batch, tokens = Dim("batch"), Dim("tokens", min=2, max=recipe.max_length)
    tokenizer = _tokenizer_json(recipe)
    generator = torch.Generator().manual_seed(0)
    top, length = recipe.vocab_size or 1000, min(16, recipe.max_length)

    def tokens_of(n: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.randint(1, top, (n, t), dtype=torch.int64, generator=generator)
        mask = torch.ones(n, t, dtype=torch.int64)
        mask[0, t // 2 :] = 0  # a padded row
        return ids, mask

    return Graph(
        module=ScoresGraph(TokenInputs(), run.model, run.task.scores).eval(),
        inputs=tokens_of(2, length),
        check=tokens_of(3, length - 5),
        input_names=["input_ids", "attention_mask"],
        dynamic_shapes={"input_ids": {0: batch, 1: tokens}, "attention_mask": {0: batch, 1: tokens}},
        metadata={
            "input": f"input_ids and attention_mask, int64 (N, T), T <= {recipe.max_length}, from {TOKENIZER_FILE}",
            "preprocessing": f"strip each text, then tokenize with {TOKENIZER_FILE} (it truncates to max_length "
            "and pads each batch to its longest text)",
            "max_length": str(recipe.max_length),
            "recipe": json.dumps({**recipe.to_dict(), "tokenizer": TOKENIZER_FILE}),
        },
        tolerance=1e-4,
        files={TOKENIZER_FILE: tokenizer},
    )


def _tokenizer_json(recipe: TextRecipe) -> bytes:
    """The run's fast tokenizer as ``tokenizer.json``, set to truncate to ``max_length`` and to pad a batch to
    its longest text, as headstart's own batches are (:func:`headstart.data.tokens.tokenize`)."""
    from tokenizers import Tokenizer

    fast = load_tokenizer(recipe.tokenizer)
    tokenizer = Tokenizer.from_str(fast.backend_tokenizer.to_str())  # a copy: the cached tokenizer stays as it is
    tokenizer.enable_truncation(max_length=recipe.max_length)
    pad_id = fast.pad_token_id if fast.pad_token_id is not None else 0
    tokenizer.enable_padding(pad_id=pad_id, pad_token=fast.pad_token or "[PAD]")
    return tokenizer.to_str(pretty=True).encode("utf-8")


GRAPHS: dict[str, Callable[[LoadedRun], Graph]] = {
    ImageRecipe.kind: image_graph,  # timm image backbones
    TextRecipe.kind: text_graph,  # transformers text encoders
}
