"""The ``headstart`` command line (typer). Thin: it parses, calls the library, and prints.

User errors (:class:`HeadstartError`) become a one-paragraph message and exit code 2, never a traceback.
Commands live by concern: training and planning here, :mod:`headstart.cli.inference` (evaluate,
predict), :mod:`headstart.cli.transfer` (rank, shift, advise); the shared parts in
:mod:`headstart.cli.common`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from headstart import __version__
from headstart._runtime import tune_malloc
from headstart.cli.common import (
    BackboneOpt,
    ClassWeightsOpt,
    ConfigOpt,
    DataArg,
    EpochsOpt,
    FormatOpt,
    LimitOpt,
    LogOpt,
    SeedOpt,
    SeedsOpt,
    SetOpt,
    StrategyOpt,
    TargetOpt,
    TaskOpt,
    VerboseOpt,
    WeightsOpt,
    app,
    build_config,
    check_seeds,
    command,
    command_line,
    err_console,
    friendly,
    out_console,
    print_warnings,
    report_skips,
    setup,
)
from headstart.errors import HeadstartError

if TYPE_CHECKING:
    from headstart.config import RunConfig

__all__ = ["app", "main"]


def _print_version(show: bool) -> None:
    if show:
        typer.echo(f"headstart {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="print the version and exit")
    ] = False,
) -> None:
    # no docstring: the app's help (common.app) stays the help of `headstart --help`
    pass


@app.command()
@friendly
def backbones(fmt: FormatOpt = "table") -> None:
    """List the backbone catalog: name, modality, parameters, feature dimension, recipe, weights source.

    Read from the catalog's static facts: no model is built, no weights are read."""
    from headstart.backbones.catalog import describe, list_backbones

    rows = [describe(spec) for spec in list_backbones()]
    if fmt == "json":
        out_console.print_json(json.dumps(rows))
        return
    table = Table(title="headstart backbones (also: timm:<model_name> [--weights FILE], hf:<folder or hub id>)")
    for col in ("name", "modality", "params (no head)", "features", "recipe", "source"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"], r["modality"], f"{r['params'] / 1e6:.2f}M", str(r["feature_dim"]), _recipe_text(r["recipe"]),
            r["source"],
        )  # fmt: skip
    out_console.print(table)


def _recipe_text(rc: dict) -> str:
    """A catalog recipe in one line, by modality."""
    if rc.get("modality") == "text":
        return f"max_length={rc['max_length']} pooling={rc['pooling']} normalize={rc['normalize']}"
    if rc.get("modality") == "audio":
        spec = "log-mel" if rc.get("log_multiplier") else "mel power"
        front = f"{spec} {rc['n_mels']} bands, hop {rc['hop_length']}" if rc["frontend"] == "logmel" else "waveform"
        return f"{rc['sample_rate']} Hz mono, {rc['clip_seconds']:.2f} s clips, {front}, {rc['normalize']} norm"
    return (
        f"{rc['input_size']}px crop_pct={rc['crop_pct']} {rc['interpolation']} "
        f"mean={','.join(f'{v:g}' for v in rc['mean'])} std={','.join(f'{v:g}' for v in rc['std'])}"
    )


@command()
@friendly
def train(
    data: Annotated[
        str | None, typer.Argument(help="class folder, CSV / TSV / JSONL file, or one of {builtins}")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="run directory to write", show_default="runs/latest")] = None,
    backbone: BackboneOpt = None,
    strategy: StrategyOpt = None,
    task: TaskOpt = None,
    target: TargetOpt = None,
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
    from headstart.engine import distributed

    if nproc < 1:
        raise HeadstartError(f"--nproc {nproc}; use 1 (one process) or more")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(distributed.launch(nproc, _without_nproc(sys.argv[1:])))
    setup(verbose)
    if resume is not None:
        given = {
            "DATA": data,
            "--out": out,
            "--backbone": backbone,
            "--strategy": strategy,
            "--task": task,
            "--target": target,
            "--weights": weights,
            "--epochs": epochs,
            "--seed": seed,
            "--limit-per-class": limit_per_class,
            "--config": config,
            "--set": set_ or None,
            "--seeds": seeds if seeds != 1 else None,
            "--class-weights": class_weights,
            "--log": log,
        }
        _resume(resume, given)
        return
    if data is None:
        raise HeadstartError("train needs DATA (a class folder, a CSV or builtin:NAME), or --resume RUN_DIR")
    cfg = build_config(
        data,
        config,
        set_,
        backbone=backbone,
        weights=weights,
        strategy=strategy,
        task=task,
        target=target,
        epochs=epochs,
        seed=seed,
        limit=limit_per_class,
        class_weights=class_weights,
        log=log,
    )
    check_seeds(seeds, cfg)
    _train(cfg, out or Path("runs/latest"), seeds, data)


def _resume(resume: Path, given: Mapping[str, object]) -> None:
    """Continue the interrupted run in ``resume`` and print its result; ``given``: the other inputs (None: unset)."""
    from headstart import experiments, runner
    from headstart.report import rich_table

    _refuse_with_resume([name for name, value in given.items() if value is not None], resume)
    err_console.print(f"resuming {resume} with the configuration saved there")
    summary = runner.resume(resume)
    row = experiments.summary_row(summary.strategy, [summary])
    out_console.print(rich_table([row], f"resumed {resume} (test split)"))
    out_console.print(f"run written to {summary.out}; report: {summary.out / 'report.html'}")


def _train(cfg: RunConfig, out: Path, seeds: int, data: str) -> None:
    """Train ``cfg`` with ``seeds`` seeds into ``out``, then print the summary table, warnings and run folders."""
    from headstart import experiments
    from headstart.report import rich_table

    summaries = experiments.train_seeds(cfg, out, seeds)
    row = experiments.summary_row(cfg.strategy.name, summaries)
    title = f"{cfg.model.backbone} on {data} (test split" + (f", mean over {seeds} seeds)" if seeds > 1 else ")")
    out_console.print(rich_table([row], title))
    print_warnings(row)
    for summary in summaries:
        report_skips(summary.skipped, summary.out)
        out_console.print(f"run written to {summary.out}; report: {summary.out / 'report.html'}")


@command()
@friendly
def compare(
    ctx: typer.Context,
    data: DataArg,
    strategies: Annotated[
        str, typer.Option(help="comma-separated strategies, run on the same split, from: {strategies}")
    ] = "linear-probe,finetune,scratch",
    out: Annotated[Path, typer.Option(help="folder holding one run directory per strategy")] = Path("runs/compare"),
    backbone: BackboneOpt = None,
    task: TaskOpt = None,
    target: TargetOpt = None,
    weights: WeightsOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = None,
    limit_per_class: LimitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    seeds: SeedsOpt = 1,
    class_weights: ClassWeightsOpt = None,
    log: LogOpt = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="continue an interrupted comparison in --out: finished runs made with the same settings and data "
            "are reused, an interrupted one continues from its checkpoint, the missing ones are trained",
        ),
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run several strategies on the same split(s): one table with 95% CIs, a verdict and report.html."""
    from headstart.artifacts.out_dir import claim_out
    from headstart.registry import unknown_choice
    from headstart.strategies import STRATEGIES

    setup(verbose)
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    if not names:
        raise HeadstartError(f"--strategies is empty; pass some of {', '.join(STRATEGIES)}, comma-separated")
    for name in names:
        if name not in STRATEGIES:
            raise unknown_choice("strategy", name, STRATEGIES)
    cfg = build_config(
        data,
        config,
        set_,
        backbone=backbone,
        weights=weights,
        task=task,
        target=target,
        epochs=epochs,
        seed=seed,
        limit=limit_per_class,
        class_weights=class_weights,
        log=log,
    )
    check_seeds(seeds, cfg)
    hint = f"`{command_line(ctx, '--resume')}`"
    with claim_out(out, cfg.data.source):
        _compare(cfg, names, out, seeds, data, resume, hint)


_STARTING = {"new": "...", "interrupted": "continuing from its checkpoint ...", "finished": "finished: reused"}


def _compare(cfg: RunConfig, names: list[str], out: Path, seeds: int, data: str, resume: bool, hint: str) -> None:
    """Run the comparison, print its table and verdict, and write its files into ``out``."""
    from headstart import experiments
    from headstart.report import rich_table

    def starting(name: str, seed: int, state: str) -> None:
        err_console.print(f"[bold]{name}[/bold] (seed {seed}) {_STARTING[state]}")

    result = experiments.compare(cfg, names, out, seeds, on_start=starting, resume=resume, resume_hint=hint)
    rows = result.rows
    where = f"test split ({rows[0]['n_test']} examples" + (f", mean over {seeds} seeds)" if seeds > 1 else ")")
    out_console.print(rich_table(rows, f"{cfg.model.backbone} on {data}: {where}"))
    out_console.print(f"[bold]{result.verdict}[/bold]")
    for w in sorted({w for r in rows for w in r.get("warnings", [])}):
        err_console.print(f"[yellow]warning: {w}[/yellow]")
    html = experiments.write_comparison_files(result, out, data, cfg)
    out_console.print(f"report: {html}  (also {out / 'report.md'} and {out / 'comparison.json'})")


@command()
@friendly
def plan(
    data: DataArg,
    backbone: BackboneOpt = None,
    strategy: StrategyOpt = None,
    task: TaskOpt = None,
    epochs: EpochsOpt = None,
    limit_per_class: LimitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Show, without training, which layer groups train from which epoch and at which learning rate.

    --format json gives one object per group: group, params, trainable_from (the 1-based epoch, null when the
    group has no fixed epoch), trainable_from_step (0-based optimizer step, or null), unfreeze (start,
    scheduled, on plateau, never, or probe (closed form)), lr (null for a probe), weight_decay (weights only:
    norms and biases get 0)."""
    from headstart import runner
    from headstart.engine.train import steps_per_epoch
    from headstart.modalities import build_backbone
    from headstart.report.plan_table import plan_rich_table
    from headstart.strategies.plan import layer_plan, plan_rule, plan_trainable

    setup(False)
    flags = {"backbone": backbone, "strategy": strategy, "task": task, "epochs": epochs, "limit": limit_per_class}
    run = runner.resolve_run(build_config(data, config, set_, **flags))  # as `train` resolves it
    cfg = run.cfg
    outputs = run.task.num_outputs(run.data.labels)
    model = build_backbone(run.spec, outputs, cfg.preprocess, pretrained=False).model  # weights do not matter here
    run.strategy.prepare(model)  # as the train loop sees it (lora: with its adapters)
    spe = steps_per_epoch(len(run.splits["train"]), cfg.train.batch_size)
    rows = layer_plan(model, run.strategy, cfg, spe)
    if fmt == "json":
        sys.stdout.write(json.dumps([row.to_json() for row in rows], indent=2) + "\n")
        return
    title = f"{cfg.strategy.name} on {cfg.model.backbone}: {cfg.train.epochs} epochs x {spe} steps"
    out_console.print(plan_rich_table(rows, title))
    out_console.print(plan_trainable(model, run.strategy))
    rule = plan_rule(model, run.strategy, cfg, spe, run.splits)
    if rule:
        out_console.print(rule)


def _refuse_with_resume(given: list[str], resume: Path) -> None:
    """``--resume`` continues with the checkpoint's own data and settings: other inputs would be ignored."""
    if given:
        raise HeadstartError(
            f"--resume continues {resume} with the data and settings saved in its checkpoint, so "
            f"{', '.join(given)} would be ignored; drop {'it' if len(given) == 1 else 'them'} "
            f"(`headstart train --resume {resume}`), or start a new run with other settings: "
            "`headstart train DATA ... --out NEW_FOLDER`"
        )


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


def main() -> None:
    """Console-script entry point: allocator tuning, then the typer app."""
    tune_malloc()
    app()


# the other commands register on ``app`` when their modules are imported
from headstart.cli import export as _export  # noqa: E402, F401
from headstart.cli import inference as _inference  # noqa: E402, F401
from headstart.cli import serve as _serve  # noqa: E402, F401
from headstart.cli import transfer as _transfer  # noqa: E402, F401
