"""``load_data``: the DATA argument, whatever it holds, as a labelled set (the modality that claims it reads it)."""

from __future__ import annotations

from headstart.config import DataConfig
from headstart.data.audio import AudioSet
from headstart.data.images import ImageSet
from headstart.data.texts import TextSet

__all__ = ["load_data", "Dataset"]

Dataset = ImageSet | TextSet | AudioSet


def load_data(source: str, cfg: DataConfig | None = None, empty_labels: bool = False) -> Dataset:
    """Read DATA with the first modality plug-in that claims it (texts: CSV/TSV/JSONL with a text column,
    folders of .txt, text builtins; images otherwise). ``empty_labels``: an example may have no label (the
    multi-label task); labels stay the readers' strings until the task encodes them."""
    from headstart.modalities import modality_of_source

    cfg = cfg or DataConfig(source=source)
    loaded: Dataset = modality_of_source(source, cfg).load(source, cfg, empty_labels)
    return loaded
