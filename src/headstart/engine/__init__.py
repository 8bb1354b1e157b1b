"""Engine: runtime (device, precision), feature extraction + cache, inference, the train loop."""

from headstart.engine.features import FeatureSet, cache_dir, extract_features
from headstart.engine.inference import head_logits, pooled_features, run_features, run_scores
from headstart.engine.runtime import Runtime, resolve_runtime
from headstart.engine.schedule import warmup_cosine
from headstart.engine.train import TrainResult, train_gradient

__all__ = [
    "FeatureSet",
    "Runtime",
    "TrainResult",
    "cache_dir",
    "extract_features",
    "head_logits",
    "pooled_features",
    "resolve_runtime",
    "run_features",
    "run_scores",
    "train_gradient",
    "warmup_cosine",
]
