"""Distributed runs on PyTorch's own engine: torchrun starts the processes, DDP syncs gradients.

``headstart train ... --nproc N`` (or ``torchrun --nproc-per-node N -m headstart train ...``) starts
N processes; each calls :func:`setup`, which joins the process group described by torchrun's
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``): NCCL on GPUs,
Gloo on CPUs. Without those variables everything here is a no-op and a run is single-process.

How work is split so that a run on N processes equals a single-process run with the same
**global** batch (``train.batch_size``):

* training batches: every rank draws the same global batch order from the same seeded sampler
  and takes its contiguous slice of each global batch (:class:`ShardedBatchSampler`); DDP
  averages the gradients, so each step sees the mean loss over the global batch;
* evaluation and feature extraction: each rank handles ``index[rank::world]``; results are
  gathered back into dataset order on every rank (:func:`gather_rows`);
* freezing: DDP tracks the parameters that require gradients when it is built, so the trainer
  rebuilds the DDP wrapper after every phase change (all ranks change phase at the same step:
  schedules are by step and plateau decisions read gathered, identical validation metrics);
* only rank 0 writes files (run directory, checkpoints, feature cache, report).
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from headstart.errors import HeadstartError

__all__ = [
    "ShardedBatchSampler",
    "barrier",
    "gather_rows",
    "is_distributed",
    "is_main",
    "launch",
    "local_rank",
    "mean_across",
    "rank",
    "setup",
    "shard",
    "shard_loader",
    "teardown",
    "world_size",
]

logger = logging.getLogger(__name__)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single-process run): the process that writes files and prints."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: str = "auto") -> bool:
    """Join torchrun's process group when its environment is set; returns True when distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return is_distributed()
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank())
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    except (RuntimeError, ValueError) as exc:
        raise HeadstartError(
            f"could not join the torchrun process group ({backend}): {exc}; start with "
            "`headstart train ... --nproc N` or `torchrun --nproc-per-node N -m headstart train ...`"
        ) from exc
    atexit.register(teardown)  # leave the group cleanly however the command ends
    logger.info("rank %d of %d joined (%s)", rank(), world_size(), backend)
    return True


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``headstart ARGV`` in ``nproc`` local processes under torchrun; returns its exit code.

    For several machines run torchrun yourself: ``torchrun --nnodes 2 --node-rank R
    --rdzv-endpoint HOST:PORT --nproc-per-node N -m headstart train ...``.
    """
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return subprocess.call([*cmd, "-m", "headstart", *argv])


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def mean_across(value: float) -> float:
    """The mean of ``value`` over all ranks (``value`` itself in a single process)."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / world_size()


def shard(index: np.ndarray) -> np.ndarray:
    """This rank's share of ``index`` for evaluation and extraction: ``index[rank::world]``."""
    return np.asarray(index)[rank() :: world_size()]


def gather_rows(parts: Sequence[np.ndarray], index: np.ndarray) -> list[np.ndarray]:
    """Gather per-rank arrays whose rows belong to dataset positions ``index`` (this rank's shard).

    Returns each array with the rows of all ranks, ordered by dataset position, on every rank.
    """
    if not is_distributed():
        return list(parts)
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, (list(parts), np.asarray(index)))
    order = np.argsort(np.concatenate([g[1] for g in gathered]), kind="stable")
    return [np.concatenate([g[0][k] for g in gathered])[order] for k in range(len(parts))]


class ShardedBatchSampler(Sampler[list[int]]):
    """This rank's contiguous slice of every global batch of ``batches`` (a batch sampler).

    All ranks iterate the same seeded global batches, so the union of the slices of one step is
    exactly the batch a single process would draw.
    """

    def __init__(self, batches: Any, rank: int, world: int):
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            yield list(np.array_split(np.asarray(batch), self.world)[self.rank])


def shard_loader(loader: DataLoader) -> DataLoader:
    """The same loader, yielding this rank's slice of each global batch (identity when not distributed)."""
    if not is_distributed():
        return loader
    if loader.batch_size is not None and loader.batch_size % world_size():
        raise HeadstartError(
            f"train.batch_size={loader.batch_size} is the global batch and must divide evenly over "
            f"{world_size()} processes; use a multiple of {world_size()}"
        )
    return DataLoader(
        loader.dataset,
        batch_sampler=ShardedBatchSampler(loader.batch_sampler, rank(), world_size()),
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        generator=loader.generator,
        persistent_workers=loader.persistent_workers,
    )
