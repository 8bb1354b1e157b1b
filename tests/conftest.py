"""Shared fixtures: real data subsets (ELPV, skimage photos) and an isolated feature cache."""

from __future__ import annotations

import ctypes
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # `make test` runs pytest-xdist workers (two on a 2-core machine): the cores are shared out between them (and
    # the console processes and torchrun ranks they start inherit it), so the workers do not fight over the cores.
    # Set before torch is imported: it reads OMP_NUM_THREADS once.
    share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, share)))

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from headstart import _runtime  # noqa: E402
from headstart.config import RunConfig, load_config  # noqa: E402
from headstart.data import ImageSet, load_images  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty feature cache of its own."""
    monkeypatch.setenv("HEADSTART_CACHE_DIR", str(tmp_path / "feature-cache"))


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask for the test (subprocesses inherit it), restored after."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def file_mode(path: Path) -> int:
    """The permission bits of ``path`` (e.g. 0o644)."""
    return path.stat().st_mode & 0o777


@pytest.fixture(scope="session")
def elpv() -> ImageSet:
    """The real ELPV solar-cell set (2,624 images), loaded once."""
    return load_images("builtin:elpv")


def write_class_folder(root: Path, images: ImageSet, per_class: int, seed: int = 0) -> Path:
    """Write ``per_class`` real images of each class as PNG files under root/<label>/."""
    rng = np.random.RandomState(seed)
    for k, label in enumerate(images.labels):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in rng.permutation(np.flatnonzero(images.targets == k))[:per_class]:
            assert images.arrays is not None
            Image.fromarray(images.arrays[i]).save(root / label / f"cell{i}.png")
    return root


@pytest.fixture(scope="session")
def elpv_folder(tmp_path_factory: pytest.TempPathFactory, elpv: ImageSet) -> Path:
    """A class folder of 14 real ELPV cells per class (functional / defective)."""
    return write_class_folder(tmp_path_factory.mktemp("elpv_folder"), elpv, per_class=14)


@pytest.fixture
def tiny_config(elpv_folder: Path) -> RunConfig:
    """A fast config on the real ELPV subset: 1 epoch, small batches."""
    return load_config(None, [f"data.source={elpv_folder}", "train.epochs=1", "train.batch_size=8"])


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    from skimage import data

    return {"coffee": data.coffee(), "chelsea": data.chelsea()}


@pytest.fixture(scope="session")
def tweets_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 3-class subset of builtin:tweets (20 per class) as a text,label CSV."""
    import csv

    from headstart.data import load_texts

    tweets = load_texts("builtin:tweets")
    rng = np.random.RandomState(0)
    path = tmp_path_factory.mktemp("tweets") / "tweets.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for k, label in enumerate(tweets.labels):
            for i in rng.permutation(np.flatnonzero(tweets.targets == k))[:20]:
                writer.writerow([tweets.texts[i], label])
    return path


@pytest.fixture
def text_config(tweets_csv: Path) -> RunConfig:
    """A fast text config: minilm on the tweets subset, 1 epoch, small batches."""
    return load_config(
        None, [f"data.source={tweets_csv}", "model.backbone=minilm", "train.epochs=1", "train.batch_size=8"]
    )


def mmapped_bytes() -> int:
    """glibc's count of bytes in blocks it serves with their own mmap (``mallinfo2().hblkhd``)."""
    fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in fields]

    libc = _runtime._glibc()
    assert libc is not None, "mallinfo2 is glibc's"
    info = libc.mallinfo2
    info.restype = MallInfo2
    return int(info().hblkhd)


def served_by_mmap(nbytes: int = 8 << 20) -> bool:
    """Whether an 8 MB array gets fresh mmap'd pages (glibc's default threshold) or heap memory (tuned: 32 MB)."""
    before = mmapped_bytes()
    block = np.empty(nbytes, np.uint8)
    grew = mmapped_bytes() - before >= nbytes
    del block
    return grew


@pytest.fixture
def untuned_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process the CLI did not tune (as a notebook's), with no allocator settings of the user's own."""
    for key in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("HEADSTART_NO_MALLOC_TUNING", raising=False)
    monkeypatch.setitem(_runtime._state, "process", False)
