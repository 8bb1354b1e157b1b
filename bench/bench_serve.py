"""Benchmark: `headstart serve` under 1, 4 and 16 concurrent clients vs offline batched `predict`.

Run with `.venv/bin/python bench/bench_serve.py [--run RUN] [--requests 128] [--clients 1,4,16]`.
Loopback only, bounded: at most --requests requests per level and --seconds of load in all; the server is
stopped (SIGTERM) at the end. Without --run it first trains a small image run (mobilenet_v2 linear probe on
28 ELPV cells). Prints, per number of clients:
  * throughput (images/s), p50 and p99 latency of a request (one image each by default);
  * lost / duplicated / wrong answers: every request must be answered exactly once, with the record
    offline `hs.load(run).predict` gives for the same file (probabilities within 1e-5);
  * the mean batch the server ran (from /info);
and the ratio the target is about: throughput with 16 clients / offline batched predict on the same
images (target >= 0.7).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HEADSTART = str(Path(sys.executable).parent / "headstart")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def train_small_run(tmp: Path) -> Path:
    out = tmp / "run"
    cmd = [
        HEADSTART,
        "train",
        "builtin:elpv",
        "--limit-per-class",
        "14",
        "--backbone",
        "mobilenet_v2",
        "--strategy",
        "linear-probe",
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, env=ENV, capture_output=True, timeout=900)
    return out


def write_images(tmp: Path, n: int) -> list[Path]:
    """``n`` real ELPV cells as PNG files."""
    from PIL import Image

    from headstart.data import load_images

    cells = load_images("builtin:elpv")
    assert cells.arrays is not None
    step = max(1, len(cells.arrays) // n)
    paths = []
    for k in range(n):
        paths.append(tmp / f"cell{k}.png")
        Image.fromarray(cells.arrays[(k * step) % len(cells.arrays)]).save(paths[-1])
    return paths


def start_server(run: Path, log: Path, max_wait_ms: float) -> tuple[subprocess.Popen, str]:
    with log.open("w") as err:
        proc = subprocess.Popen(
            [HEADSTART, "serve", str(run), "--port", "0", "--max-wait-ms", str(max_wait_ms)], stderr=err, env=ENV
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text())
        if found:
            try:
                if httpx.get(f"{found.group(1)}/health", timeout=5).status_code == 200:
                    return proc, found.group(1)
            except httpx.TransportError:
                pass
        if proc.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()}")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start within 300 s:\n{log.read_text()}")


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body with ``files`` in the field ``files``, and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        parts.append(head.encode() + b"Content-Type: image/png\r\n\r\n" + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def load_level(url: str, uploads: list[tuple[str, bytes]], clients: int, requests: int, per: int, until: float) -> dict:
    """``requests`` requests of ``per`` images from ``clients`` threads; each request id's answers and latency.

    The clients are keep-alive ``http.client`` connections sending bodies encoded before the clock starts (as a
    load generator such as wrk does): the bench shares the machine's cores with the server, and httpx building
    every form in Python took a visible share of them."""
    ids = itertools.count()
    lock = threading.Lock()
    answers: dict[int, list[Any]] = {}
    latency: dict[int, float] = {}
    failures: list[str] = []
    bodies = [multipart([uploads[(k * per + j) % len(uploads)] for j in range(per)]) for k in range(requests)]
    host, port = url.removeprefix("http://").split(":")
    attempted: set[int] = set()

    def client() -> None:
        http = HTTPConnection(host, int(port), timeout=120)
        try:
            while time.monotonic() < until:
                with lock:
                    k = next(ids)
                    if k >= requests:
                        return
                    attempted.add(k)
                body, content_type = bodies[k]
                t = time.perf_counter()
                try:
                    http.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
                    response = http.getresponse()
                    status, text = response.status, response.read()
                except (OSError, HTTPException) as exc:  # no answer: counted as lost
                    http.close()
                    with lock:
                        failures.append(f"request {k}: {type(exc).__name__}: {exc}")
                    continue
                with lock:
                    latency[k] = time.perf_counter() - t
                    if status != 200:
                        failures.append(f"request {k}: {status} {text[:200]!r}")
                    answers.setdefault(k, []).append(json.loads(text) if status == 200 else None)
        finally:
            http.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"answers": answers, "latency": latency, "failures": failures, "wall": wall, "sent": len(attempted)}


def check(level: dict, uploads: list[tuple[str, bytes]], offline: dict[str, Any], sent: int, per: int) -> dict:
    """Lost, duplicated and wrong answers of one level."""
    answers = level["answers"]
    lost = sent - len(answers)
    duplicated = sum(len(v) - 1 for v in answers.values())
    wrong = 0
    for k, got in answers.items():
        names = [uploads[(k * per + j) % len(uploads)][0] for j in range(per)]
        records = got[0]
        if records is None or [r["path"] for r in records] != names:
            wrong += 1
            continue
        for r in records:
            want = offline[r["path"]]
            if r["label"] != want["label"] or not np.allclose(
                list(r["probabilities"].values()), list(want["probabilities"].values()), atol=1e-5
            ):
                wrong += 1
                break
    return {"lost": lost, "duplicated": duplicated, "wrong": wrong}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, help="an image run folder (default: train a small one)")
    ap.add_argument("--images", type=int, default=64, help="distinct images to send")
    ap.add_argument("--requests", type=int, default=128, help="requests per level")
    ap.add_argument("--per-request", type=int, default=1, help="images per request")
    ap.add_argument("--clients", default="1,4,16", help="comma-separated concurrency levels")
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=600, help="at most this much load in all (levels stop early)")
    args = ap.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    import headstart as hs

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        run = args.run or train_small_run(tmp)
        paths = write_images(tmp, args.images)
        uploads = [(str(p), p.read_bytes()) for p in paths]
        model = hs.load(run)
        model.predict([str(p) for p in paths[:4]])  # warm-up
        before, offline_records = offline_rates(model, paths)
        offline = {r["path"]: r for r in offline_records}
        print(f"run {run}: offline batched predict {statistics.median(before):.1f} img/s over {len(paths)} images")

        proc, url = start_server(run, tmp / "server.log", args.max_wait_ms)
        try:
            rows = run_levels(url, uploads, offline, levels, args)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(120)
        print(f"server stopped with exit code {code}")
        after, _ = offline_rates(model, paths)  # again: on a shared machine the load may have changed meanwhile
        print(f"offline batched predict after the server: {statistics.median(after):.1f} img/s")
    print_rows(rows, statistics.median(before + after), args.per_request)


def offline_rates(model: Any, paths: list[Path], repeats: int = 3) -> tuple[list[float], list[dict]]:
    """Images per second of ``repeats`` offline ``predict`` calls on ``paths`` (in batches of the run's batch
    size), and the last call's records."""
    rates, records = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        records = model.predict([str(p) for p in paths])
        rates.append(len(paths) / (time.perf_counter() - t))
    return rates, records


def run_levels(url: str, uploads: list[tuple[str, bytes]], offline: dict, levels: list[int], args: Any) -> list[dict]:
    httpx.post(f"{url}/predict", files=[("files", (uploads[0][0], uploads[0][1], "image/png"))], timeout=120)  # warm
    until = time.monotonic() + args.seconds
    rows = []
    for clients in levels:
        before = httpx.get(f"{url}/info").json()["batching"]
        level = load_level(url, uploads, clients, args.requests, args.per_request, until)
        after = httpx.get(f"{url}/info").json()["batching"]
        sent = level["sent"]
        lat = sorted(level["latency"].values())
        batches = after["batches"] - before["batches"]
        rows.append(
            {
                "clients": clients,
                "sent": sent,
                **check(level, uploads, offline, sent, args.per_request),
                "server_answered": after["requests"] - before["requests"],
                "rate": len(lat) * args.per_request / level["wall"],
                "p50": 1000 * statistics.median(lat) if lat else float("nan"),
                "p99": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
                "mean_batch": (after["inputs"] - before["inputs"]) / batches if batches else float("nan"),
                "failures": level["failures"][:3],
            }
        )
    return rows


def print_rows(rows: list[dict], offline_rate: float, per: int) -> None:
    print(f"\n| clients | requests ({per} img) | lost | dup | wrong | img/s | p50 ms | p99 ms | mean batch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r['sent']} (server: {r['server_answered']})", r["lost"], r["duplicated"], r["wrong"]]
        cells += [f"{r['rate']:.1f}", f"{r['p50']:.0f}", f"{r['p99']:.0f}", f"{r['mean_batch']:.1f}"]
        print(f"| {r['clients']} | " + " | ".join(map(str, cells)) + " |")
        for f in r["failures"]:
            print(f"  failure: {f}")
    top = max(rows, key=lambda r: r["clients"])
    print(
        f"\nthroughput with {top['clients']} clients / offline batched predict (median of 3 before and 3 after): "
        f"{top['rate']:.1f} / {offline_rate:.1f} = {top['rate'] / offline_rate:.2f}x (target >= 0.7)"
    )


if __name__ == "__main__":
    main()
