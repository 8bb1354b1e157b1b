from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headstart.data import ImageSet, UnreadableImage, load_images, read_image
from headstart.data.builtin import FASHION_DIR
from headstart.errors import HeadstartError

from ..conftest import write_class_folder


def test_class_folder(elpv_folder: Path) -> None:
    images = load_images(str(elpv_folder))
    assert images.labels == ["defective", "functional"]
    assert images.class_counts() == {"defective": 14, "functional": 14}
    assert images.given_split is None and images.paths is not None
    x = images.load(0)
    assert x.dtype.is_floating_point is False and x.shape == (1, 300, 300)


def test_split_folders(tmp_path: Path, elpv: ImageSet) -> None:
    write_class_folder(tmp_path / "train", elpv, 6, seed=1)
    write_class_folder(tmp_path / "test", elpv, 3, seed=2)
    images = load_images(str(tmp_path))
    assert sorted(set(images.given_split)) == ["test", "train"]
    assert (images.given_split == "test").sum() == 6
    assert all(i.startswith(("train/", "test/")) for i in images.ids)


def test_csv_relative_paths(tmp_path: Path, elpv_folder: Path) -> None:
    rows = ["path,label"]
    for f in sorted(elpv_folder.rglob("*.png")):
        rows.append(f"{Path('..') / elpv_folder.name / f.parent.name / f.name},{f.parent.name}")
    csv = tmp_path / "sub" / "data.csv"
    csv.parent.mkdir()
    csv.write_text("\n".join(rows) + "\n")
    # the CSV lives next to elpv_folder's parent: resolve paths relative to the CSV
    target = elpv_folder.parent / "sub"
    target.mkdir(exist_ok=True)
    (target / "data.csv").write_text(csv.read_text())
    images = load_images(str(target / "data.csv"))
    assert len(images) == 28 and images.labels == ["defective", "functional"]


def test_builtin_elpv(elpv: ImageSet) -> None:
    assert len(elpv) == 2624 and elpv.labels == ["functional", "defective"]
    assert elpv.class_counts()["defective"] == int((elpv.meta["defect_probability"] >= 0.5).sum())
    assert elpv.arrays is not None and elpv.arrays.shape[1:] == (300, 300)


def test_builtin_elpv_cell_types_split_the_set(elpv: ImageSet) -> None:
    mono, poly = load_images("builtin:elpv-mono"), load_images("builtin:elpv-poly")
    assert len(mono) + len(poly) == len(elpv) and mono.labels == poly.labels == elpv.labels
    assert set(mono.meta["cell_type"]) == {"mono"} and mono.source == "builtin:elpv-mono"
    assert mono.ids[0].startswith("builtin:elpv-mono/") and len(set(mono.ids) & set(poly.ids)) == 0


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_builtin_fashion_mnist() -> None:
    images = load_images("builtin:fashion-mnist")
    assert len(images) == 70000 and len(images.labels) == 10
    assert (images.given_split == "test").sum() == 10000


def test_fashion_mnist_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("headstart.data.builtin.FASHION_DIR", tmp_path / "none")
    with pytest.raises(HeadstartError, match="apt-get install dataset-fashion-mnist"):
        load_images("builtin:fashion-mnist")


def test_missing_path() -> None:
    with pytest.raises(HeadstartError, match="does not exist.*one subfolder per class"):
        load_images("/no/such/folder")


def test_empty_class_folder(tmp_path: Path, elpv: ImageSet) -> None:
    write_class_folder(tmp_path, elpv, 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(HeadstartError, match="class folder.*empty.*hold no images"):
        load_images(str(tmp_path))


def test_class_with_one_example(tmp_path: Path, elpv: ImageSet) -> None:
    write_class_folder(tmp_path, elpv, 3)
    (tmp_path / "rare").mkdir()
    Image.fromarray(elpv.arrays[0]).save(tmp_path / "rare" / "only.png")  # type: ignore[index]
    with pytest.raises(HeadstartError, match=r"fewer than 2 examples.*rare \(1\)"):
        load_images(str(tmp_path))


def test_csv_without_columns(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("file,class\na.png,x\n")
    with pytest.raises(HeadstartError, match=r"needs columns path,label \(found: file, class\)"):
        load_images(str(f))


def test_csv_with_missing_files(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("path,label\na.png,x\nb.png,y\n")
    with pytest.raises(HeadstartError, match="do not exist"):
        load_images(str(f))


def test_unknown_builtin() -> None:
    with pytest.raises(HeadstartError, match="known: builtin:elpv, builtin:elpv-mono, builtin:elpv-poly"):
        load_images("builtin:cifar")


def test_corrupt_image_raises_unreadable(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(UnreadableImage, match="bad.png"):
        read_image(bad)


def test_rgb_and_grey_files(tmp_path: Path, photos: dict) -> None:
    Image.fromarray(photos["coffee"]).save(tmp_path / "c.jpg")
    Image.fromarray(photos["coffee"]).convert("L").save(tmp_path / "g.png")
    Image.fromarray(photos["coffee"]).convert("RGBA").save(tmp_path / "a.png")
    assert read_image(tmp_path / "c.jpg").shape[0] == 3
    assert read_image(tmp_path / "g.png").shape[0] == 1
    assert read_image(tmp_path / "a.png").shape[0] == 3


def test_fingerprint_changes_with_content(tmp_path: Path, elpv: ImageSet) -> None:
    write_class_folder(tmp_path, elpv, 3)
    before = load_images(str(tmp_path)).fingerprint()
    assert load_images(str(tmp_path)).fingerprint() == before
    f = next(tmp_path.rglob("*.png"))
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(f)
    assert load_images(str(tmp_path)).fingerprint() != before
