"""``headstart rank | shift | advise``: before training, which backbone, how far, which strategy.

Registered on the typer app when :mod:`headstart.cli.app` imports this module.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from headstart.cli.common import (
    ConfigOpt,
    DataArg,
    FormatOpt,
    LimitOpt,
    RowsFormatOpt,
    SeedOpt,
    SetOpt,
    TaskOpt,
    VerboseOpt,
    build_config,
    command,
    err_console,
    friendly,
    out_console,
    setup,
    write_csv,
)
from headstart.config import ModelConfig

__all__ = ["rank", "shift", "advise"]

BackbonesOpt = Annotated[
    str,
    typer.Option(
        help="comma-separated candidates ({backbones}, timm:<model_name>, hf:<folder or hub id>), or all (every "
        "catalog backbone of the data's modality); random:<name> adds a random-weights control"
    ),
]


def _check_names(names: str) -> None:
    """Unknown backbone names fail before any data is loaded."""
    from headstart.backbones import get_backbone
    from headstart.transferability.features import RANDOM_PREFIX

    for name in (n.strip() for n in names.split(",")):
        if name and name != "all":
            get_backbone(name.removeprefix(RANDOM_PREFIX))


def _ranked(data: str, backbones: str, cfg_args: dict[str, Any]) -> tuple[Any, Any, Any]:
    from headstart.runner import prepare_data
    from headstart.transferability.features import parse_candidates
    from headstart.transferability.rank import rank_backbones

    _check_names(backbones)
    cfg = build_config(data, **cfg_args)
    prepared = prepare_data(cfg)
    candidates = parse_candidates(backbones, prepared[0].modality)
    rows = rank_backbones(cfg, candidates, prepared, on_start=lambda n: err_console.print(f"[bold]{n}[/bold] ..."))
    return cfg, prepared, rows


@command()
@friendly
def rank(
    data: DataArg,
    backbones: BackbonesOpt = "all",
    task: TaskOpt = None,
    seed: SeedOpt = None,
    limit_per_class: LimitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    fmt: RowsFormatOpt = "table",
    verbose: VerboseOpt = False,
) -> None:
    """Rank candidate backbones on DATA from one forward pass each (LogME, H-score, LEEP, NCE, kNN, probe)."""
    from headstart.transferability.rank import rank_columns, rank_table_rows, scoring_for

    setup(verbose)
    args = {"config": config, "sets": set_, "seed": seed, "limit": limit_per_class, "task": task}
    cfg, (images, splits), rows = _ranked(data, backbones, args)
    if fmt == "json":
        out_console.print_json(json.dumps([r.to_dict() for r in rows]))
        return
    if fmt == "csv":
        write_csv([r.to_dict() for r in rows])
        return
    n_train, n_val = len(splits["train"]), len(splits["val"])
    scoring = scoring_for(cfg.task.kind)
    scores = f"kNN and probe {scoring.words} on validation ({n_val})"
    table = Table(title=f"{data}: estimators on the train split ({n_train}), {scores}")
    for col in rank_columns(cfg.task.kind):
        table.add_column(col, justify="left" if col == "backbone" else "right")
    for cells in rank_table_rows(rows):
        table.add_row(*cells)
    out_console.print(table)
    out_console.print(f"sorted by LogME (higher is better); {scoring.note}")


@command()
@friendly
def shift(
    source: DataArg,
    target: DataArg,
    backbone: Annotated[
        str, typer.Option(help="backbone whose features are compared ({backbones}, timm:<model_name>, hf:<...>)")
    ] = ModelConfig.backbone,
    task: TaskOpt = None,
    seed: SeedOpt = None,
    limit_per_class: LimitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    fmt: FormatOpt = "table",
    verbose: VerboseOpt = False,
) -> None:
    """How different TARGET looks from SOURCE to a backbone: proxy A-distance, feature shift, probe drop."""
    from headstart.data.dataset import load_data
    from headstart.data.splits import limit_per_class as limit
    from headstart.runner import prepare_data
    from headstart.transferability.features import parse_candidates
    from headstart.transferability.shift import check_shift_task, measure_shift

    setup(verbose)
    _check_names(backbone)
    cfg = build_config(source, config, set_, seed=seed, limit=limit_per_class, task=task)
    check_shift_task(cfg.task.kind)  # before any data is read
    prepared = prepare_data(cfg)
    other = limit(load_data(target, cfg.data), cfg.data.limit_per_class, cfg.data.seed)
    cand = parse_candidates(backbone, prepared[0].modality)[0]
    report = measure_shift(cfg, cand, prepared, other)
    if fmt == "json":
        out_console.print_json(json.dumps(report.to_dict()))
        return
    table = Table(title=f"{source} ({report.n_source}) -> {target} ({report.n_target}) through {backbone}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("reads as")
    table.add_row("proxy A-distance", f"{report.proxy_a_distance:.3f}", "0 = same, 2 = perfectly separable")
    table.add_row("domain classifier accuracy", f"{report.domain_accuracy:.3f}", "0.5 = cannot tell them apart")
    fshift = report.feature_shift
    table.add_row("median feature mean shift", f"{fshift['median_smd']:.3f}", "in pooled standard deviations")
    table.add_row("features shifted > 0.5 sd", f"{fshift['share_smd_over_0.5']:.1%}", "share of dimensions")
    table.add_row("median |log variance ratio|", f"{fshift['median_abs_log_var_ratio']:.3f}", "0 = same spread")
    if report.transfer:
        t = report.transfer
        table.add_row("probe accuracy on source test", f"{t['source_test_accuracy']:.3f}", "trained on source")
        table.add_row("probe accuracy on target", f"{t['target_accuracy']:.3f}", "same probe, no adaptation")
        table.add_row("accuracy drop", f"{t['drop']:+.3f}", "what the shift costs")
    out_console.print(table)
    if not report.transfer:
        out_console.print("the two datasets have different classes: no probe-transfer drop")


@command()
@friendly
def advise(
    data: DataArg,
    backbones: BackbonesOpt = "all",
    reference: Annotated[
        str | None, typer.Option(help="a sample of the pretraining domain, to measure how far DATA is from it")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="unlabelled target-domain data you will adapt to (weighs the adaptation strategies)"),
    ] = None,
    task: TaskOpt = None,
    seed: SeedOpt = None,
    limit_per_class: LimitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    fmt: FormatOpt = "table",
    verbose: VerboseOpt = False,
) -> None:
    """Recommend a backbone and a strategy for DATA, with the reasons (rules: README, "advise")."""
    from headstart.data.dataset import load_data
    from headstart.data.target import read_target
    from headstart.tasks import DEFAULT_TASK
    from headstart.transferability.advise import ADAPTATION_STRATEGIES, gather_facts
    from headstart.transferability.advise import advise as advise_fn

    setup(verbose)
    args = {"config": config, "sets": set_, "seed": seed, "limit": limit_per_class, "task": task}
    cfg, prepared, rows = _ranked(data, backbones, args)
    ref = load_data(reference, cfg.data) if reference else None
    tgt = read_target(target, cfg) if target else None
    advice = advise_fn(gather_facts(cfg, rows, prepared, ref, tgt))
    if fmt == "json":
        out_console.print_json(json.dumps(advice.to_dict()))
        return
    then = f", then {advice.then}" if advice.then else ""
    out_console.print(f"[bold]backbone {advice.backbone}, strategy {advice.strategy}{then}[/bold]")
    for reason in advice.reasons:
        out_console.print(f"  - {reason}")
    task_flag = "" if cfg.task.kind == DEFAULT_TASK else f" --task {cfg.task.kind}"
    target_flag = f" --target {target}" if target and advice.strategy in ADAPTATION_STRATEGIES else ""
    out_console.print(
        f"run: headstart train {data}{task_flag} --backbone {advice.backbone} --strategy {advice.strategy}"
        + target_flag
    )
