"""``headstart serve``: a trained run behind HTTP, as a FastAPI app (:func:`create_app`).

Why FastAPI on uvicorn: the Python ecosystem's standard for serving models over HTTP; async, so one process
holds many waiting connections while one thread runs the model; multipart uploads parsed by Starlette; the
OpenAPI schema and interactive docs (``/docs``) for free.

Endpoints: ``GET /health`` (``{"status": "ok", "run": PATH}``); ``GET /info`` (labels, task, modality,
backbone, strategy, recipe, headline test metrics with 95% intervals from ``metrics.json``, the limits, the
batcher's counters); ``POST /predict``: image or audio files as ``multipart/form-data`` (field ``files``,
repeatable), or JSON ``{"texts": [...]}`` for a text run, answered with exactly what ``headstart predict
--format json`` prints: a list, one record per input, in order; a file's record is named by its filename.
Images are decoded in memory (in a thread pool), audio goes through a temporary file per upload; the model
runs behind the micro-batcher (:mod:`headstart.serve.batcher`).

Errors are a JSON ``{"error": "..."}`` naming the problem and the fix, and the server keeps serving.
400: an empty body, malformed JSON or multipart. 413: a body over ``max_body_mb``, more than ``max_inputs``
inputs. 415: the wrong modality (texts to a file run, files to a text run) or another Content-Type. 422: JSON
other than ``{"texts": [strings]}``, a form field other than ``files``, no files, or no usable input at all
(no file decodes, every text is empty); when only some inputs are unusable the answer is 200 and their
records carry ``error``, as ``predict``'s do. 503: shutting down. 404 / 405: unknown path or method.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from headstart.artifacts import load_run
from headstart.artifacts.run_dir import LoadedRun
from headstart.data.images import UnreadableImage, decode_pil
from headstart.errors import HeadstartError
from headstart.modalities import get_modality
from headstart.serve.batcher import BatcherClosed, MicroBatcher
from headstart.tasks import get_task

__all__ = ["create_app", "ApiError"]

logger = logging.getLogger(__name__)

FIELD = "files"  # the multipart field that carries the inputs of a file run
JSON_TYPE, FORM_TYPE = "application/json", "multipart/form-data"


class ApiError(Exception):
    """A request the server refuses: the HTTP status and a message naming the problem and the fix."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class _Upload:
    name: str  # the client's filename: the record's ``path``
    data: bytes


@dataclass
class _Server:
    """One run being served: the model, the request limits and (while the app runs) the batcher."""

    run: LoadedRun
    max_batch: int  # most inputs per call of predict (a larger request runs alone)
    max_wait_ms: float  # how long the first request of a batch waits for company
    max_body: int  # bytes
    max_inputs: int  # per request
    texts: bool = False  # the run takes JSON texts (else multipart files)
    about: dict[str, Any] | None = None  # /info's facts of the run (read once, at start)
    batcher: MicroBatcher | None = None

    def predict(self, items: list[Any]) -> list[dict[str, Any]]:
        """The run's own predict (the batcher's worker thread calls it with a whole batch)."""
        return get_modality(self.run.modality).predict(self.run, items, self.run.config.train.batch_size)


def create_app(
    run_path: str | Path,
    *,
    max_batch: int | None = None,
    max_wait_ms: float = 5.0,
    max_body_mb: float = 32.0,
    max_inputs: int = 64,
) -> FastAPI:
    """The FastAPI app serving the run in ``run_path`` (loaded now: a bad run folder raises here).

    ``max_batch``: most inputs one forward pass collects from concurrent requests (default: the run's
    ``train.batch_size``); ``max_wait_ms``: how long a request waits for others to join its batch;
    ``max_body_mb``: the largest request body; ``max_inputs``: most files or texts in one request."""
    _check_options(max_batch, max_wait_ms, max_body_mb, max_inputs)
    run = load_run(run_path)
    texts = get_modality(run.modality).input_field == "text"  # a modality whose records name texts takes texts
    batch = max_batch or run.config.train.batch_size
    server = _Server(run, batch, max_wait_ms, int(max_body_mb * 2**20), max_inputs, texts, _describe(run, texts))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.batcher = MicroBatcher(server.predict, server.max_batch, server.max_wait_ms / 1000)
        server.batcher.start()
        try:
            yield
        finally:  # uvicorn has finished the requests in flight; answer whatever is still queued
            await run_in_threadpool(server.batcher.close)

    app = FastAPI(
        title=f"headstart: {run.path.name}",
        description=f"{run.manifest['strategy']} on {run.manifest['backbone']['name']}: {', '.join(run.labels)}",
        lifespan=lifespan,
    )
    _add_error_handlers(app)
    _add_routes(app, server)
    return app


def _check_options(max_batch: int | None, max_wait_ms: float, max_body_mb: float, max_inputs: int) -> None:
    """Each limit within its range, else an error naming the option and the range."""
    ranges: dict[str, tuple[float | None, float, float | None]] = {"--max-wait-ms": (max_wait_ms, 0, 1000)}
    ranges |= {"--max-batch": (max_batch, 1, None)}
    ranges |= {"--max-body-mb": (max_body_mb, 0.001, 4096), "--max-inputs": (max_inputs, 1, None)}
    for flag, (value, low, high) in ranges.items():
        if value is not None and (value < low or (high is not None and value > high)):
            span = f"{low:g} or more" if high is None else f"{low:g} to {high:g}"
            raise HeadstartError(f"{flag} {value:g}; use {span}")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def refused(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        message = f"{exc.detail}: {where}; the endpoints are GET /health, GET /info, POST /predict (docs: /docs)"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:  # a bug: JSON too, the log has the trace
        return JSONResponse({"error": f"internal error ({type(exc).__name__}: {exc}); see the server log"}, 500)


def _add_routes(app: FastAPI, server: _Server) -> None:
    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness: the server answers and holds its run."""
        return {"status": "ok", "run": str(server.run.path.resolve())}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        """The run (labels, task, backbone, recipe, headline metrics with 95% CIs), limits and batching counters."""
        return _info(server)

    @app.post("/predict", openapi_extra=_request_body(server))
    async def predict(request: Request) -> JSONResponse:
        """One record per input, in order, as ``headstart predict --format json`` prints them."""
        return JSONResponse(await _predict(request, server))


def _request_body(server: _Server) -> dict[str, Any]:
    """The OpenAPI description of the body ``/predict`` takes for this run."""
    item, key = ({"type": "string"}, "texts") if server.texts else ({"type": "string", "format": "binary"}, FIELD)
    inputs = {"type": "array", "items": item, "maxItems": server.max_inputs}
    schema = {"type": "object", "required": [key], "properties": {key: inputs}}
    media = JSON_TYPE if server.texts else FORM_TYPE
    return {"requestBody": {"required": True, "content": {media: {"schema": schema}}}}


def _describe(run: LoadedRun, texts: bool) -> dict[str, Any]:
    """What ``/info`` says of the run: its facts and headline test metrics (``metrics.json``), read once."""
    m, metrics_file = run.manifest, run.path / "metrics.json"
    metrics = m.get("metrics") or {}  # the manifest's copy, for a run folder without metrics.json
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else metrics
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeadstartError(f"{metrics_file} cannot be read ({exc}); copy the run again or re-train") from None
    ci95 = metrics.get("ci95") or {}
    headline = {k: {"value": metrics.get(k), "ci95": ci95.get(k)} for k in get_task(run.task.name).summary}
    return {
        "run": str(run.path.resolve()),
        "task": run.task.name,
        "modality": run.modality,
        "labels": list(run.labels),
        "backbone": m["backbone"]["name"],
        "strategy": m["strategy"],
        "recipe": m["recipe"],
        "metrics": {"n": metrics.get("n"), **headline},
        "input": {"content_type": JSON_TYPE, "field": "texts"}
        if texts
        else {"content_type": FORM_TYPE, "field": FIELD},
    }


def _info(server: _Server) -> dict[str, Any]:
    batching = {"max_batch": server.max_batch, "max_wait_ms": server.max_wait_ms}
    return {
        **(server.about or {}),
        "limits": {"max_body_mb": server.max_body / 2**20, "max_inputs": server.max_inputs},
        "batching": {**batching, **(server.batcher.stats() if server.batcher else {})},
    }


async def _predict(request: Request, server: _Server) -> list[dict[str, Any]]:
    """Check and read the request, predict its inputs through the batcher, refuse it if nothing was usable."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > server.max_body:
        raise ApiError(413, _too_large(server))
    if declared == "0" or not (declared or "transfer-encoding" in request.headers):  # HTTP/1.1: no body at all
        raise ApiError(400, f"the request body is empty; {_expected(server)}")
    if media not in (JSON_TYPE, FORM_TYPE):
        raise ApiError(415, f"Content-Type {media or '(none)'!r} is not accepted; {_expected(server)}")
    if (media == JSON_TYPE) != server.texts:
        takes, sent = ("JSON texts", "files") if server.texts else (f"{server.run.modality} files", "JSON texts")
        raise ApiError(415, f"this {server.run.modality} model takes {takes}, not {sent}; {_expected(server)}")
    if media == FORM_TYPE and "boundary=" not in request.headers["content-type"]:
        fix = "let the HTTP client build the form (curl -F, httpx or requests files=...)"
        raise ApiError(400, f"the multipart/form-data Content-Type has no boundary; {fix}")
    if server.texts:
        records = await _batched(server, await _texts(request, server))
    else:
        records = await _predict_files(await _uploads(request, server), server)
    failed = [r["error"] for r in records if r.get("error")]
    if len(failed) == len(records):
        what = "non-empty texts" if server.texts else f"readable {server.run.modality} files"
        raise ApiError(422, f"none of the {len(records)} input(s) could be predicted (first: {failed[0]}); send {what}")
    return records


def _expected(server: _Server) -> str:
    if server.texts:
        return f'send {JSON_TYPE} {{"texts": ["...", ...]}} (at most {server.max_inputs} texts)'
    return (
        f"send the {server.run.modality} files as {FORM_TYPE} in the field {FIELD!r}, e.g. "
        f"curl -F {FIELD}=@FILE1 -F {FIELD}=@FILE2 http://HOST:PORT/predict (at most {server.max_inputs} files)"
    )


def _too_large(server: _Server) -> str:
    mb = server.max_body / 2**20
    return f"the request body is over {mb:g} MB; send fewer or smaller inputs, or serve with a larger --max-body-mb"


def _too_many(n: int | str, server: _Server) -> str:
    fix = "split them over several requests (they are batched together), or serve with a larger --max-inputs"
    return f"{n} inputs in one request, over the {server.max_inputs} of --max-inputs; {fix}"


async def _body(request: Request, server: _Server, seen: list[int]) -> AsyncGenerator[bytes, None]:
    """The request body's chunks, refused with 413 once past ``max_body`` (``seen[0]``: bytes so far)."""
    async for chunk in request.stream():
        seen[0] += len(chunk)
        if seen[0] > server.max_body:
            raise ApiError(413, _too_large(server))
        yield chunk


async def _texts(request: Request, server: _Server) -> list[str]:
    """The texts of a JSON body ``{"texts": [...]}``."""
    body = b"".join([chunk async for chunk in _body(request, server, [0])])
    if not body.strip():
        raise ApiError(400, f"the request body is empty; {_expected(server)}")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc}); {_expected(server)}") from None
    if not isinstance(doc, dict) or set(doc) != {"texts"}:
        keys = f"an object with keys {sorted(doc)}" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise ApiError(422, f'expected an object with the one key "texts", got {keys}; {_expected(server)}')
    texts = doc["texts"]
    if not isinstance(texts, list) or not texts:
        raise ApiError(422, f'"texts" must be a non-empty list of strings; {_expected(server)}')
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ApiError(422, f'"texts"[{bad[0]}] is not a string ({type(texts[bad[0]]).__name__}); {_expected(server)}')
    if len(texts) > server.max_inputs:
        raise ApiError(413, _too_many(len(texts), server))
    return texts


async def _uploads(request: Request, server: _Server) -> list[_Upload]:
    """The files of a multipart body, in order (field ``files``; any other field is refused)."""
    seen = [0]
    parser = MultiPartParser(request.headers, _body(request, server, seen), max_files=server.max_inputs)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        if seen[0] == 0:
            raise ApiError(400, f"the request body is empty; {_expected(server)}") from None
        if exc.message.startswith("Too many files"):
            raise ApiError(413, _too_many(f"more than {server.max_inputs}", server)) from None
        raise ApiError(400, f"malformed multipart body ({exc.message}); {_expected(server)}") from None
    try:
        files = [v for k, v in form.multi_items() if k == FIELD and isinstance(v, UploadFile)]
        stray = sorted({k for k, v in form.multi_items() if k != FIELD or not isinstance(v, UploadFile)})
        if stray:
            names = ", ".join(map(repr, stray))
            raise ApiError(
                422, f"form field(s) {names}: every input must be a file in the field {FIELD!r}; {_expected(server)}"
            )
        uploads = [_Upload(f.filename or f"file {k}", await f.read()) for k, f in enumerate(files)]
    finally:
        await form.close()
    if not uploads:
        raise ApiError(422, f"no files in the request; {_expected(server)}")
    return uploads


async def _batched(server: _Server, items: list[Any]) -> list[dict[str, Any]]:
    """``items`` predicted through the batcher (503 when shutting down; a failing model: 500 naming why)."""
    if server.batcher is None:
        raise ApiError(503, "the server is not running its model yet (or any more); send the request again later")
    try:
        return await asyncio.wrap_future(server.batcher.submit(items))
    except BatcherClosed as exc:
        raise ApiError(503, str(exc)) from None
    except HeadstartError as exc:
        logger.error("predict failed: %s", exc)
        raise ApiError(500, f"the model could not predict these inputs: {exc}") from None


async def _predict_files(uploads: list[_Upload], server: _Server) -> list[dict[str, Any]]:
    """Records for uploaded files: decoded in memory where the modality has a decoder (images), else written to
    temporary files the run's own reader reads (audio)."""
    decode = _IN_MEMORY.get(server.run.modality)
    if decode is None:
        return await _predict_via_files(uploads, server)
    decoded = await run_in_threadpool(lambda: [decode(u) for u in uploads])  # a pool thread, not the event loop
    good = [x for x in decoded if not isinstance(x, str)]
    answers = iter(await _batched(server, good) if good else [])
    return [  # an undecodable file gets the record predict gives an unreadable file
        {"path": u.name, "label": None, "probabilities": None, "error": x}
        if isinstance(x, str)
        else {"path": u.name, **{k: v for k, v in next(answers).items() if k != "input"}}
        for u, x in zip(uploads, decoded, strict=True)
    ]


async def _predict_via_files(uploads: list[_Upload], server: _Server) -> list[dict[str, Any]]:
    folder = Path(await run_in_threadpool(tempfile.mkdtemp, prefix="headstart-serve-"))
    try:
        paths = await run_in_threadpool(_write_uploads, uploads, folder)
        answers = await _batched(server, paths)
    finally:
        await run_in_threadpool(shutil.rmtree, folder, True)
    return [_renamed(record, str(path), u.name) for record, path, u in zip(answers, paths, uploads, strict=True)]


def _decode_image(upload: _Upload) -> np.ndarray | str:
    """An uploaded image as (H, W[, 3]) uint8, decoded as ``read_image`` decodes a file; or why it cannot be."""
    buffer = io.BytesIO(upload.data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(buffer) as im:
                return decode_pil(im, upload.name)
    except UnreadableImage as exc:
        return str(exc)
    except Image.DecompressionBombError as exc:
        return f"{upload.name}: {str(exc).rstrip('.')}; downscale the image and send it again"
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow names the buffer where predict names the file
        return f"{upload.name}: {exc.__class__.__name__}: {str(exc).replace(repr(buffer), repr(upload.name))}"


_IN_MEMORY: dict[str, Callable[[_Upload], np.ndarray | str]] = {"image": _decode_image}  # modality -> decoder


def _write_uploads(uploads: list[_Upload], folder: Path) -> list[Path]:
    """Each upload as ``folder/<k><suffix>`` (the uploaded name's extension: readers choose by it)."""
    paths = []
    for k, upload in enumerate(uploads):
        suffix = Path(upload.name).suffix
        paths.append(folder / f"{k}{suffix if suffix[1:].isalnum() and len(suffix) <= 8 else ''}")
        paths[-1].write_bytes(upload.data)
    return paths


def _renamed(record: dict[str, Any], temporary: str, name: str) -> dict[str, Any]:
    """A record of a temporary file, named by the uploaded filename (in its error message too)."""
    out = {"path": name, **{k: v for k, v in record.items() if k != "path"}}
    if isinstance(out.get("error"), str):
        out["error"] = out["error"].replace(temporary, name)
    return out
