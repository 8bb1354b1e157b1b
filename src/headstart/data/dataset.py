"""``load_data``: the DATA argument, whatever it holds (images or texts), as a labelled set."""

from __future__ import annotations

from headstart.config import DataConfig
from headstart.data.images import ImageSet
from headstart.data.sources import load_images
from headstart.data.text_sources import is_text_source, load_texts
from headstart.data.texts import TextSet

__all__ = ["load_data", "Dataset"]

Dataset = ImageSet | TextSet


def load_data(source: str, cfg: DataConfig | None = None) -> Dataset:
    """Texts for text sources (CSV/TSV/JSONL with a text column, folders of .txt, text builtins), images otherwise."""
    cfg = cfg or DataConfig(source=source)
    if is_text_source(source, text_column=cfg.text_column):
        return load_texts(source, text_column=cfg.text_column, label_column=cfg.label_column)
    return load_images(source)
