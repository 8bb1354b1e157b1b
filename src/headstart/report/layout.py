"""HTML building blocks for the reports: the page shell with its inline CSS, sections, tables, numbers.

Every string that comes from a run (labels, ids, texts, paths, config values) goes through
:func:`esc`; the builders here escape what they are given unless it is marked as ready HTML.

Example:
    >>> table(["class", "n"], [["<b>", 3]], numeric={1}).split("<tbody>")[1]
    '<tr><td>&lt;b&gt;</td><td class="num">3</td></tr></tbody></table>'
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["Html", "defang", "esc", "figures", "fmt_num", "key_value_table", "page", "section", "table"]

CSS = """
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f5f6f8;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
 font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
main{max-width:1100px;margin:0 auto;padding:24px 20px 40px}
header h1{font-size:22px;margin:0 0 2px;line-height:1.25}
.sub,.note{color:var(--muted)}
.note{font-size:13px;margin:6px 0}
nav{margin:10px 0 0;font-size:13px}
nav a{color:var(--accent);text-decoration:none;margin-right:12px;white-space:nowrap}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:16px 0}
h2{font-size:16px;margin:0 0 10px}
h3{font-size:13px;margin:4px 0 6px;color:#374151}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 12px;background:#fafbfc}
.card .k{color:var(--muted);font-size:11.5px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
.card .ci{color:var(--muted);font-size:12px;font-variant-numeric:tabular-nums}
.warnings{background:#fff7ed;border:1px solid #fdba74;border-left:6px solid #ea580c;border-radius:10px;
 padding:10px 16px;margin:16px 0;color:#7c2d12}
.warnings h2{color:#9a3412;margin-bottom:4px}
.warnings ul{margin:0;padding-left:20px}
.verdict{font-size:16px;font-weight:600;border-left:5px solid var(--accent);padding:6px 12px;background:#eff6ff}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{max-width:560px;overflow-wrap:anywhere}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(400px,1fr));gap:12px;align-items:start}
figure{margin:0}
svg.plot{max-width:100%;height:auto;display:block;margin:0 auto}
svg.plot text{font-family:inherit!important}
.thumbs{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}
.thumbs figure{border:1px solid var(--line);border-radius:8px;padding:6px;background:#fafbfc}
.thumbs img{width:100%;height:auto;display:block;border-radius:4px;background:#000}
.thumbs figcaption{font-size:12px;margin-top:4px;overflow-wrap:anywhere}
.thumbs .id{color:var(--muted);font-size:11px}
.thumbs audio{width:100%;height:28px;margin-top:4px}
.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:12px}
.kv table td:first-child{color:#374151;white-space:nowrap;width:40%}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12px}
pre{background:#f9fafb;border:1px solid var(--line);border-radius:6px;padding:8px 10px;margin:0;overflow:auto}
a{color:var(--accent)}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
"""


class Html(str):
    """A string that is already HTML (not to be escaped again)."""


def esc(value: Any) -> Html:
    """``value`` as escaped text; :class:`Html` passes through unchanged."""
    return value if isinstance(value, Html) else Html(html.escape(str(value), quote=True))


def fmt_num(value: Any, digits: int = 3) -> str:
    """``0.8734 -> '0.873'``, ints with thousands separators, ``None``/NaN -> ``'n/a'``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: set[int] | None = None, text: int | None = None
) -> Html:
    """A table; ``numeric`` columns are right-aligned, column ``text`` wraps long prose; cells are escaped."""
    numeric = numeric or set()

    def cell(tag: str, i: int, value: Any) -> str:
        cls = ' class="num"' if i in numeric else (' class="text"' if tag == "td" and i == text else "")
        return f"<{tag}{cls}>{esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return Html(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _scalar(value: Any) -> Html | str:
    if isinstance(value, dict | list):
        return Html(f"<code>{esc(json.dumps(value))}</code>")
    return value if isinstance(value, str) else json.dumps(value)  # true / false / null / numbers, as in the JSON


def key_value_table(data: dict[str, Any]) -> Html:
    """Two columns, key and value; lists and dicts as compact JSON."""
    return table(["key", "value"], [[k, _scalar(v)] for k, v in data.items()])


def section(anchor: str, title: str, body: str, note: str | None = None) -> Html:
    """A card with a heading; ``body`` is HTML, ``note`` plain text shown under the heading."""
    note_html = f'<p class="note">{esc(note)}</p>' if note else ""
    return Html(f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{note_html}{body}</section>\n')


def figures(*svgs: str | None) -> Html:
    """The given SVG figures side by side (None skipped)."""
    return Html('<div class="plots">' + "".join(f"<figure>{s}</figure>" for s in svgs if s) + "</div>")


def defang(text: str) -> str:
    """``http://`` -> ``http:&#8203;//`` (zero-width space): a URL quoted in run data becomes plain text.

    >>> defang('see https://t.co/x')
    'see https:&#8203;//t.co/x'
    """
    return text.replace("://", ":&#8203;//")


def page(title: str, header: str, sections: Sequence[str], nav: Sequence[tuple[str, str]] = ()) -> Html:
    """The whole document: no scripts, no external resources; ``header`` and ``sections`` are HTML.

    The page holds no URL at all: ``://`` in run data (a tweet's link, a source) is :func:`defang`-ed.
    """
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    nav_html = f"<nav>{links}</nav>" if links else ""
    return Html(
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
        f"<body><main><header>{defang(header)}{nav_html}</header>\n{defang(''.join(sections))}"
        "<footer>written by headstart; self-contained: no scripts, no external resources</footer>"
        "</main></body></html>\n"
    )
