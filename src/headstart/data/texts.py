"""``TextSet``: a labelled collection of texts held in memory (the text twin of ``ImageSet``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from headstart.data.targets import target_bytes

__all__ = ["TextSet"]


@dataclass
class TextSet:
    """Labelled texts, already decoded and stripped; rows skipped at load time are listed in ``skipped``.

    Example:
        >>> ts = TextSet("demo", ["a", "b"], np.array([0, 1]), ["neg", "pos"], ["bad film", "great film"])
        >>> len(ts), ts.load(1), ts.class_counts()
        (2, 'great film', {'neg': 1, 'pos': 1})
    """

    modality: ClassVar[str] = "text"  # lets the runner tell text sets from image sets without isinstance

    source: str  # what the user passed (file, folder, builtin:NAME)
    ids: list[str]  # stable identifier per text (e.g. "train.csv:row 12", "pos/a.txt", "builtin:tweets/123")
    targets: np.ndarray  # (N,) int64 class index into `labels`
    labels: list[str]  # class names in index order (sorted)
    texts: list[str]  # (N,) the texts, surrounding whitespace stripped, line ends normalised to "\n"
    given_split: np.ndarray | None = None  # (N,) of "train" / "val" / "test" when the source defines splits
    meta: dict[str, np.ndarray] = field(default_factory=dict)  # extra per-text columns (e.g. confidence)
    skipped: list[str] = field(default_factory=list)  # why rows were skipped at load time, one message each
    layout: str = "table"  # folders (the class is the folder name) | table (a label column) | builtin | memory

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> str:
        """Text ``i``."""
        return self.texts[i]

    def example(self, i: int) -> str:
        """Text ``i`` as a report shows it."""
        return self.texts[i]

    def subset(self, index: np.ndarray) -> TextSet:
        """The texts at ``index`` (in that order); ``skipped`` is kept, since it describes the source."""
        index = np.asarray(index, dtype=np.int64)
        return replace(
            self,
            ids=[self.ids[i] for i in index],
            targets=self.targets[index],
            texts=[self.texts[i] for i in index],
            given_split=self.given_split[index] if self.given_split is not None else None,
            meta={k: v[index] for k, v in self.meta.items()},
            skipped=list(self.skipped),
        )

    def fingerprint(self) -> str:
        """Changes whenever a text, an id, a label or the class list changes."""
        h = hashlib.blake2b(digest_size=16)
        h.update("\x1f".join(self.labels).encode())
        h.update(target_bytes(self.targets))
        h.update("\x1f".join(self.ids).encode())
        for text in self.texts:  # length-prefixed, so no separator inside a text can collide
            raw = text.encode("utf-8", "surrogatepass")
            h.update(f"{len(raw)}:".encode())
            h.update(raw)
        return h.hexdigest()

    def class_counts(self) -> dict[str, int]:
        """Number of texts per class name, in class-index order."""
        counts = np.bincount(self.targets, minlength=len(self.labels))
        return {label: int(c) for label, c in zip(self.labels, counts, strict=True)}

    def lengths(self) -> np.ndarray:
        """(N,) int64 characters per text."""
        return np.fromiter((len(t) for t in self.texts), dtype=np.int64, count=len(self.texts))
