from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headstart import runner
from headstart.config import load_config
from headstart.data import ImageSet, UnreadableImage, load_images, read_image
from headstart.data.builtin import FASHION_DIR
from headstart.errors import HeadstartError

from ..conftest import write_class_folder
from ..console import headstart, refused


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


def write_csv(path: Path, rows: list[str], header: str = "path,label") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def cells(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


def test_csv_absolute_and_parent_paths_keep_their_text_as_id(
    tmp_path: Path, elpv_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = cells(elpv_folder)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "near.png").write_bytes(files[0].read_bytes())
    rows = [f"{f},{f.parent.name}" for f in files[1:]] + ["../imgs/near.png,defective"]
    csv = write_csv(tmp_path / "lists" / "data.csv", rows)
    images = load_images(str(csv))
    assert len(images) == 28 and images.class_counts() == {"defective": 14, "functional": 14}
    assert images.ids[0] == str(files[1]) and images.ids[-1] == "../imgs/near.png"  # the path as written
    assert images.paths is not None and images.paths[-1].resolve() == (tmp_path / "imgs" / "near.png")
    monkeypatch.chdir(elpv_folder)  # ids do not depend on where headstart runs
    assert load_images(str(csv)).ids == images.ids
    write_csv(csv, [*rows, "/no/such/cell.png,defective"])
    with pytest.raises(HeadstartError, match=r"1 file\(s\) that do not exist, e.g. row 29: '/no/such/cell.png'.*"):
        load_images(str(csv))


def test_csv_repeated_path_gets_a_unique_id(tmp_path: Path, elpv_folder: Path) -> None:
    rows = [f"{f},{f.parent.name}" for f in cells(elpv_folder)[::5]]  # 6 files of both classes
    images = load_images(str(write_csv(tmp_path / "d.csv", [*rows, rows[0], rows[0]])))
    first = str(cells(elpv_folder)[0])
    assert images.ids[-2:] == [f"{first} (row 7)", f"{first} (row 8)"] and len(set(images.ids)) == 8


def test_csv_with_latin1_byte_names_the_line_and_the_fix(tmp_path: Path, elpv_folder: Path) -> None:
    rows = [f"{f},{f.parent.name}".encode() for f in cells(elpv_folder)[:4]]
    rows[1] = rows[1].replace(b",", b",caf\xe9 ")  # a latin-1 label, as Excel saves "CSV" on Windows
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"path,label\n" + b"\n".join(rows) + b"\n")
    column = len(rows[1].split(b",")[0]) + 5
    with pytest.raises(
        HeadstartError,
        match=rf"latin1.csv is not UTF-8: line 3 has byte 0xe9 at column {column} \(1 line\(s\) in all\)",
    ) as err:
        load_images(str(path))
    assert "save the file as UTF-8" in str(err.value) and "iconv -f latin1 -t utf-8" in str(err.value)


def test_csv_with_byte_order_mark(tmp_path: Path, elpv_folder: Path) -> None:
    rows = [f"{f},{f.parent.name}" for f in cells(elpv_folder)]
    images = load_images(str(write_csv(tmp_path / "bom.csv", rows, header="\ufeffpath,label")))
    assert len(images) == 28 and images.labels == ["defective", "functional"]


@pytest.mark.parametrize(
    ("cell", "message"), [("label", "row 3 has an empty label"), ("path", "row 3 has an empty path")]
)
def test_csv_empty_cell_is_refused(tmp_path: Path, elpv_folder: Path, cell: str, message: str) -> None:
    rows = [f"{f},{f.parent.name}" for f in cells(elpv_folder)[:4]]
    rows[2] = rows[2].split(",")[0] + "," if cell == "label" else "," + rows[2].split(",")[1]
    with pytest.raises(HeadstartError, match=f"d.csv: {message}; fill it in or remove the row"):
        load_images(str(write_csv(tmp_path / "d.csv", rows)))


def test_csv_listing_a_folder(tmp_path: Path, elpv_folder: Path) -> None:
    rows = [f"{f},{f.parent.name}" for f in cells(elpv_folder)[:4]] + [f"{elpv_folder / 'defective'},defective"]
    with pytest.raises(
        HeadstartError, match=r"1 folder\(s\) instead of image files, e.g. row 5: .*one image file per row"
    ):
        load_images(str(write_csv(tmp_path / "d.csv", rows)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"needs columns path,label \(found: none\)"),
        (b"path,label\n\n", "has a header but no rows; add one row per image: path,label"),
        (
            b'path,label\n"' + b"x" * 200_000 + b'",a\n',
            r"cannot parse the CSV after line 1 \(field larger than field limit",
        ),
        (b"path,label,split\na.png,x,train\nb.png,y,dev\n", "d.csv: row 2 has split 'dev'; use train, val or test"),
    ],
    ids=["empty", "header-only", "huge-field", "bad-split"],
)
def test_bad_csv_is_a_message(tmp_path: Path, content: bytes, message: str) -> None:
    for name in ("a.png", "b.png"):
        Image.new("L", (4, 4)).save(tmp_path / name)
    (tmp_path / "d.csv").write_bytes(content)
    with pytest.raises(HeadstartError, match=message):
        load_images(str(tmp_path / "d.csv"))


def test_text_folder_given_as_images_says_what_it_holds(tmp_path: Path) -> None:
    for label in ("neg", "pos"):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"r{i}.txt").write_text("a review")
    Image.new("RGB", (4, 4)).save(tmp_path / "pos" / "stray.png")
    with pytest.raises(HeadstartError, match="neg in .* hold no images") as err:
        load_images(str(tmp_path))
    assert (
        "hold 6 .txt file(s) and 1 image(s): if this is text data, remove the images; if it is image data, "
        "remove the .txt files" in str(err.value)
    )


def test_latin1_csv_through_the_console(tmp_path: Path, elpv_folder: Path) -> None:
    rows = [f"{f},{'défaut' if 'defective' in f.parent.name else f.parent.name}" for f in cells(elpv_folder)]
    path = tmp_path / "cells.csv"
    path.write_bytes(("\n".join(["path,label", *rows]) + "\n").encode("latin-1"))
    refused(
        headstart("plan", str(path), "--backbone", "mobilenet_v2"), "cells.csv is not UTF-8", "save the file as UTF-8"
    )


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
    assert len(load_images(str(tmp_path)).labels) == 3  # reading is the task's business: classification refuses
    with pytest.raises(HeadstartError, match=r"fewer than 2 examples.*rare \(1\)"):
        runner.prepare_data(load_config(None, [f"data.source={tmp_path}"]))


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
