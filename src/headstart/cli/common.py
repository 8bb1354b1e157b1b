"""What every ``headstart`` command shares: the typer app, the consoles, the option types, the
error wrapper, logging set-up and the config built from DATA, ``--config``, ``--set`` and flags.

Help texts name their choices from the registries, never from a hand-typed list: the config's own
constants and sections directly, the strategies, the backbone catalog and the builtin data sets as
``{strategies}``, ``{tasks}``, ``{backbones}`` and ``{builtins}``, filled in by :class:`RegistryHelp` when help is
shown (those registries import torch, which other invocations such as ``--version`` should not pay for).
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from safetensors import SafetensorError
from typer.core import TyperCommand

from headstart.config import CLASS_WEIGHTS, LOGS, SECTIONS, ModelConfig, StrategyConfig, flag_values
from headstart.errors import HeadstartError

if TYPE_CHECKING:
    from headstart.config import RunConfig

__all__ = [
    "app",
    "command",
    "flag_values",
    "RegistryHelp",
    "registry_names",
    "out_console",
    "err_console",
    "friendly",
    "setup",
    "build_config",
    "check_seeds",
    "print_warnings",
    "report_skips",
    "write_csv",
    "command_line",
]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Transfer learning with PyTorch: probe, fine-tune and evaluate pretrained backbones.",
)
out_console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def registry_names() -> dict[str, str]:
    """The registries' names option help shows as ``{strategies}``, ``{tasks}``, ``{backbones}``, ``{builtins}``."""
    from headstart.backbones.catalog import list_backbones
    from headstart.data.builtin import known_builtins
    from headstart.strategies import STRATEGIES
    from headstart.tasks import known_tasks

    return {
        "strategies": " | ".join(STRATEGIES),
        "tasks": " | ".join(known_tasks()),
        "backbones": ", ".join(spec.name for spec in list_backbones()),
        "builtins": ", ".join(known_builtins()),
    }


class RegistryHelp(TyperCommand):
    """A command whose parameter help may name ``{strategies}``, ``{backbones}`` or ``{builtins}``: the
    registries are read when the help is shown, not on every start of the command line."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        names = registry_names()
        for param in self.params:
            text = getattr(param, "help", None)
            if isinstance(text, str) and "{" in text:
                for key, value in names.items():
                    text = text.replace("{" + key + "}", value)
                param.help = text  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


def command() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@app.command()`` for a command whose help names registry choices (see :class:`RegistryHelp`)."""
    return app.command(cls=RegistryHelp)


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help=f"YAML file with the sections {', '.join(SECTIONS)} (each optional)"),
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="override one config key, e.g. optim.lr=1e-3 (repeatable)")
]
DataArg = Annotated[str, typer.Argument(help="class folder, CSV / TSV / JSONL file, or one of {builtins}")]
BackboneOpt = Annotated[
    str | None,
    typer.Option(
        help="catalog name ({backbones}; see `headstart backbones`), timm:<model_name> or hf:<folder or hub id>; "
        f"default: {ModelConfig.backbone}, or model.backbone of --config"
    ),
]
StrategyOpt = Annotated[
    str | None,
    typer.Option(help=f"{{strategies}}; default: {StrategyConfig.name}, or strategy.name of --config"),
]
TaskOpt = Annotated[
    str | None,
    typer.Option(help="what the head predicts: {tasks}; default: classification, or task.kind of --config"),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        help="target-domain data (folder, CSV or builtin:NAME; labels not read) for --strategy dann / coral / adabn; "
        "with labels of the same classes the run also writes target_metrics.json"
    ),
]
WeightsOpt = Annotated[
    str | None, typer.Option(help="local checkpoint for timm:<model_name> (safetensors or state dict)")
]
EpochsOpt = Annotated[int | None, typer.Option(help="training epochs (finetune, scratch)")]
SeedOpt = Annotated[int | None, typer.Option(help="seed of the split, the init and the shuffling")]
SeedsOpt = Annotated[
    int, typer.Option(help="repeat with seeds seed..seed+N-1 (split and init) and report mean ± std and a 95% CI")
]
ClassWeightsOpt = Annotated[
    str | None,
    typer.Option(
        "--class-weights", help=f"{' | '.join(CLASS_WEIGHTS)} (auto: weight the loss by inverse class frequency)"
    ),
]
LogOpt = Annotated[
    str | None,
    typer.Option("--log", help=f"{' | '.join(LOGS)} (tensorboard: also write TensorBoard event files)"),
]
LimitOpt = Annotated[int | None, typer.Option("--limit-per-class", help="keep at most N images per class")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="log progress details")]

# One --format convention: table (for people) and json (numbers as numbers) on every command that prints
# results; csv too where the output is rows. typer checks the value: anything else exits 2 with the choices.
TableOrJson = Literal["table", "json"]
TableJsonOrCsv = Literal["table", "json", "csv"]
_FORMAT_HELP = "table (for reading), json (numbers as numbers)"
FormatOpt = Annotated[TableOrJson, typer.Option("--format", help=_FORMAT_HELP)]
RowsFormatOpt = Annotated[TableJsonOrCsv, typer.Option("--format", help=_FORMAT_HELP + ", csv (one line per row)")]


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True, markup=True)
    return typer.Exit(code)


def friendly(fn: Callable[..., None]) -> Callable[..., None]:
    """User errors become a one-paragraph message, never a traceback.

    :class:`HeadstartError`: exit 2. Ctrl-C: exit 130, saying what was kept and how to continue.
    An operating-system error (disk full, permission denied while writing): exit 1, naming the file.
    """

    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            fn(*args, **kwargs)
        except HeadstartError as exc:
            raise _fail(escape(str(exc)), 2) from None
        except KeyboardInterrupt as exc:
            raise _fail(escape(str(exc) or "interrupted"), 130) from None
        except (OSError, SafetensorError) as exc:
            filename = getattr(exc, "filename", None)
            where = f" ({filename})" if filename else ""
            raise _fail(
                escape(
                    f"{getattr(exc, 'strerror', None) or exc}{where}; free disk space or fix the permissions, "
                    "then run the command again"
                ),
                1,
            ) from None

    return wrapper


def setup(verbose: bool) -> None:
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


def build_config(data: str, config: Path | None, sets: list[str] | None, **flags: Any) -> RunConfig:
    """The run config: ``--config`` file, then ``--set`` overrides, then the command's own flags (None: unset).

    The flags go in as the typed values typer parsed, never through YAML."""
    from headstart.config import resolve_run_config

    return resolve_run_config(data, config, sets, **flags)


def check_seeds(seeds: int, cfg: RunConfig) -> None:
    """``--seeds`` within what a run can repeat, every repeat's seed within numpy's range (before any run)."""
    from headstart.config import check_seed

    if not 1 <= seeds <= 20:
        raise HeadstartError(f"--seeds {seeds}; use 1 (one run) to 20")
    check_seed("--seed", cfg.train.seed, seeds)


def print_warnings(row: dict[str, Any]) -> None:
    """The evaluation warnings of a result row (tiny or never-predicted classes), in yellow on stderr."""
    for w in row.get("warnings", []):
        err_console.print(f"[yellow]warning: {w}[/yellow]")


def report_skips(n: int, where: object) -> None:
    """Say how many unreadable images were skipped and where they are listed."""
    if n:
        err_console.print(f"[yellow]{n} unreadable image(s) were skipped; see skipped_unreadable in {where}[/yellow]")


def write_csv(rows: list[dict[str, Any]]) -> None:
    """Rows as CSV on stdout, one column per key of the first row (None as an empty cell)."""
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def command_line(ctx: typer.Context, extra: str = "") -> str:
    """The command being run, as the user could type it again (``headstart compare DATA --epochs 3 ...``),
    rebuilt from what they passed (defaults left out), followed by ``extra`` (e.g. ``--resume``) unless
    it was already given. ``ctx``: the command's context (a ``typer.Context`` parameter)."""
    import shlex

    words = ctx.command_path.split()
    for param in ctx.command.params:
        name = param.name or ""
        source = ctx.get_parameter_source(name)
        if source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params.get(name)
        if param.param_type_name == "argument":
            words.append(str(value))
        elif getattr(param, "is_flag", False):
            words.append(param.opts[0] if value else (param.secondary_opts or param.opts)[0])
        else:
            for item in value if isinstance(value, list | tuple) else [value]:
                words += [param.opts[0], str(item)]
    if extra and extra not in words:
        words.append(extra)
    return shlex.join(words)
