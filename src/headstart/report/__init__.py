"""Reports: comparison tables of finished runs."""

from headstart.report.tables import comparison_rows, markdown_table, rich_table, write_comparison

__all__ = ["comparison_rows", "markdown_table", "rich_table", "write_comparison"]
