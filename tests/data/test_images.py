"""``read_image``: every Pillow mode decoded faithfully to 0..255, EXIF orientation, size limits."""

from __future__ import annotations

import json
import logging
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from headstart.data import ImageSet, read_image
from headstart.data import images as images_module
from headstart.data.images import LARGE_PIXELS, MAX_PIXELS, UnreadableImage
from tests.console import headstart

ORIENTATION = 0x0112  # EXIF tag


@pytest.fixture(scope="module")
def cell(elpv: ImageSet) -> np.ndarray:
    """A real ELPV cell, (300, 300) uint8, with the widest grey range of the set (0..254)."""
    assert elpv.arrays is not None
    return elpv.arrays[1864]


def grey(t: torch.Tensor) -> np.ndarray:
    assert t.dtype == torch.uint8 and t.shape[0] == 1, t.shape
    return t[0].numpy()


def rgb(t: torch.Tensor) -> np.ndarray:
    assert t.dtype == torch.uint8 and t.shape[0] == 3, t.shape
    return t.permute(1, 2, 0).numpy()


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


def zero_png(path: Path, width: int, height: int) -> Path:
    """A valid all-black 8-bit grey PNG of any size, written row by row (small memory, small file)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z, row = zlib.compressobj(), bytes(width + 1)  # each row: filter byte 0, then `width` black pixels
    idat = [z.compress(row) for _ in range(height)] + [z.flush()]
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(idat)) + chunk(b"IEND", b"")
    )
    return path


def test_ordinary_8bit_images_decode_exactly_as_stored(
    cell: np.ndarray, photos: dict[str, np.ndarray], tmp_path: Path
) -> None:
    Image.fromarray(cell).save(tmp_path / "cell.png")
    assert np.array_equal(grey(read_image(tmp_path / "cell.png")), cell)
    for name, photo in photos.items():
        Image.fromarray(photo).save(tmp_path / f"{name}.png")
        assert np.array_equal(rgb(read_image(tmp_path / f"{name}.png")), photo)
        Image.fromarray(photo).save(tmp_path / f"{name}.jpg", quality=90)
        assert np.array_equal(rgb(read_image(tmp_path / f"{name}.jpg")), np.array(Image.open(tmp_path / f"{name}.jpg")))


def _16bit_copies(cell: np.ndarray, tmp_path: Path) -> list[Path]:
    wide = cell.astype(np.uint16) * 257  # the usual 8 -> 16-bit expansion: 255 -> 65535
    Image.fromarray(wide).save(tmp_path / "cell16.png")  # I;16
    Image.fromarray(wide).save(tmp_path / "cell16.tif")  # I;16
    Image.frombytes("I;16B", wide.shape[::-1], wide.astype(">u2").tobytes()).save(tmp_path / "cell16b.tif")
    Image.fromarray(wide).save(tmp_path / "cell16.pgm")  # Pillow opens 16-bit PGMs as I
    return [tmp_path / n for n in ("cell16.png", "cell16.tif", "cell16b.tif", "cell16.pgm")]


def test_16bit_copies_of_a_real_cell_give_the_8bit_cell(cell: np.ndarray, tmp_path: Path) -> None:
    for path in _16bit_copies(cell, tmp_path):
        assert Image.open(path).mode in ("I;16", "I;16B", "I"), path
        assert np.array_equal(grey(read_image(path)), cell), path  # today: clipped to 255 (almost white)


def test_16bit_values_are_scaled_by_257_rounded_not_clipped(tmp_path: Path) -> None:
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    out = grey(read_image(tmp_path / "ramp.png"))
    assert np.array_equal(out, np.rint(ramp / 257).astype(np.uint8))
    assert out[0, 128] == 0 and out[0, 129] == 1 and out[-1, -1] == 255  # 128/257 < 0.5 < 129/257
    assert max_diff(out, ramp >> 8) == 1  # within one level of the high byte (torchvision, scikit-image)


def test_float_and_int32_tiffs_follow_the_documented_range_rule(cell: np.ndarray, tmp_path: Path) -> None:
    copies = {
        "fraction.tif": cell.astype(np.float32) / 255,  # [0, 1]: fractions
        "float8.tif": cell.astype(np.float32),  # [0, 255]: 8-bit
        "float16.tif": cell.astype(np.float32) * 257,  # [0, 65535]: 16-bit
        "int8.tif": cell.astype(np.int32),
        "int16.tif": cell.astype(np.int32) * 257,
    }
    for name, arr in copies.items():
        Image.fromarray(arr).save(tmp_path / name)
        assert Image.open(tmp_path / name).mode in ("F", "I")
        assert np.array_equal(grey(read_image(tmp_path / name)), cell), name


def test_out_of_range_values_are_stretched_with_one_warning(
    cell: np.ndarray, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images_module, "_warned", set())
    stretched = np.rint((cell - cell.min()) * (255 / (int(cell.max()) - int(cell.min())))).astype(np.uint8)
    Image.fromarray(cell.astype(np.float32) * 1000 - 5000).save(tmp_path / "physical.tif")  # e.g. a sensor in mV
    Image.fromarray(cell.astype(np.int32) * 100_000).save(tmp_path / "int32.tif")
    with caplog.at_level(logging.WARNING, logger="headstart.data.images"):
        assert max_diff(grey(read_image(tmp_path / "physical.tif")), stretched) <= 1
        assert max_diff(grey(read_image(tmp_path / "int32.tif")), stretched) <= 1
    lo, hi = int(cell.min()) * 1000 - 5000, int(cell.max()) * 1000 - 5000
    assert [r.getMessage() for r in caplog.records if "stretched" in r.getMessage()] == [
        f"{tmp_path / 'physical.tif'} holds values in [{lo}, {hi}], outside 0..65535: stretched its min..max "
        "to 0..255 (later such images are stretched without another warning)"
    ]


def test_nan_pixels_make_the_image_unreadable_with_the_fix(cell: np.ndarray, tmp_path: Path) -> None:
    arr = cell.astype(np.float32) / 255
    arr[:10, :5] = np.nan
    arr[0, -1] = np.inf
    Image.fromarray(arr).save(tmp_path / "masked.tif")
    with pytest.raises(UnreadableImage, match=r"masked.tif: 51 of 90000 pixels are NaN or infinite; .*nan_to_num"):
        read_image(tmp_path / "masked.tif")


def test_bilevel_palette_and_alpha_modes(cell: np.ndarray, photos: dict[str, np.ndarray], tmp_path: Path) -> None:
    Image.fromarray(cell > 128).save(tmp_path / "bilevel.png")  # mode 1
    assert np.array_equal(grey(read_image(tmp_path / "bilevel.png")), np.where(cell > 128, 255, 0))
    Image.fromarray(cell).convert("P").save(tmp_path / "grey_palette.png")  # Pillow's grey ramp palette
    assert np.array_equal(grey(read_image(tmp_path / "grey_palette.png")), cell)  # 1 channel, as the L cell
    Image.fromarray(np.dstack([cell, 255 - cell])).save(tmp_path / "la.png")
    assert np.array_equal(grey(read_image(tmp_path / "la.png")), cell)  # alpha dropped, grey stays 1 channel
    photo = photos["coffee"]
    Image.fromarray(np.dstack([photo, photo[..., 0]])).save(tmp_path / "rgba.png")
    assert np.array_equal(rgb(read_image(tmp_path / "rgba.png")), photo)  # alpha dropped, not composited
    Image.fromarray(photo).quantize(64).save(tmp_path / "colour_palette.png", transparency=0)
    palette = np.array(Image.open(tmp_path / "colour_palette.png").getpalette()).reshape(-1, 3)
    index = np.array(Image.open(tmp_path / "colour_palette.png"))
    assert np.array_equal(rgb(read_image(tmp_path / "colour_palette.png")), palette[index])


def test_cmyk_ycbcr_and_lab_become_rgb(photos: dict[str, np.ndarray], tmp_path: Path) -> None:
    photo = photos["chelsea"]
    Image.fromarray(photo).convert("CMYK").save(tmp_path / "cmyk.tif")
    assert np.array_equal(rgb(read_image(tmp_path / "cmyk.tif")), photo)
    Image.fromarray(photo).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    jpeg_error = np.abs(rgb(read_image(tmp_path / "cmyk.jpg")).astype(np.int32) - photo).mean()
    assert jpeg_error < 2.0, jpeg_error
    Image.fromarray(photo).convert("YCbCr").save(tmp_path / "ycbcr.tif")
    assert max_diff(rgb(read_image(tmp_path / "ycbcr.tif")), photo) <= 3  # Pillow's conversion rounding
    from PIL import ImageCms

    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    ImageCms.applyTransform(Image.fromarray(photo), to_lab).save(tmp_path / "lab.tif")
    lab_error = np.abs(rgb(read_image(tmp_path / "lab.tif")).astype(np.int32) - photo)
    assert lab_error.mean() < 0.5 and lab_error.max() <= 6, (lab_error.mean(), lab_error.max())  # 8-bit LAB steps


@pytest.mark.parametrize(("orientation", "stored_from_upright"), [(3, 2), (6, 1), (8, -1)])
def test_exif_orientation_is_applied(
    photos: dict[str, np.ndarray], tmp_path: Path, orientation: int, stored_from_upright: int
) -> None:
    upright = photos["coffee"]  # (400, 600, 3): a rotation changes the shape
    stored = np.ascontiguousarray(np.rot90(upright, stored_from_upright))  # what a camera writes
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    Image.fromarray(stored).save(tmp_path / "photo.png", exif=exif)
    assert np.array_equal(rgb(read_image(tmp_path / "photo.png")), upright)
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    decoded = np.array(Image.open(tmp_path / "photo.jpg"))  # as stored, lossy
    assert np.array_equal(rgb(read_image(tmp_path / "photo.jpg")), np.rot90(decoded, -stored_from_upright))


LARGE_SCRIPT = """
import json, logging, resource, sys, time
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
from headstart.data.images import read_image
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
out = [read_image(p) for p in sys.argv[1:]]
print(json.dumps({
    "shapes": [list(t.shape) for t in out],
    "means": [t.float().mean().item() for t in out],
    "seconds": time.perf_counter() - start,
    "extra_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024,
}))
"""


def test_large_images_are_reduced_on_decode_with_one_warning(cell: np.ndarray, tmp_path: Path) -> None:
    png = zero_png(tmp_path / "scan.png", 12000, 12000)  # 144 M pixels, 140 kB
    tiled = np.tile(cell, (30, 34))  # 9000 x 10200 = 91.8 M pixels of real cells
    Image.fromarray(tiled).save(tmp_path / "mosaic.jpg", quality=90)
    del tiled
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", LARGE_SCRIPT, str(png), str(tmp_path / "mosaic.jpg"), str(png)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["shapes"] == [[1, 6000, 6000], [1, 4500, 5100], [1, 6000, 6000]]  # PNG: reduce(2); JPEG: draft 1/2
    assert report["means"][0] == 0.0 and abs(report["means"][1] - cell.mean()) < 1.0
    assert report["extra_mb"] < 300, report  # 144 MB decoded + the reduced copy; today 3 full copies (~410 MB)
    assert report["seconds"] < 20, report
    assert "DecompressionBombWarning" not in result.stderr, result.stderr
    assert result.stderr.count("WARNING") == 1, result.stderr
    assert (
        f"WARNING headstart.data.images: {png} is 12000x12000 (over {LARGE_PIXELS:,} pixels): reduced to 6000x6000 "
        "on decode; later large images are reduced the same way without another warning"
    ) in result.stderr


def test_images_over_the_hard_limit_are_unreadable_with_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = zero_png(tmp_path / "panorama.png", 20000, 9000)  # 180 M pixels > MAX_PIXELS
    assert MAX_PIXELS == 178_956_970
    with pytest.raises(UnreadableImage, match=r"panorama.png: .* refuses images over 178,956,970 pixels"):
        read_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # a user who switched Pillow's own check off
    with pytest.raises(UnreadableImage, match=r"20000x9000 image \(180,000,000 pixels\) is too large; .*178,956,970"):
        read_image(path)


@pytest.mark.slow
def test_predict_gives_the_same_answer_for_every_copy_of_a_cell(
    elpv_folder: Path, cell: np.ndarray, tmp_path: Path
) -> None:
    run = tmp_path / "probe"
    train = headstart(
        "train", str(elpv_folder), "--backbone", "mobilenet_v2", "--strategy", "linear-probe", "--out", str(run),
        "--set", "train.batch_size=8",
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    Image.fromarray(cell).save(tmp_path / "cell8bit.png")
    Image.fromarray(cell.astype(np.uint16) * 257).save(tmp_path / "cell16bit.png")
    Image.fromarray(cell.astype(np.float32) / 255).save(tmp_path / "cellfloat.tif")
    exif = Image.Exif()
    exif[ORIENTATION] = 3  # stored upside down, displayed upright
    Image.fromarray(np.ascontiguousarray(cell[::-1, ::-1])).save(tmp_path / "cellrotated.png", exif=exif)
    zero_png(tmp_path / "bomb.png", 20000, 9000)
    names = ["cell8bit.png", "cell16bit.png", "cellfloat.tif", "cellrotated.png", "bomb.png"]
    result = headstart("predict", str(run), *[str(tmp_path / n) for n in names], "--format", "json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    reference = records[0]
    for record in records[1:4]:
        assert record["label"] == reference["label"], record
        for label, p in reference["probabilities"].items():
            assert abs(record["probabilities"][label] - p) < 1e-3, (record, reference)
    assert records[4]["label"] is None and "refuses images over 178,956,970 pixels" in records[4]["error"]
