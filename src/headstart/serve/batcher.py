"""Micro-batching: requests that arrive together share one forward pass.

An HTTP server answers many small requests at once; a network is fastest on batches. :class:`MicroBatcher`
sits between the two. Each request submits its inputs and gets a future. One worker thread takes the
oldest waiting request, then keeps collecting the requests that arrive within ``max_wait_s`` of it (or
until ``max_batch`` inputs are gathered), calls ``predict`` once on all their inputs and hands every
request its own slice of the answers, in order.

* Under load the queue is never empty when the worker comes back, so batches fill without waiting; when
  idle a request waits at most ``max_wait_s`` (a few milliseconds) for company.
* A request is never split: one with more inputs than ``max_batch`` runs alone (``predict`` batches it
  itself), and a request that would overfill a batch opens the next one.
* One thread runs the model, so torch is never entered from two threads at once.
* If a batch of several requests fails, each request is run again on its own, so one request's failure
  never fails its neighbours.
* :meth:`MicroBatcher.close` refuses new requests, answers every request already submitted, then stops the
  worker: the drain of a graceful shutdown.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["MicroBatcher", "BatcherClosed", "BatchStats"]

logger = logging.getLogger(__name__)

Predict = Callable[[list[Any]], list[Any]]  # inputs -> one answer per input, in order


class BatcherClosed(RuntimeError):
    """A request submitted after :meth:`MicroBatcher.close` (the server is shutting down)."""


@dataclass
class BatchStats:
    """What the worker has done so far (``/info`` shows it)."""

    submitted: int = 0  # requests handed in (``submitted - requests - cancelled``: in flight now)
    batches: int = 0  # calls of ``predict`` (forward passes of the whole batch)
    requests: int = 0  # requests answered (with answers or an error)
    inputs: int = 0  # inputs predicted
    largest_batch: int = 0  # the most requests one call of ``predict`` served
    batched_requests: int = 0  # requests that shared their call of ``predict`` with at least one other
    cancelled: int = 0  # requests dropped unanswered: their client had left before their batch ran


@dataclass
class _Job:
    items: list[Any]  # one request's inputs
    future: Future[list[Any]] = field(default_factory=Future)


_STOP = object()  # the queue's last item: the worker stops when it reaches it


class MicroBatcher:
    """Collects the inputs of concurrent requests into batches for one worker thread.

    Example::

        batcher = MicroBatcher(lambda xs: [x * 2 for x in xs], max_batch=32, max_wait_s=0.005)
        batcher.start()
        batcher.submit([1, 2]).result()  # [2, 4]
        batcher.close()
    """

    def __init__(self, predict: Predict, max_batch: int, max_wait_s: float):
        if max_batch < 1:
            raise ValueError(f"max_batch={max_batch}; use 1 or more inputs")
        if not 0 <= max_wait_s <= 10:
            raise ValueError(f"max_wait_s={max_wait_s}; use 0 to 10 seconds (a few milliseconds is typical)")
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[Any] = queue.Queue()
        self._carry: _Job | None = None  # taken from the queue but did not fit: opens the next batch
        self._lock = threading.Lock()  # guards _closed against submit / close races, and the stats
        self._closed = False
        self._stats = BatchStats()
        self._worker = threading.Thread(target=self._run, name="headstart-batcher", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def submit(self, items: list[Any]) -> Future[list[Any]]:
        """Queue one request's inputs; the future gets one answer per input, in order (or the exception)."""
        job = _Job(list(items))
        with self._lock:
            if self._closed or not self._worker.is_alive():
                raise BatcherClosed("the server is shutting down and takes no new requests; send it again later")
            self._queue.put(job)
            self._stats.submitted += 1
        return job.future

    def close(self, timeout: float | None = None) -> None:
        """Take no new requests, answer those already queued, stop the worker (waits up to ``timeout`` s)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if self._worker.is_alive():
            self._worker.join(timeout)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self._stats)

    def _run(self) -> None:
        while True:
            first = self._carry or self._queue.get()
            self._carry = None
            if first is _STOP:
                return
            batch, stop = self._collect(first)
            if batch:
                self._answer(batch)
            if stop:
                return

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        """``first`` and the requests arriving within ``max_wait_s``, up to ``max_batch`` inputs; and whether
        the stop marker was reached (everything before it is in the batch or answered)."""
        batch = [first] if self._take(first) else []
        size = sum(len(job.items) for job in batch)
        deadline = time.monotonic() + self.max_wait_s
        while size < self.max_batch:
            remaining = deadline - time.monotonic()
            try:  # past the deadline: only what is already waiting
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            if size + len(job.items) > self.max_batch and batch:
                self._carry = job
                break
            if self._take(job):
                batch.append(job)
                size += len(job.items)
        return batch, False

    def _take(self, job: _Job) -> bool:
        """Mark ``job`` as running; False (and counted) when its request was cancelled meanwhile."""
        if job.future.set_running_or_notify_cancel():
            return True
        with self._lock:
            self._stats.cancelled += 1
        return False

    def _answer(self, batch: list[_Job]) -> None:
        """Predict every input of ``batch`` in one call and give each request its slice of the answers."""
        items = [x for job in batch for x in job.items]
        try:
            answers = self.predict(items)
            if len(answers) != len(items):
                raise RuntimeError(f"predict gave {len(answers)} answers for {len(items)} inputs")
        except Exception as exc:
            if len(batch) > 1:  # find the request at fault: the others still get their answers
                logger.info("a batch of %d requests failed (%s); answering each on its own", len(batch), exc)
                for job in batch:
                    self._answer([job])
                return
            self._count(batch, 0)
            batch[0].future.set_exception(exc)
            return
        self._count(batch, len(items))
        start = 0
        for job in batch:
            job.future.set_result(answers[start : start + len(job.items)])
            start += len(job.items)

    def _count(self, batch: list[_Job], inputs: int) -> None:
        with self._lock:
            s = self._stats
            s.batches += 1
            s.requests += len(batch)
            s.inputs += inputs
            s.largest_batch = max(s.largest_batch, len(batch))
            s.batched_requests += len(batch) if len(batch) > 1 else 0
