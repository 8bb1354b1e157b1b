"""The one-line answer to "does transfer help here?", from a comparison's rows."""

from __future__ import annotations

from typing import Any

from headstart.report.metric_keys import metric_name

__all__ = ["verdict", "intervals_overlap"]

SCRATCH = "scratch"


def intervals_overlap(a: list[float] | None, b: list[float] | None) -> bool | None:
    """Whether two [low, high] intervals overlap; None when either is missing.

    >>> intervals_overlap([0.7, 0.8], [0.75, 0.9]), intervals_overlap([0.6, 0.7], [0.71, 0.9])
    (True, False)
    """
    if not a or not b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def verdict(rows: list[dict[str, Any]], metric: str = "macro_f1") -> str:
    """Best pretrained strategy against ``scratch`` on ``metric`` (the task's ``primary``: macro-F1, R², mAP;
    higher is better), with what the 95% intervals say.

    >>> rows = [{"strategy": "scratch", "macro_f1": 0.70, "ci95": {"macro_f1": [0.66, 0.74]}},
    ...         {"strategy": "finetune", "macro_f1": 0.85, "ci95": {"macro_f1": [0.82, 0.88]}}]
    >>> verdict(rows)
    'transfer helps: finetune is +15.0 macro-F1 points over scratch (0.850 vs 0.700), 95% CIs do not overlap'
    >>> verdict([dict(r, r2=r["macro_f1"], ci95={}) for r in rows], "r2")[:60]
    'transfer may help: finetune is +15.0 R² points over scratch '
    """
    name = metric_name(metric)
    scored = [r for r in rows if r.get(metric) is not None]
    base = next((r for r in scored if r["strategy"] == SCRATCH), None)
    pretrained = [r for r in scored if r["strategy"] != SCRATCH]
    if not pretrained:
        return "only the scratch baseline ran: add pretrained strategies to compare"
    best = max(pretrained, key=lambda r: r[metric])
    if base is None:
        return (
            f"best: {best['strategy']} ({name} {best[metric]:.3f}); add scratch to --strategies "
            "to measure what transfer buys"
        )
    diff = 100 * (best[metric] - base[metric])
    values = f"({best[metric]:.3f} vs {base[metric]:.3f})"
    overlap = intervals_overlap(_ci(best, metric), _ci(base, metric))
    if diff > 0 and overlap is False:
        return (
            f"transfer helps: {best['strategy']} is {diff:+.1f} {name} points over scratch {values}, "
            "95% CIs do not overlap"
        )
    if diff > 0:
        why = "the 95% CIs overlap" if overlap else "no confidence intervals to tell"
        return (
            f"transfer may help: {best['strategy']} is {diff:+.1f} {name} points over scratch {values}, but {why} "
            "(more test data or --seeds would settle it)"
        )
    return f"transfer does not help here: scratch is {-diff:.1f} {name} points ahead of {best['strategy']} {values}"


def _ci(row: dict[str, Any], metric: str) -> list[float] | None:
    ci = (row.get("ci95") or {}).get(metric)
    return list(ci) if ci else None
