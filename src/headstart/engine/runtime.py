"""Device, precisions and memory format: resolved once, applied to models and batches.

A runtime has two precisions:

- ``train_precision``, the autocast of the training steps (forward and backward), and of features
  that are only fitted on or estimated from (:meth:`Runtime.for_fitting`: a probe head's train /
  validation features, the validation passes that choose a fine-tuning run's epoch, rank, advise,
  shift). ``train.precision=auto`` picks bf16 where the hardware runs it natively (CPUs with
  AVX512-BF16 or AMX, GPUs with bf16), fp32 elsewhere.
- ``precision``, of every forward pass whose outputs are kept: the test split's features and the
  final validation scores (a tuned threshold's), the test split's probabilities in ``metrics.json`` and
  ``predictions.csv``, the tuned threshold, ``evaluate`` and ``predict``. fp32 for every new run
  (on CUDA with TF32 off). On 256 ELPV cells a trained probe's probabilities moved by up to 0.65
  (median 0.005-0.013; 2% of the decisions flipped) between bf16 and fp32, and bf16 itself depends
  on the hardware (up to 0.04 between an AVX512-BF16 CPU and the same CPU limited to AVX2), while fp32 agreed
  to 1.4e-5 across batch sizes, memory formats and instruction sets (``bench/bench_precision.py``).
  So a run's recorded probabilities are what ``evaluate`` and ``predict`` give on any machine; the
  price is bf16's inference speed-up (2.3-2.4x on an AVX512-BF16 CPU), kept for the training steps.

:func:`resolve_runtime` builds the runtime of a new run; :func:`inference_runtime` the one that
reproduces a saved run's probabilities (the precision recorded in its ``headstart.json``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from headstart.config import TrainConfig
from headstart.engine.distributed import is_distributed, local_rank, world_size
from headstart.errors import HeadstartError

if TYPE_CHECKING:
    from headstart.engine.bnfold import BatchNormFold

__all__ = [
    "INFERENCE_PRECISIONS",
    "Runtime",
    "cpu_has_fast_bf16",
    "has_native_bf16",
    "inference_runtime",
    "resolve_runtime",
]

logger = logging.getLogger(__name__)

INFERENCE_PRECISIONS = ("fp32", "bf16")  # bf16: only in runs saved before scoring moved to fp32


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU executes bf16 natively (AVX512-BF16 or AMX tiles)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def has_native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 natively (fast, and with the hardware's own rounding)."""
    return torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_fast_bf16()


@contextlib.contextmanager
def _ieee_fp32() -> Iterator[None]:
    """CUDA convolutions and matmuls in full fp32 (no TF32) inside the block; the flags are restored after."""
    if hasattr(torch.backends.cudnn, "conv"):  # the fp32_precision API (torch >= 2.9)
        knobs = [torch.backends.cudnn.conv, torch.backends.cuda.matmul]
        before = [k.fp32_precision for k in knobs]
        for k in knobs:
            k.fp32_precision = "ieee"
        try:
            yield
        finally:
            for k, value in zip(knobs, before, strict=True):
                k.fp32_precision = value
        return
    legacy = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = legacy


@contextlib.contextmanager
def _cpu_bf16_steps() -> Iterator[None]:
    from headstart.engine.depthwise import fp32_depthwise_grads

    with torch.autocast("cpu", dtype=torch.bfloat16), fp32_depthwise_grads():
        yield


@contextlib.contextmanager
def _stacked(*contexts: contextlib.AbstractContextManager) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for c in contexts:
            stack.enter_context(c)
        yield


@dataclass(frozen=True)
class Runtime:
    device: torch.device  # where the model and batches live
    precision: str  # of the kept forward passes (features, scores, evaluate, predict): fp32 | bf16 (older runs)
    channels_last: bool  # NHWC memory format for 4-D tensors
    train_precision: str = "fp32"  # autocast of the training steps: fp32 | bf16
    fp32_depthwise_grads: bool = True  # CPU bf16 steps: depthwise convolutions' backward in fp32 (faster there)
    bn_fold: BatchNormFold | None = field(default=None, compare=False)  # a training run's (train.fold_bn)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The training steps' autocast (``train_precision``); on CPU in bf16, with the depthwise convolutions'
        backward in fp32 (:mod:`headstart.engine.depthwise`); eval-mode BatchNorm folded into the convolution
        before it where :attr:`bn_fold` found such pairs (:mod:`headstart.engine.bnfold`)."""
        if self.bn_fold is None or not self.bn_fold.pairs:
            return self._autocast()
        return _stacked(self._autocast(), self.bn_fold.mode())

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.train_precision != "bf16":
            return contextlib.nullcontext()
        if self.device.type != "cpu" or not self.fp32_depthwise_grads:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return _cpu_bf16_steps()

    def inference(self) -> contextlib.AbstractContextManager:
        """The numerics of a kept forward pass (``precision``): full fp32 (TF32 off on CUDA), or bf16
        autocast for a run saved with bf16 scores."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return _ieee_fp32() if self.device.type == "cuda" else contextlib.nullcontext()

    def for_fitting(self) -> Runtime:
        """This runtime for features that are only fitted on or estimated from (a probe head's train /
        validation features, a fine-tuning run's validation passes, rank / advise / shift): computed in the
        training precision, like a training step, since no recorded probability comes from them. One rule,
        so rank and the probe share the cache.
        """
        return replace(self, precision=self.train_precision)

    def model(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def batch(self, x: Any) -> Any:
        """A batch on the device: an image tensor (channels_last when 4-D) or a dict of token tensors."""
        if isinstance(x, dict):
            return {k: v.to(self.device, non_blocking=True) for k, v in x.items()}
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def folding(self, model: nn.Module, owners: dict[str, str | None]) -> Runtime:
        """This runtime for a training run of ``model`` that folds eval-mode BatchNorm (``train.fold_bn``)."""
        from headstart.engine.bnfold import BatchNormFold

        return replace(self, bn_fold=BatchNormFold(model, owners))

    def train_batch(self, x: Any) -> Any:
        """:meth:`batch` for a training step; the first one finds the pairs that :attr:`bn_fold` folds."""
        x = self.batch(x)
        if self.bn_fold is not None:
            self.bn_fold.prepare(x)
        return x

    def describe(self) -> dict[str, object]:
        """The manifest's ``runtime``: ``precision`` is what the run's probabilities were computed in."""
        return {
            "device": str(self.device),
            "precision": self.precision,
            "train_precision": self.train_precision,
            "channels_last": self.channels_last,
            "processes": world_size(),
        }


def resolve_runtime(cfg: TrainConfig) -> Runtime:
    """This machine's runtime for ``cfg``: ``train.precision=auto`` becomes bf16 or fp32 for the training
    steps; kept forward passes are always fp32."""
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(cfg.device)
        except RuntimeError as exc:
            raise HeadstartError(f"train.device={cfg.device!r} is not a device; use auto, cpu, cuda or cuda:N") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise HeadstartError("train.device asks for CUDA but no GPU is visible; use train.device=cpu or auto")
    if device.type == "cuda" and device.index is None and is_distributed():
        device = torch.device("cuda", local_rank())  # one GPU per process under torchrun
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16" if has_native_bf16(device) else "fp32"
    return Runtime(
        device=device,
        precision="fp32",
        channels_last=cfg.channels_last,
        train_precision=precision,
        fp32_depthwise_grads=cfg.fp32_depthwise_grads,
    )


def inference_runtime(cfg: TrainConfig, recorded: Mapping[str, Any] | None, run: str = "the run") -> Runtime:
    """The runtime that reproduces a saved run's probabilities on this machine.

    The device is this machine's (``cfg.device``); the precision is the one ``recorded`` (the run's
    ``headstart.json`` ``runtime``) says its probabilities were computed in, never this machine's
    ``train.precision=auto``. Runs trained before scoring moved to fp32 recorded bf16 when they trained
    with bf16: they are scored in bf16 again, with a warning where this machine's bf16 differs.

    >>> from headstart.config import TrainConfig
    >>> inference_runtime(TrainConfig(device="cpu"), {"precision": "fp32", "train_precision": "bf16"}).precision
    'fp32'
    """
    runtime = resolve_runtime(cfg)
    precision = (recorded or {}).get("precision", "fp32")  # every run records it; fp32 for a manifest without
    if precision not in INFERENCE_PRECISIONS:
        raise HeadstartError(
            f"headstart.json of {run} records runtime.precision={precision!r}; expected one of "
            f"{', '.join(INFERENCE_PRECISIONS)}: the file was edited or damaged, copy the run again or re-train"
        )
    if precision == "bf16":
        _warn_bf16(run, str((recorded or {}).get("device", "cpu")), runtime.device)
    return replace(runtime, precision=precision)


def _warn_bf16(run: str, trained_on: str, device: torch.device) -> None:
    """A bf16-scored run reproduces its probabilities only on the same kind of hardware: say so where it cannot."""
    same_kind = trained_on.split(":")[0] == device.type
    if same_kind and has_native_bf16(device):
        logger.info("%s recorded bf16 probabilities; scoring in bf16 to reproduce them", run)
        return
    here = "this machine has no native bf16" if same_kind else f"this machine scores on {device.type}"
    logger.warning(
        "%s computed its recorded probabilities (metrics.json, predictions.csv) in bf16 on %s, and %s: "
        "bf16 results depend on the hardware, so these probabilities can differ from the recorded ones "
        "(by up to 0.04 between CPUs in bench/README.md); train the run again with this "
        "version of headstart, which records fp32 probabilities that every machine reproduces",
        run,
        trained_on,
        here,
    )
