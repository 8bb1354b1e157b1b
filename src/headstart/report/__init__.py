"""Reports: comparison tables, the transfer verdict and the HTML report of finished runs."""

from headstart.report.tables import format_cell, markdown_table, rich_table, write_comparison
from headstart.report.verdict import intervals_overlap, verdict

__all__ = ["format_cell", "intervals_overlap", "markdown_table", "rich_table", "verdict", "write_comparison"]
