"""Optional TensorBoard event files (``train.log=tensorboard``), next to the always-written history.jsonl.

The train loop logs each epoch as it ends (``RUN/tb``), so a run can be watched live with
``tensorboard --logdir RUN/tb``; runs without a train loop (linear probe, TF-IDF) write their
history at the end. Scalars: losses and validation metrics, trainable parameters, and the learning
rate of every optimizer group (``lr/<group>``); events such as ``unfroze block.5`` go in as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headstart.errors import HeadstartError

__all__ = ["TB_DIR", "TensorBoardLog", "epoch_scalars"]

TB_DIR = "tb"


def epoch_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of one history record, as TensorBoard tags.

    >>> epoch_scalars({"epoch": 2, "val_loss": 0.5, "lr": {"head": 0.001}, "events": ["unfroze block.6"]})
    {'val_loss': 0.5, 'lr/head': 0.001}
    """
    out: dict[str, float] = {}
    for key, value in record.items():
        if key == "lr" and isinstance(value, dict):
            out.update({f"lr/{name}": float(v) for name, v in value.items()})
        elif key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


class TensorBoardLog:
    """Writes history records as TensorBoard scalars, one step per epoch."""

    def __init__(self, folder: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # tensorboard is a declared dependency; a broken install lands here
            raise HeadstartError(
                "train.log=tensorboard needs the tensorboard package; run `make setup` (or `pip install tensorboard`)"
            ) from exc
        self.writer = SummaryWriter(log_dir=str(folder))

    def log(self, record: dict[str, Any]) -> None:
        step = int(record["epoch"])
        for tag, value in epoch_scalars(record).items():
            self.writer.add_scalar(tag, value, step)
        if record.get("events"):
            self.writer.add_text("events", "; ".join(record["events"]), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
