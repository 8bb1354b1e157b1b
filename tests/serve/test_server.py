"""``headstart serve`` over real HTTP: a small image run behind the console script, a text run behind uvicorn
in this process; every endpoint, every refused request, micro-batching, and the graceful SIGTERM shutdown."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

import headstart as hs
from headstart.errors import HeadstartError
from tests.console import HEADSTART, headstart, refused

pytestmark = pytest.mark.slow
MAX_INPUTS = 8  # the servers here take at most 8 inputs per request
MAX_BODY_MB = 1


def _train(tmp: Path, data: Path, backbone: str) -> Path:
    out = tmp / backbone
    cache = str(tmp / "cache")
    run = headstart("train", str(data), "--backbone", backbone, "--strategy", "linear-probe", "--out", str(out),
                    "--set", "train.batch_size=8", HEADSTART_CACHE_DIR=cache)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return out


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory, elpv_folder: Path) -> Path:
    return _train(tmp_path_factory.mktemp("serve"), elpv_folder, "mobilenet_v2")


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory, tweets_csv: Path) -> Path:
    return _train(tmp_path_factory.mktemp("serve"), tweets_csv, "minilm")


@pytest.fixture(scope="module")
def cells(elpv_folder: Path) -> list[Path]:
    """Real ELPV cell images, both classes."""
    return sorted(elpv_folder.rglob("*.png"))[::3]


class Served:
    """A ``headstart serve`` process: its URL, and its stderr so far."""

    def __init__(self, run: Path, log: Path, *options: str):
        self.log = log
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        with log.open("w") as err:
            self.proc = subprocess.Popen([HEADSTART, "serve", str(run), "--port", "0", *options], stderr=err, env=env)
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            found = re.search(r"on (http://127\.0\.0\.1:\d+)", self.log.read_text())
            if found and _healthy(found.group(1)):
                return found.group(1)
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.2)
        raise AssertionError(f"the server did not start:\n{self.log.read_text()}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        assert "Traceback" not in self.log.read_text(), self.log.read_text()
        return code


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def image_url(image_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The console script serving the image run (small limits, a 20 ms batching window)."""
    log = tmp_path_factory.mktemp("serve-log") / "stderr.txt"
    served = Served(image_run, log, "--max-inputs", str(MAX_INPUTS), "--max-body-mb", str(MAX_BODY_MB),
                    "--max-wait-ms", "20")  # fmt: skip
    yield served.url
    assert served.stop() == 0
    assert "server stopped" in log.read_text()


@contextmanager
def _in_process(app: Any) -> Iterator[str]:
    """uvicorn serving ``app`` in a thread of this process (``create_app`` directly); its URL."""
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 60
    while not (server.started and _healthy(url)):
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(60)


@pytest.fixture(scope="module")
def text_url(text_run: Path) -> Iterator[str]:
    from headstart.serve.app import create_app

    with _in_process(create_app(text_run, max_inputs=MAX_INPUTS)) as url:
        yield url


def _files(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart uploads named by their full path, as ``headstart predict PATH`` names its records."""
    return [("files", (str(p), p.read_bytes(), "image/png")) for p in paths]


def _assert_same(records: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """The same records, probabilities within 1e-5."""
    assert len(records) == len(expected)
    for got, want in zip(records, expected, strict=True):
        assert set(got) == set(want) and got["label"] == want["label"]
        assert {k: v for k, v in got.items() if k != "probabilities"} == {
            k: v for k, v in want.items() if k != "probabilities"
        }
        if want["probabilities"] is not None:
            assert list(got["probabilities"]) == list(want["probabilities"])
            np.testing.assert_allclose(list(got["probabilities"].values()), list(want["probabilities"].values()),
                                       atol=1e-5)  # fmt: skip


def test_health_and_info(image_url: str, image_run: Path) -> None:
    health = httpx.get(f"{image_url}/health").json()
    assert health == {"status": "ok", "run": str(image_run.resolve())}
    info = httpx.get(f"{image_url}/info").json()
    manifest = json.loads((image_run / "headstart.json").read_text())
    metrics = json.loads((image_run / "metrics.json").read_text())
    assert info["labels"] == manifest["labels"] and info["task"] == "classification"
    assert info["backbone"] == "mobilenet_v2" and info["strategy"] == "linear-probe"
    assert info["recipe"] == manifest["recipe"]
    for key in ("accuracy", "macro_f1", "roc_auc"):
        assert info["metrics"][key] == {"value": metrics[key], "ci95": metrics["ci95"][key]}
    assert info["metrics"]["n"] == metrics["n"]
    assert info["limits"] == {"max_body_mb": MAX_BODY_MB, "max_inputs": MAX_INPUTS}
    assert info["input"] == {"content_type": "multipart/form-data", "field": "files"}
    assert info["batching"]["max_batch"] == 8 and info["batching"]["max_wait_ms"] == 20


def test_openapi_describes_the_upload(image_url: str) -> None:
    spec = httpx.get(f"{image_url}/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    assert body["multipart/form-data"]["schema"]["properties"]["files"]["maxItems"] == MAX_INPUTS
    assert httpx.get(f"{image_url}/docs").status_code == 200


def test_predict_equals_offline_predict(image_url: str, image_run: Path, cells: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    paths = [*cells[:3], bad, *cells[3:5]]
    answer = httpx.post(f"{image_url}/predict", files=_files(paths), timeout=120)
    assert answer.status_code == 200, answer.text
    offline = hs.load(image_run).predict([str(p) for p in paths])
    _assert_same(answer.json(), offline)  # the unreadable file too: same record, same message
    assert answer.json()[3]["error"] == f"{bad}: UnidentifiedImageError: cannot identify image file {str(bad)!r}"
    cli = headstart("predict", str(image_run), *map(str, paths), "--format", "json")
    _assert_same(answer.json(), json.loads(cli.stdout))


def test_concurrent_requests_are_batched(image_url: str, image_run: Path, cells: list[Path]) -> None:
    before = httpx.get(f"{image_url}/info").json()["batching"]
    paths = cells[:8]
    offline = hs.load(image_run).predict([str(p) for p in paths])
    answers: dict[int, httpx.Response] = {}
    start = threading.Barrier(len(paths))

    def post(k: int) -> None:
        start.wait()
        answers[k] = httpx.post(f"{image_url}/predict", files=_files([paths[k]]), timeout=120)

    threads = [threading.Thread(target=post, args=(k,)) for k in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert sorted(answers) == list(range(len(paths)))
    for k, answer in answers.items():
        assert answer.status_code == 200, answer.text
        _assert_same(answer.json(), [offline[k]])
    after = httpx.get(f"{image_url}/info").json()["batching"]
    assert after["requests"] - before["requests"] == len(paths) == after["submitted"] - before["submitted"]
    assert after["inputs"] - before["inputs"] == len(paths)
    assert after["batches"] - before["batches"] < len(paths)  # some requests shared a forward pass
    assert after["largest_batch"] > 1 and after["batched_requests"] > before["batched_requests"]


def _chunked(size: int) -> Iterator[bytes]:
    boundary_part = b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n\r\n'
    yield boundary_part
    for _ in range(size // 65536 + 1):
        yield b"\0" * 65536
    yield b"\r\n--xyz--\r\n"


def _image_cases(cells: list[Path]) -> dict[str, tuple[dict[str, Any], int, str]]:
    """Refused requests to an image run: request keywords, status, a fragment of the error."""
    one = cells[0].read_bytes()
    form = {"content-type": "multipart/form-data; boundary=xyz"}
    return {
        "not an image": ({"files": [("files", ("a.png", b"GIF89a nonsense", "image/png"))]}, 422, "a.png"),
        "empty body": ({"headers": form}, 400, "body is empty"),
        "texts to an image model": ({"json": {"texts": ["hello"]}}, 415, "takes image files, not JSON texts"),
        "another content type": ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "text/plain"),
        "wrong field": ({"files": [("file", ("a.png", one, "image/png"))]}, 422, "'file'"),
        "text field": ({"files": [("files", (None, b"cell.png", "text/plain"))]}, 422, "must be a file"),
        "too many files": (
            {"files": [("files", (f"{k}.png", one, "image/png")) for k in range(9)]},
            413,
            "--max-inputs",
        ),  # fmt: skip
        "too large": (
            {"files": [("files", ("big.png", b"\0" * (MAX_BODY_MB * 2**20 + 1), "image/png"))]},
            413,
            "--max-body-mb",
        ),  # fmt: skip
        "too large, chunked": ({"content": _chunked(MAX_BODY_MB * 2**20), "headers": form}, 413, "--max-body-mb"),
        "malformed multipart": ({"content": b"--nope\r\n\r\n", "headers": form}, 400, "malformed multipart"),
        "no boundary": ({"content": b"x", "headers": {"content-type": "multipart/form-data"}}, 400, "boundary"),
    }


CASES = [
    "not an image",
    "empty body",
    "texts to an image model",
    "another content type",
    "wrong field",
    "text field",
    "too many files",
    "too large",
    "too large, chunked",
    "malformed multipart",
    "no boundary",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_image_requests_are_refused_and_the_server_keeps_serving(
    image_url: str, cells: list[Path], case: str
) -> None:
    kwargs, status, fragment = _image_cases(cells)[case]
    answer = httpx.post(f"{image_url}/predict", timeout=60, **kwargs)
    assert answer.status_code == status, answer.text
    assert list(answer.json()) == ["error"] and fragment in answer.json()["error"], answer.text
    good = httpx.post(f"{image_url}/predict", files=_files(cells[:1]), timeout=60)
    assert good.status_code == 200 and good.json()[0]["label"] in ("functional", "defective")


def test_unknown_paths_and_methods_answer_json(image_url: str) -> None:
    for answer, status in ((httpx.get(f"{image_url}/nope"), 404), (httpx.get(f"{image_url}/predict"), 405)):
        assert answer.status_code == status and "POST /predict" in answer.json()["error"]


def test_text_predict_equals_offline_predict(text_url: str, text_run: Path) -> None:
    texts = ["what a wonderful day", "", "this is the worst service ever", "the meeting is at noon"]
    answer = httpx.post(f"{text_url}/predict", json={"texts": texts}, timeout=120)
    assert answer.status_code == 200, answer.text
    _assert_same(answer.json(), hs.load(text_run).predict(texts))
    assert answer.json()[1] == {"text": "", "label": None, "probabilities": None, "error": "empty text"}
    info = httpx.get(f"{text_url}/info").json()
    assert info["input"] == {"content_type": "application/json", "field": "texts"} and info["backbone"] == "minilm"


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"files": [("files", ("a.txt", b"hello", "text/plain"))]}, 415, "takes JSON texts, not files"),
        ({"content": b'{"texts": [', "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
        ({"json": ["a text"]}, 422, '"texts"'),
        ({"json": {"texts": "a text"}}, 422, "non-empty list of strings"),
        ({"json": {"texts": ["ok", 3]}}, 422, '"texts"[1] is not a string'),
        ({"json": {"texts": ["", "  "]}}, 422, "none of the 2 input(s)"),
        ({"json": {"texts": ["a"] * 9}}, 413, "--max-inputs"),
        ({"json": {"texts": ["a"], "lang": "en"}}, 422, "'lang'"),
    ],
    ids=["files", "bad json", "a list", "a string", "a number", "all empty", "too many", "extra key"],
)
def test_bad_text_requests_are_refused_and_the_server_keeps_serving(
    text_url: str, kwargs: dict[str, Any], status: int, fragment: str
) -> None:
    answer = httpx.post(f"{text_url}/predict", timeout=60, **kwargs)
    assert answer.status_code == status, answer.text
    assert list(answer.json()) == ["error"] and fragment in answer.json()["error"], answer.text
    assert httpx.post(f"{text_url}/predict", json={"texts": ["fine"]}, timeout=60).status_code == 200


def test_sigterm_answers_the_request_in_flight(image_run: Path, cells: list[Path], tmp_path: Path) -> None:
    served = Served(image_run, tmp_path / "stderr.txt", "--max-wait-ms", "1000")  # a request waits ~1 s
    answers: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: answers.append(httpx.post(f"{served.url}/predict", files=_files(cells[:2]), timeout=120))
    )
    thread.start()
    deadline = time.monotonic() + 30
    while httpx.get(f"{served.url}/info").json()["batching"]["submitted"] == 0:  # the request is in the batcher
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert served.stop() == 0
    thread.join(60)
    assert answers and answers[0].status_code == 200, answers
    _assert_same(answers[0].json(), hs.load(image_run).predict([str(p) for p in cells[:2]]))
    assert not _healthy(served.url)


def test_command_line_refusals(image_run: Path, tmp_path: Path) -> None:
    refused(headstart("serve", str(tmp_path)), "is not a headstart run")
    refused(headstart("serve", str(image_run), "--max-inputs", "0"), "--max-inputs 0", "1 or more")
    refused(headstart("serve", str(image_run), "--port", "70000"), "--port 70000")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = str(busy.getsockname()[1])
        refused(headstart("serve", str(image_run), "--port", port), f"port {port}", "already in use", "--port 0")


def test_missing_server_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from headstart.serve import require_server_packages

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(HeadstartError, match=re.escape("uvicorn") + ".*pip install 'headstart\\[serve\\]'"):
        require_server_packages()


DRUMS = Path("/usr/share/hydrogen/data/drumkits")


@pytest.mark.skipif(not DRUMS.is_dir(), reason="Debian hydrogen-drumkits is not installed (make setup)")
def test_audio_uploads_equal_offline_predict(tmp_path: Path) -> None:
    from headstart.data.audio_sources import load_audio
    from headstart.serve.app import create_app

    drums = load_audio("builtin:drums")
    assert drums.paths is not None
    picks = [
        int(np.flatnonzero(drums.targets == drums.labels.index(name))[k])
        for name in ("kick", "snare")
        for k in range(6)
    ]
    table = tmp_path / "drums.csv"
    with table.open("w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *((drums.paths[i], drums.labels[drums.targets[i]]) for i in picks)])
    run = _train(tmp_path, table, "aisfx")
    sent = [Path(drums.paths[i]) for i in picks[::5]]
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF but not really")
    uploads = [("files", (str(p), p.read_bytes(), "audio/wav")) for p in [*sent, bad]]
    with _in_process(create_app(run)) as url:
        answer = httpx.post(f"{url}/predict", files=uploads, timeout=120)
    assert answer.status_code == 200, answer.text
    _assert_same(answer.json(), hs.load(run).predict([str(p) for p in [*sent, bad]]))  # the error names noise.wav too


def test_the_listening_socket_sends_small_writes_at_once() -> None:
    """asyncio disables Nagle only on IPPROTO_TCP sockets: without it a keep-alive client waited ~40 ms (a
    delayed ACK) for every response (bench/README.md, bench_serve.py)."""
    from headstart.cli.serve import _listen

    sock = _listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        client = socket.create_connection(sock.getsockname()[:2])
        accepted, _ = sock.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        accepted.close()
        client.close()
    finally:
        sock.close()
