"""The layer plan's typed rows and its one table (plan.md, `headstart plan`, the HTML report)."""

from __future__ import annotations

from rich.console import Console

from headstart.report.plan_table import PLAN_COLUMNS, PlanRow, plan_cells, plan_markdown, plan_rich_table

ROWS = [
    PlanRow("stem", 928, "never", None, None, 1e-4, 0.01),
    PlanRow("block.6", 10, "scheduled", 3, 40, 3e-4, 0.01),
    PlanRow("block.7", 1234567, "on plateau", None, None, 0.000274625, 0.01),
    PlanRow("head", 20, "start", 1, 0, 1e-3, 0.01),
]


def test_json_rows_keep_numbers_as_numbers_in_column_order() -> None:
    typed = [r.to_json() for r in ROWS]
    assert [(r["trainable_from"], r["trainable_from_step"], r["unfreeze"]) for r in typed] == [
        (None, None, "never"),
        (3, 40, "scheduled"),
        (None, None, "on plateau"),
        (1, 0, "start"),
    ]
    assert list(typed[0]) == [
        "group",
        "params",
        "trainable_from",
        "trainable_from_step",
        "unfreeze",
        "lr",
        "weight_decay",
    ]
    assert all(r["weight_decay"] == 0.01 for r in typed) and typed[1]["lr"] == 3e-4


def test_stored_rows_hold_the_tables_text() -> None:
    stored = [r.to_dict() for r in ROWS]
    assert [r["trainable_from"] for r in stored] == ["never", "3 (step 40)", "on plateau", "1"]
    assert stored[0] == {
        "group": "stem",
        "params": 928,
        "trainable_from": "never",
        "lr": 1e-4,
        "weight_decay": "0.01 (0 on norms, biases)",
    }
    assert [plan_cells(r) for r in stored] == [plan_cells(r) for r in ROWS]  # an older run renders the same


def test_markdown_table() -> None:
    assert plan_markdown(ROWS).splitlines() == [
        "| group | params | trainable from epoch | LR at start | weight decay |",
        "|---|---:|---|---:|---|",
        "| stem | 928 | never | 0.0001 | 0.01 (0 on norms, biases) |",
        "| block.6 | 10 | 3 (step 40) | 0.0003 | 0.01 (0 on norms, biases) |",
        "| block.7 | 1,234,567 | on plateau | 0.000275 | 0.01 (0 on norms, biases) |",
        "| head | 20 | 1 | 0.001 | 0.01 (0 on norms, biases) |",
    ]
    probe = PlanRow("head", 20, "probe (closed form)", None, None, None, 0.0)
    assert plan_cells(probe) == ["head", "20", "probe (closed form)", "n/a", "0 (0 on norms, biases)"]


def test_terminal_table_has_the_same_cells() -> None:
    console = Console(width=200, record=True)
    console.print(plan_rich_table(ROWS, "progressive on mobilenet_v2"))
    text = console.export_text()
    assert "progressive on mobilenet_v2" in text and all(c in text for c in PLAN_COLUMNS)
    assert all(cell in text for row in ROWS for cell in plan_cells(row))
