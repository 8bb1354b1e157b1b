"""``headstart export``: a trained run as a file other runtimes load (ONNX), preprocessing included.

Registered on the typer app when :mod:`headstart.cli.app` imports this module.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from headstart.cli.common import VerboseOpt, app, friendly, out_console, setup
from headstart.export import FORMATS, get_format

__all__ = ["export", "DEFAULT_FOLDER"]

DEFAULT_FOLDER = "export"  # inside the run folder: RUN/export/model.<suffix> when --out is not given


@app.command()
@friendly
def export(
    run: Annotated[Path, typer.Argument(help="run directory written by `headstart train`")],
    fmt: Annotated[str, typer.Option("--format", help=f"what to write: {' | '.join(FORMATS)}")] = "onnx",
    out: Annotated[
        Path | None,
        typer.Option(help=f"file to write, in an existing folder (default: RUN/{DEFAULT_FOLDER}/model.onnx)"),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Export a trained run for serving without headstart: an ONNX graph that takes raw inputs (uint8 RGB images
    of any size, or token ids from the tokenizer.json written beside it) and gives what `headstart predict`
    reports, with the labels and the recipe in its metadata."""
    kind = get_format(fmt)
    if out is not None:
        kind.check(out)  # before any work: never a file headstart did not write, never a missing folder
    setup(verbose)  # torch loads from here on: a refusal above is immediate
    from headstart.artifacts import load_run

    loaded = load_run(run)
    if out is None:
        out = run / DEFAULT_FOLDER / f"model{kind.suffix}"
        out.parent.mkdir(exist_ok=True)  # the run folder is headstart's
    start = time.perf_counter()
    files = kind.write(loaded, out)
    seconds = time.perf_counter() - start
    size = files[0].stat().st_size / 1e6
    out_console.print(f"{fmt} model written to {files[0]} ({size:.1f} MB, {seconds:.0f}s)", highlight=False)
    for file in files[1:]:
        out_console.print(f"  with {file.name} beside it", highlight=False)
