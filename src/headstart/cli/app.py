"""The ``headstart`` command line (typer). Thin: it parses, calls the library, and prints.

User errors (:class:`HeadstartError`) become a one-paragraph message and exit code 2, never a traceback.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from headstart._runtime import tune_malloc
from headstart.errors import HeadstartError

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Transfer learning with PyTorch: probe, fine-tune and evaluate pretrained backbones.",
)
out_console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file with sections data, preprocess, model, strategy, optim, train"),
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="override one config key, e.g. optim.lr=1e-3 (repeatable)")
]
BackboneOpt = Annotated[str | None, typer.Option(help="catalog name (see `headstart backbones`) or timm:<model_name>")]
WeightsOpt = Annotated[
    str | None, typer.Option(help="local checkpoint for timm:<model_name> (safetensors or state dict)")
]
EpochsOpt = Annotated[int | None, typer.Option(help="training epochs (finetune, scratch)")]
SeedOpt = Annotated[int | None, typer.Option(help="seed of the split, the init and the shuffling")]
SeedsOpt = Annotated[
    int, typer.Option(help="repeat with seeds seed..seed+N-1 (split and init) and report mean ± std and a 95% CI")
]
ClassWeightsOpt = Annotated[
    str | None, typer.Option("--class-weights", help="none | auto (weight the loss by inverse class frequency)")
]
LogOpt = Annotated[str | None, typer.Option("--log", help="jsonl | tensorboard (also write TensorBoard event files)")]
LimitOpt = Annotated[int | None, typer.Option("--limit-per-class", help="keep at most N images per class")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="log progress details")]


def _friendly(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn a :class:`HeadstartError` into a one-paragraph message and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            fn(*args, **kwargs)
        except HeadstartError as exc:
            err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _setup(verbose: bool) -> None:
    from headstart.engine.progress import enable_progress

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("headstart").setLevel(logging.INFO if verbose else logging.WARNING)
    main_rank = os.environ.get("RANK", "0") == "0"  # torchrun sets RANK; only rank 0 prints and draws bars
    out_console.quiet = err_console.quiet = not main_rank
    enable_progress(sys.stderr.isatty() and main_rank)


def _config(data: str, config: Path | None, sets: list[str] | None, **flags: object):  # type: ignore[no-untyped-def]
    from headstart.config import load_config

    extra = [f"data.source={data}"]
    names = {
        "backbone": "model.backbone",
        "weights": "model.weights",
        "strategy": "strategy.name",
        "epochs": "train.epochs",
        "limit": "data.limit_per_class",
        "class_weights": "optim.class_weights",
        "log": "train.log",
        "sampler": "data.sampler",
    }
    for flag, key in names.items():
        if flags.get(flag) is not None:
            extra.append(f"{key}={flags[flag]}")
    if flags.get("seed") is not None:
        extra += [f"data.seed={flags['seed']}", f"train.seed={flags['seed']}"]
    return load_config(config, [*(sets or []), *extra])


@app.command()
@_friendly
def backbones(fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table") -> None:
    """List the backbone catalog: name, modality, parameters, feature dimension, recipe, weights source."""
    from headstart.backbones import create_model, list_backbones

    rows: list[dict[str, Any]] = []
    for spec in list_backbones():
        model, recipe = create_model(spec, num_classes=0, pretrained=False)
        rows.append(
            {
                "name": spec.name,
                "modality": spec.modality,
                "architecture": spec.architecture,
                "params": sum(p.numel() for p in model.parameters()),
                "feature_dim": model.num_features,
                "recipe": recipe.to_dict(),
                "source": spec.source,
            }
        )
    if fmt == "json":
        out_console.print_json(json.dumps(rows))
        return
    table = Table(title="headstart backbones (also: timm:<model_name> [--weights FILE], hf:<folder or hub id>)")
    for col in ("name", "modality", "params (no head)", "features", "recipe", "source"):
        table.add_column(col)
    for r in rows:
        rc = r["recipe"]
        recipe_text = (
            f"max_length={rc['max_length']} pooling={rc['pooling']} normalize={rc['normalize']}"
            if rc.get("modality") == "text"
            else f"{rc['input_size']}px crop_pct={rc['crop_pct']} {rc['interpolation']} "
            f"mean={','.join(f'{v:g}' for v in rc['mean'])} std={','.join(f'{v:g}' for v in rc['std'])}"
        )
        table.add_row(
            r["name"], r["modality"], f"{r['params'] / 1e6:.2f}M", str(r["feature_dim"]), recipe_text, r["source"]
        )
    out_console.print(table)


@app.command()
@_friendly
def train(
    data: Annotated[
        str | None, typer.Argument(help="class folder, CSV with path,label, or builtin:elpv / builtin:fashion-mnist")
    ] = None,
    out: Annotated[Path, typer.Option(help="run directory to write")] = Path("runs/latest"),
    backbone: BackboneOpt = None,
    strategy: Annotated[str | None, typer.Option(help="linear-probe | finetune | scratch")] = None,
    weights: WeightsOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = None,
    limit_per_class: LimitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    resume: Annotated[
        Path | None, typer.Option(help="continue the interrupted run in this folder (its saved config is used)")
    ] = None,
    seeds: SeedsOpt = 1,
    class_weights: ClassWeightsOpt = None,
    log: LogOpt = None,
    nproc: Annotated[
        int, typer.Option(help="processes to train with (torchrun + DDP: Gloo on CPU, NCCL with one GPU each)")
    ] = 1,
    verbose: VerboseOpt = False,
) -> None:
    """Train one strategy on DATA and write a run directory (model, recipe, metrics, history, splits, report)."""
    from headstart import experiments, runner
    from headstart.engine import distributed
    from headstart.report import rich_table

    if nproc < 1:
        raise HeadstartError(f"--nproc {nproc}; use 1 (one process) or more")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(distributed.launch(nproc, _without_nproc(sys.argv[1:])))
    _setup(verbose)
    if resume is not None:
        err_console.print(f"resuming {resume} with the configuration saved there")
        summary = runner.resume(resume)
        row = experiments.summary_row(summary.strategy, [summary])
        out_console.print(rich_table([row], f"resumed {resume} (test split)"))
        out_console.print(f"run written to {summary.out}; report: {summary.out / 'report.html'}")
        return
    if data is None:
        raise HeadstartError("train needs DATA (a class folder, a CSV or builtin:NAME), or --resume RUN_DIR")
    cfg = _config(
        data,
        config,
        set_,
        backbone=backbone,
        weights=weights,
        strategy=strategy,
        epochs=epochs,
        seed=seed,
        limit=limit_per_class,
        class_weights=class_weights,
        log=log,
    )
    _check_seeds(seeds)
    summaries = experiments.train_seeds(cfg, out, seeds)
    row = experiments.summary_row(cfg.strategy.name, summaries)
    title = f"{cfg.model.backbone} on {data} (test split" + (f", mean over {seeds} seeds)" if seeds > 1 else ")")
    out_console.print(rich_table([row], title))
    _print_warnings(row)
    for summary in summaries:
        _report_skips(summary.skipped, summary.out)
        out_console.print(f"run written to {summary.out}; report: {summary.out / 'report.html'}")


@app.command()
@_friendly
def compare(
    data: Annotated[str, typer.Argument(help="class folder, CSV with path,label, or builtin:NAME")],
    strategies: Annotated[
        str, typer.Option(help="comma-separated strategies, run on the same split")
    ] = "linear-probe,finetune,scratch",
    out: Annotated[Path, typer.Option(help="folder holding one run directory per strategy")] = Path("runs/compare"),
    backbone: BackboneOpt = None,
    weights: WeightsOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = None,
    limit_per_class: LimitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    seeds: SeedsOpt = 1,
    class_weights: ClassWeightsOpt = None,
    log: LogOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run several strategies on the same split(s): one table with 95% CIs, a verdict and report.html."""
    from headstart import experiments
    from headstart.report import rich_table, write_comparison
    from headstart.report.html import write_compare_report
    from headstart.strategies import STRATEGIES

    _setup(verbose)
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if not names or unknown:
        raise HeadstartError(f"unknown strategy {', '.join(unknown) or '(none)'}; known: {', '.join(STRATEGIES)}")
    _check_seeds(seeds)
    cfg = _config(
        data,
        config,
        set_,
        backbone=backbone,
        weights=weights,
        epochs=epochs,
        seed=seed,
        limit=limit_per_class,
        class_weights=class_weights,
        log=log,
    )
    result = experiments.compare(
        cfg, names, out, seeds, on_start=lambda name, s: err_console.print(f"[bold]{name}[/bold] (seed {s}) ...")
    )
    rows = result.rows
    where = f"test split ({rows[0]['n_test']} examples" + (f", mean over {seeds} seeds)" if seeds > 1 else ")")
    out_console.print(rich_table(rows, f"{cfg.model.backbone} on {data}: {where}"))
    out_console.print(f"[bold]{result.verdict}[/bold]")
    for w in sorted({w for r in rows for w in r.get("warnings", [])}):
        err_console.print(f"[yellow]warning: {w}[/yellow]")
    header = {"data": data, "backbone": cfg.model.backbone, "verdict": result.verdict, "config": cfg.to_dict()}
    js, md = write_comparison(out, rows, header)
    run_dirs = [s.out for summaries in result.runs.values() for s in summaries[:1]]
    html = write_compare_report(out, rows, run_dirs, result.verdict)
    out_console.print(f"report: {html}  (also {md} and {js})")


@app.command()
@_friendly
def plan(
    data: Annotated[str, typer.Argument(help="class folder, CSV with path,label, or builtin:NAME")],
    backbone: BackboneOpt = None,
    strategy: Annotated[str | None, typer.Option(help="strategy to plan (see `headstart train --help`)")] = None,
    epochs: EpochsOpt = None,
    limit_per_class: LimitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Show, without training, which layer groups train from which epoch and at which learning rate."""
    from headstart import runner
    from headstart.backbones import create_model, get_backbone
    from headstart.engine.train import steps_per_epoch
    from headstart.strategies import get_strategy
    from headstart.strategies.plan import plan_rows

    _setup(False)
    cfg = _config(data, config, set_, backbone=backbone, strategy=strategy, epochs=epochs, limit=limit_per_class)
    spec = get_backbone(cfg.model.backbone, cfg.model.weights)
    cfg = runner.resolve_config(cfg, spec)
    strat = get_strategy(cfg)
    images, splits = runner.prepare_data(cfg)
    model, _ = create_model(spec, num_classes=len(images.labels), pretrained=False)
    spe = steps_per_epoch(len(splits["train"]), cfg.train.batch_size)
    rows = plan_rows(model, strat, cfg, spe)
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"{cfg.strategy.name} on {cfg.model.backbone}: {cfg.train.epochs} epochs x {spe} steps")
    for col in ("group", "params", "trainable from epoch", "LR at start", "weight decay"):
        table.add_column(col, justify="right" if col in ("params", "LR at start") else "left")
    for r in rows:
        lr = "n/a" if r["lr"] is None else f"{r['lr']:.3g}"
        table.add_row(r["group"], f"{r['params']:,}", r["trainable_from"], lr, r["weight_decay"])
    out_console.print(table)


@app.command()
@_friendly
def evaluate(
    run: Annotated[Path, typer.Argument(help="run directory written by `headstart train`")],
    data: Annotated[str | None, typer.Argument(help="labelled data (default: the run's data, test split)")] = None,
    out: Annotated[Path | None, typer.Option(help="write metrics JSON here")] = None,
    split: Annotated[str, typer.Option(help="auto | all | train | val | test")] = "auto",
    verbose: VerboseOpt = False,
) -> None:
    """Metrics of a trained run on labelled data (accuracy, macro P/R/F1, ROC-AUC, per class, confusion)."""
    from headstart.artifacts import evaluate_run, load_run

    _setup(verbose)
    result = evaluate_run(load_run(run), data, split)
    m = result.metrics
    table = Table(title=f"{run} on {data or 'its own data'} ({result.split}: {m['n']} images)")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for label, pc in m["per_class"].items():
        table.add_row(label, f"{pc['precision']:.3f}", f"{pc['recall']:.3f}", f"{pc['f1']:.3f}", str(pc["support"]))
    out_console.print(table)
    auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"
    out_console.print(f"accuracy {m['accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}  ROC-AUC {auc}")
    _report_skips(len(result.skipped), run)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**m, "split": result.split, "skipped_unreadable": result.skipped}, indent=2) + "\n")
        out_console.print(f"metrics written to {out}")


@app.command()
@_friendly
def predict(
    run: Annotated[Path, typer.Argument(help="run directory written by `headstart train`")],
    files: Annotated[
        list[str] | None, typer.Argument(help="image files; for a text run, files with one text per line")
    ] = None,
    text: Annotated[list[str] | None, typer.Option("--text", help="a text to classify (repeatable)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json | csv | table")] = "table",
    verbose: VerboseOpt = False,
) -> None:
    """Predict labels with the run's saved preprocessing recipe, in input order (images, or texts for text runs)."""
    from headstart.artifacts import load_run

    _setup(verbose)
    if fmt not in ("json", "csv", "table"):
        raise HeadstartError(f"--format {fmt!r}; choose json, csv or table")
    loaded = load_run(run)
    records, key = _predict_records(loaded, files or [], text or [])
    if fmt == "json":
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow([key, "label", *[f"p_{label}" for label in loaded.labels], "error"])
        for r in records:
            probs = r.get("probabilities") or {}
            writer.writerow(
                [r[key], r.get("label") or "", *[probs.get(lb, "") for lb in loaded.labels], r.get("error", "")]
            )
        sys.stdout.write(buf.getvalue())
    else:
        table = Table()
        for col in (key, "label", "probability"):
            table.add_column(col, overflow="ellipsis", max_width=60 if key == "text" else None)
        for r in records:
            p = r["probabilities"][r["label"]] if r.get("label") else None
            table.add_row(r[key], r.get("label") or f"[red]{r.get('error')}[/red]", "" if p is None else f"{p:.3f}")
        out_console.print(table)


def _predict_records(loaded: Any, files: list[str], texts: list[str]) -> tuple[list[dict[str, Any]], str]:
    """Records in input order and the name of their input field (``path`` or ``text``)."""
    from headstart.artifacts import predict_files, predict_texts

    if loaded.modality == "image":
        if texts:
            raise HeadstartError("--text is for text runs; this run classifies images (pass image files)")
        if not files:
            raise HeadstartError("pass one or more image files to predict")
        return predict_files(loaded, files), "path"
    for f in files:
        try:
            texts += [line for line in Path(f).read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise HeadstartError(f"cannot read {f!r} as UTF-8 text with one text per line ({exc})") from exc
    if not texts:
        raise HeadstartError('pass --text "..." (repeatable) or a file with one text per line')
    return predict_texts(loaded, texts), "text"


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line minus ``--nproc N`` / ``--nproc=N`` (torchrun passes the rest on)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _check_seeds(seeds: int) -> None:
    if not 1 <= seeds <= 20:
        raise HeadstartError(f"--seeds {seeds}; use 1 (one run) to 20")


def _print_warnings(row: dict[str, Any]) -> None:
    for w in row.get("warnings", []):
        err_console.print(f"[yellow]warning: {w}[/yellow]")


def _report_skips(n: int, where: object) -> None:
    if n:
        err_console.print(f"[yellow]{n} unreadable image(s) were skipped; see skipped_unreadable in {where}[/yellow]")


def main() -> None:
    """Console-script entry point: allocator tuning, then the typer app."""
    tune_malloc()
    app()


# rank / shift / advise live in their own module and register on ``app`` when it is imported.
from headstart.cli import transfer as _transfer  # noqa: E402, F401
