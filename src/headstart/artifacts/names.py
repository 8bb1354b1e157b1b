"""The file names of a run folder and a comparison folder, in one place (written by ``artifacts``, read by
``report`` and the Python API). No imports: every room may use it."""

__all__ = [
    "COMPARISON",
    "ENCODER_DIR",
    "HISTORY",
    "LOCK_FILE",
    "MANIFEST",
    "METRICS",
    "MODEL_CARD",
    "PLAN",
    "PREDICTIONS",
    "REPORT",
    "TARGET_METRICS",
    "SPLITS",
    "VOCABULARY",
    "WEIGHTS",
]

MANIFEST = "headstart.json"  # backbone, recipe, labels, strategy, resolved config, metrics, versions, data
WEIGHTS = "model.safetensors"  # the trained network's state dict
METRICS = "metrics.json"  # test-split metrics with confidence intervals
HISTORY = "history.jsonl"  # one record per epoch
SPLITS = "splits.json"  # ids of the train / val / test examples
PREDICTIONS = "predictions.csv"  # test-split predictions, one row per example
PLAN = "plan.md"  # which layer groups train from when, at which learning rate
MODEL_CARD = "README.md"  # the model card: what the model is, how it scored, its limits, how to use it
TARGET_METRICS = "target_metrics.json"  # --target with labels: metrics.json's keys on all of TARGET
REPORT = "report.html"  # the self-contained report (a run's, or a comparison's)
COMPARISON = "comparison.json"  # a finished `headstart compare`
LOCK_FILE = ".headstart.lock"  # held while a command writes the folder; left behind, it marks the folder as ours
ENCODER_DIR = "encoder"  # text runs: the encoder's config.json and tokenizer files
VOCABULARY = "vocabulary.txt"  # TF-IDF runs: the fitted terms, one per line, in feature order
