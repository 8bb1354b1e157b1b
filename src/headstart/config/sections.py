"""The eight sections of a run's config (data, task, preprocess, model, strategy, optim, train, eval).

Every field has a comment (its documentation: ``--config`` YAML uses these names); ``__post_init__``
validates values with an error that names the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from headstart.errors import HeadstartError

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
PRECISIONS = ("auto", "fp32", "bf16")
CLASS_WEIGHTS = ("none", "auto")  # optim.class_weights (--class-weights)
LOGS = ("jsonl", "tensorboard")  # train.log (--log)
REGRESSION_LOSSES = ("mse", "huber")  # task.loss


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise HeadstartError(msg)


SEED_LIMIT = 2**32  # numpy's RandomState takes seeds 0 .. 2**32 - 1 (torch takes more)


def check_seed(key: str, seed: int, count: int = 1) -> None:
    """Refuse a seed numpy cannot take; with ``count`` (``--seeds N``) the seeds seed .. seed+N-1 must all fit.

    ``check_seed("train.seed", 2**32)`` raises ``train.seed=4294967296 is out of range; ... must be 0..4294967295``.
    """
    top = SEED_LIMIT - count
    if 0 <= seed <= top:
        return
    if count > 1 and 0 <= seed < SEED_LIMIT:
        raise HeadstartError(
            f"--seeds {count} from {key}={seed} runs seeds up to {seed + count - 1}, past numpy's limit "
            f"{SEED_LIMIT - 1}; use a seed in 0..{top} or fewer --seeds"
        )
    raise HeadstartError(f"{key}={seed} is out of range; seeds (--seed, data.seed, train.seed) must be 0..{top}")


@dataclass
class DataConfig:
    source: str = ""  # folder, CSV / TSV / JSONL, or builtin:NAME
    text_column: str = "text"  # text data: the column (CSV / TSV) or key (JSONL) holding the text
    label_column: str = "label"  # text data: the column or key holding the class name (or value, label set)
    label_separator: str = "|"  # multilabel: joins an example's labels in one label cell (a|b; empty: none)
    sampler: str = "shuffle"  # shuffle (each example once per epoch) | balanced (classes drawn equally often)
    val_fraction: float = 0.15  # share of each class held out for model selection
    test_fraction: float = 0.15  # share of each class held out for the final metrics
    seed: int = 0  # seed of the stratified split
    limit_per_class: int | None = None  # keep at most this many examples per class (quick runs)
    target: str | None = None  # unlabelled target-domain data (--target): adaptation strategies read it; with
    # ^ labels of the same classes, the run also scores it (target_metrics.json)

    def __post_init__(self) -> None:
        check_seed("data.seed", self.seed)
        _check(0 < self.val_fraction < 1, f"data.val_fraction={self.val_fraction} must be in (0, 1)")
        _check(self.sampler in ("shuffle", "balanced"), f"data.sampler={self.sampler!r}; choose shuffle or balanced")
        _check(self.label_separator != "", "data.label_separator is empty; use one character such as | or ;")
        _check(0 < self.test_fraction < 1, f"data.test_fraction={self.test_fraction} must be in (0, 1)")
        _check(
            self.val_fraction + self.test_fraction < 0.9,
            "data.val_fraction + data.test_fraction must leave at least 10% for training",
        )
        _check(
            self.limit_per_class is None or self.limit_per_class >= 2,
            f"data.limit_per_class={self.limit_per_class} must be >= 2 (or null for all)",
        )


@dataclass
class PreprocessConfig:
    input_size: int | None = None  # square input side in pixels; null = the checkpoint's recipe
    crop_pct: float | None = None  # eval resize = input_size / crop_pct, then center crop; null = recipe
    interpolation: str | None = None  # bilinear | bicubic | nearest; null = recipe
    mean: list[float] | None = None  # per-channel normalization mean; null = recipe
    std: list[float] | None = None  # per-channel normalization std; null = recipe
    # Training augmentation (random resized crop + flips). Off by default: on the 5-epoch schedules
    # headstart targets it slowed convergence on both Fashion-MNIST and ELPV (bench/README.md); turn it
    # on for longer runs with preprocess.augment=true.
    augment: bool = False
    min_scale: float = 0.8  # smallest area fraction kept by the random resized crop (gentle: keeps small defects)
    vflip: bool = False  # also flip vertically (rotation-invariant data such as cells, tissue)
    max_length: int | None = None  # text: tokens per text after truncation; null = the checkpoint's recipe
    pooling: str | None = None  # text: mean | cls; null = how the checkpoint was trained
    # audio (null = the checkpoint's recipe; changing what the checkpoint learned warns `preprocessing mismatch`)
    sample_rate: int | None = None  # audio: Hz the clips are resampled to
    clip_seconds: float | None = None  # audio: seconds per example (longer clips cropped, shorter zero-padded)
    n_mels: int | None = None  # audio: mel bands of the front end
    n_fft: int | None = None  # audio: FFT size of the front end
    hop_length: int | None = None  # audio: samples between spectrogram frames
    fmin: float | None = None  # audio: lowest mel band edge (Hz)
    fmax: float | None = None  # audio: highest mel band edge (Hz)

    def __post_init__(self) -> None:
        _check(self.input_size is None or 16 <= self.input_size <= 2048, "preprocess.input_size must be 16..2048")
        _check(self.sample_rate is None or 1000 <= self.sample_rate <= 384_000, "preprocess.sample_rate: 1000..384000")
        _check(self.clip_seconds is None or 0.01 <= self.clip_seconds <= 60, "preprocess.clip_seconds must be 0.01..60")
        for name in ("n_mels", "n_fft", "hop_length"):
            value = getattr(self, name)
            _check(value is None or 1 <= value <= 65536, f"preprocess.{name} must be a positive integer")
        _check(self.fmin is None or self.fmin >= 0, "preprocess.fmin must be >= 0 (Hz)")
        _check(self.fmax is None or self.fmax > (self.fmin or 0), "preprocess.fmax must be above preprocess.fmin (Hz)")
        _check(self.crop_pct is None or 0.1 <= self.crop_pct <= 1.0, "preprocess.crop_pct must be in [0.1, 1]")
        _check(
            self.interpolation is None or self.interpolation in INTERPOLATIONS,
            f"preprocess.interpolation={self.interpolation!r}; choose one of {', '.join(INTERPOLATIONS)}",
        )
        for name in ("mean", "std"):
            value = getattr(self, name)
            _check(
                value is None or (len(value) == 3 and all(isinstance(v, (int, float)) for v in value)),
                f"preprocess.{name} must be a list of 3 numbers, e.g. [0.5, 0.5, 0.5]",
            )
        _check(self.std is None or all(v > 0 for v in self.std), "preprocess.std values must be > 0")
        _check(0.05 <= self.min_scale <= 1.0, "preprocess.min_scale must be in [0.05, 1]")
        _check(self.max_length is None or 8 <= self.max_length <= 8192, "preprocess.max_length must be 8..8192")
        _check(
            self.pooling is None or self.pooling in ("mean", "cls"),
            f"preprocess.pooling={self.pooling!r}; choose mean or cls (or null for the checkpoint's)",
        )


@dataclass
class ModelConfig:
    backbone: str = "efficientnet_lite0"  # catalog name (`headstart backbones`) or timm:<model_name>
    weights: str | None = None  # local checkpoint for timm:<name> (safetensors or a state dict)
    drop_rate: float = 0.2  # dropout before the classification head during training

    def __post_init__(self) -> None:
        _check(0.0 <= self.drop_rate < 1.0, "model.drop_rate must be in [0, 1)")


@dataclass
class StrategyConfig:
    name: str = "progressive"  # linear-probe | finetune | partial | progressive | plateau | lp-ft | scratch | lora
    # ^ default by measurement (bench/README.md): best or tied-best on Fashion-MNIST and ELPV, and fastest
    backbone_lr_factor: float | None = None  # LR of the group just below the head = optim.lr x this factor
    # ^ null = the backbone's default: 0.3 for image CNNs, 0.05 for transformer text encoders (bench/)
    layer_decay: float = 1.0  # each group further from the head gets this factor more (1 = no decay)
    probe_cs: list[float] = field(default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0])
    # ^ inverse L2 strengths tried by the linear probe (and lp-ft's probe); the best on validation is kept
    bn: str = "frozen"  # BatchNorm running statistics: frozen (never updated) | train (updated in trainable groups)
    train_groups: int = 3  # partial: train the last K layer groups (the head counts as one)
    groups: list[str] | None = None  # partial: train exactly these groups by name (overrides train_groups)
    unfreeze_every: float | None = None  # progressive: epochs between unfreezes; null = spread over the first half
    unfreeze_depth: int | None = None  # progressive: backbone groups that ever unfreeze (top first); null = all
    patience: int = 1  # plateau: validation checks in a row without improvement before the next groups unfreeze
    min_delta: float = 0.01  # plateau: the smallest relative gain of the validation metric that counts (1%)
    eval_every: int | None = None  # plateau: optimizer steps between validation checks; null = 4 per epoch
    unfreeze_groups: int | None = None  # plateau: groups per unfreeze; null = enough to reach the whole backbone
    # ^ in the first half of the run's checks (bench/README.md, "plateau")
    unfreeze_warmup: float = 0.25  # epochs over which a newly unfrozen group's LR ramps from 0 to its value
    adabn: bool = False  # after training, re-estimate BatchNorm statistics on data.target (AdaBN)
    adapt_weight: float | None = None  # dann / coral: weight of the domain loss; null = the method's default
    lora_rank: int = 8  # lora: rank of the low-rank update of each adapted weight
    lora_alpha: float = 16.0  # lora: scale of the update (alpha / rank)
    lora_dropout: float = 0.05  # lora: dropout on the adapters' input
    lora_targets: list[str] | None = None  # lora: module names to adapt; null = the backbone family's default

    def __post_init__(self) -> None:
        _check(
            self.backbone_lr_factor is None or 0 < self.backbone_lr_factor <= 10,
            "strategy.backbone_lr_factor must be in (0, 10] (or null for the backbone's default)",
        )
        _check(0 < self.layer_decay <= 1, "strategy.layer_decay must be in (0, 1]")
        _check(len(self.probe_cs) > 0 and all(c > 0 for c in self.probe_cs), "strategy.probe_cs must be > 0")
        _check(self.bn in ("frozen", "train"), f"strategy.bn={self.bn!r}; choose frozen or train")
        _check(self.train_groups >= 1, "strategy.train_groups must be >= 1")
        _check(self.unfreeze_every is None or self.unfreeze_every > 0, "strategy.unfreeze_every must be > 0")
        _check(
            self.unfreeze_depth is None or self.unfreeze_depth >= 0,
            "strategy.unfreeze_depth must be >= 0 backbone groups (0 = the head only; null = all)",
        )
        _check(self.patience >= 1, "strategy.patience must be >= 1")
        _check(self.min_delta >= 0, "strategy.min_delta must be >= 0 (a relative gain: 0.01 is 1%)")
        _check(self.eval_every is None or self.eval_every >= 1, "strategy.eval_every must be >= 1 step (or null)")
        _check(self.unfreeze_groups is None or self.unfreeze_groups >= 1, "strategy.unfreeze_groups must be >= 1")
        _check(self.unfreeze_warmup >= 0, "strategy.unfreeze_warmup must be >= 0")
        _check(self.adapt_weight is None or self.adapt_weight >= 0, "strategy.adapt_weight must be >= 0 (or null)")
        _check(self.lora_rank >= 1, "strategy.lora_rank must be >= 1")
        _check(self.lora_alpha > 0, "strategy.lora_alpha must be > 0")
        _check(0 <= self.lora_dropout < 1, "strategy.lora_dropout must be in [0, 1)")
        _check(
            self.lora_targets is None or len(self.lora_targets) > 0,
            "strategy.lora_targets is empty; list "
            "module names (e.g. [query, value]) or leave it null for the backbone's default",
        )


@dataclass
class OptimConfig:
    lr: float | None = (
        None  # head learning rate (AdamW); null = the task default: 1e-3, regression 1e-4, multilabel 3e-4
    )
    weight_decay: float = 0.01  # on weights only; never on norms and biases
    warmup_fraction: float = 0.1  # share of all steps spent in linear warmup before the cosine decay
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    class_weights: str = "none"  # none | auto (loss weight per class = n / (classes x count), for imbalance)

    def __post_init__(self) -> None:
        _check(self.lr is None or 0 < self.lr < 1, f"optim.lr={self.lr} must be in (0, 1) (or null for the task's)")
        _check(self.weight_decay >= 0, "optim.weight_decay must be >= 0")
        _check(0 <= self.warmup_fraction < 1, "optim.warmup_fraction must be in [0, 1)")
        _check(0 <= self.label_smoothing < 1, "optim.label_smoothing must be in [0, 1)")
        _check(
            self.class_weights in CLASS_WEIGHTS,
            f"optim.class_weights={self.class_weights!r}; choose {' or '.join(CLASS_WEIGHTS)}",
        )


@dataclass
class TrainConfig:
    epochs: int = 5  # passes over the training split (fine-tuning strategies, scratch); measured in bench/
    batch_size: int = 32  # examples per optimizer step, and per extraction batch
    seed: int = 0  # seed of weight init, shuffling and augmentation
    precision: str = "auto"  # auto (bf16 where the hardware runs it fast) | fp32 | bf16
    channels_last: bool = True  # NHWC memory format: faster convolutions on CPU and GPU
    # CPU bf16 steps: depthwise convolutions' backward in fp32 (same forward; about half an EfficientNet step there)
    fp32_depthwise_grads: bool = True
    # Training steps: an eval-mode BatchNorm (bn=frozen, frozen groups) folded into the convolution before it
    # (the same function, rounded differently; an EfficientNet step on CPU: 0.8-0.93x in bf16, 0.6-0.95x in fp32)
    fold_bn: bool = True
    num_workers: int = 0  # DataLoader worker processes (0 = load in the main process)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log: str = "jsonl"  # jsonl (history.jsonl, always written) | tensorboard (also TensorBoard event files in RUN/tb)
    # While the first layer groups are frozen, compute their output once per example and train the rest from it
    # (exact: same weights and metrics as without; off by itself where it would not be, the log says why)
    cache_frozen: bool = True
    cache_memory_gb: float = 2.0  # memory for those activations; beyond it they go to a file under the cache folder

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"train.epochs={self.epochs} must be >= 1")
        check_seed("train.seed", self.seed)
        _check(self.log in LOGS, f"train.log={self.log!r}; choose {' or '.join(LOGS)}")
        _check(self.batch_size >= 1, f"train.batch_size={self.batch_size} must be >= 1")
        _check(self.precision in PRECISIONS, f"train.precision={self.precision!r}; choose {PRECISIONS}")
        _check(self.num_workers >= 0, "train.num_workers must be >= 0")
        _check(self.cache_memory_gb >= 0, f"train.cache_memory_gb={self.cache_memory_gb} must be >= 0")


@dataclass
class TaskConfig:
    kind: str = "classification"  # what the head predicts: classification | regression | multilabel
    loss: str = "mse"  # regression: mse | huber (on targets standardized with the training mean and std)

    def __post_init__(self) -> None:
        from headstart.tasks import get_task  # the registry names the choices (and a did-you-mean)

        get_task(self.kind)
        _check(self.loss in REGRESSION_LOSSES, f"task.loss={self.loss!r}; choose {' or '.join(REGRESSION_LOSSES)}")


@dataclass
class EvalConfig:
    threshold: str | None = None  # binary: decision threshold tuned on validation for f1 | recall:R; null = argmax
    n_boot: int = 1000  # bootstrap resamples for the 95% confidence intervals (0 = none)

    def __post_init__(self) -> None:
        ok = self.threshold in (None, "f1") or (
            isinstance(self.threshold, str)
            and self.threshold.startswith("recall:")
            and _is_fraction(self.threshold[7:])
        )
        _check(ok, f"eval.threshold={self.threshold!r}; choose f1 or recall:R with 0 < R <= 1 (e.g. recall:0.9)")
        _check(self.n_boot >= 0, "eval.n_boot must be >= 0")


def _is_fraction(text: str) -> bool:
    try:
        return 0 < float(text) <= 1
    except ValueError:
        return False
