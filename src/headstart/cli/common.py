"""What every ``headstart`` command shares: the typer app, the consoles, the option types, the
error wrapper, logging set-up and the config built from DATA, ``--config``, ``--set`` and flags.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from safetensors import SafetensorError

from headstart.errors import HeadstartError

if TYPE_CHECKING:
    from headstart.config import RunConfig

__all__ = [
    "app",
    "out_console",
    "err_console",
    "friendly",
    "setup",
    "build_config",
    "check_seeds",
    "print_warnings",
    "report_skips",
]

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


def build_config(data: str, config: Path | None, sets: list[str] | None, **flags: object) -> RunConfig:
    """The run config: ``--config`` file, then ``--set`` overrides, then the command's own flags (None: unset)."""
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
