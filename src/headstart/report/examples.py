"""Test examples shown in the reports (most confident mistakes, largest errors): thumbnails of images, log-mel
spectrograms with players for audio clips, or a table of ids with the texts, looked up by id through the
``examples`` callable the report is given."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from headstart.report.audio_examples import is_clip, spectrogram_image, wav_data_uri
from headstart.report.layout import Html, esc, table

__all__ = ["BY_ID", "MAX_SHOWN", "MAX_TEXT", "Example", "gallery", "load_examples"]

logger = logging.getLogger(__name__)

Example = Callable[[str], Any]  # test id -> HxW / HxWx3 uint8 image, text, clip (.wave, .sample_rate) or None
MAX_SHOWN = 12  # examples shown per section
MAX_TEXT = 300  # characters of a text example shown
BY_ID = " (listed by id only: no example loader was given for this report)"


def load_examples(ids: Sequence[str], order: Sequence[int], examples: Example | None) -> list[Any]:
    """The example of each row in ``order`` (an image, a text, or None when there is no loader or it fails)."""
    if examples is None:
        return [None] * len(order)
    out: list[Any] = []
    for i in order:
        ident = ids[int(i)]
        try:
            out.append(examples(ident))
        except Exception as e:  # one unreadable example must not cost the whole report
            logger.warning("could not load example %s for the report: %s", ident, e)
            out.append(None)
    return out


def _thumbs(ids: Sequence[str], images: list[tuple[int, np.ndarray]], caption: Callable[[int], str]) -> Html:
    from headstart.report.plots import thumbnail_data_uri  # matplotlib: imported only when a report is drawn

    cells = [
        f'<figure><img src="{thumbnail_data_uri(x)}" alt="{esc(ids[i])}">'
        f'<figcaption>{esc(caption(i))}<div class="id">{esc(ids[i])}</div></figcaption></figure>'
        for i, x in images
    ]
    return Html(f'<div class="thumbs">{"".join(cells)}</div>')


def _clips(ids: Sequence[str], clips: list[tuple[int, Any]], caption: Callable[[int], str]) -> Html:
    from headstart.report.plots import thumbnail_data_uri

    cells = [
        f'<figure><img src="{thumbnail_data_uri(spectrogram_image(c.wave, c.sample_rate))}" alt="{esc(ids[i])}">'
        f'<audio controls preload="none" src="{wav_data_uri(c.wave, c.sample_rate)}"></audio>'
        f'<figcaption>{esc(caption(i))}<div class="id">{esc(ids[i])}</div></figcaption></figure>'
        for i, c in clips
    ]
    return Html(f'<div class="thumbs">{"".join(cells)}</div>')


def gallery(
    ids: Sequence[str],
    order: Sequence[int],
    examples: Example | None,
    caption: Callable[[int], str],
    headers: list[str],
    cells: Callable[[int], list[Any]],
    numeric: set[int],
) -> tuple[Html, str]:
    """``(body, kind)`` for the rows in ``order``: thumbnails captioned ``caption(row)`` when the examples are
    images (kind ``"images"``), spectrograms with players when they are audio clips (``"clips"``), else a table
    of ``headers`` / ``cells(row)`` with a text column when the examples are texts (``"texts"``), or without one
    (``"ids"``: no loader, or nothing could be read)."""
    shown = load_examples(ids, order, examples)
    images = [(int(i), x) for i, x in zip(order, shown, strict=True) if isinstance(x, np.ndarray)]
    if images:
        return _thumbs(ids, images, caption), "images"
    clips = [(int(i), x) for i, x in zip(order, shown, strict=True) if is_clip(x)]
    if clips:
        return _clips(ids, clips, caption), "clips"
    texts = [x if isinstance(x, str) else None for x in shown]
    with_text = any(texts)
    rows = []
    for i, text in zip(order, texts, strict=True):
        row: list[Any] = cells(int(i))
        if with_text:
            row.append(text if text is None or len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…")
        rows.append(["" if v is None else v for v in row])
    body = table(headers + (["text"] if with_text else []), rows, numeric=numeric, text=len(headers))
    return body, "texts" if with_text else "ids"
