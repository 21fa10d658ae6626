"""Tests for talkhead.io.image: load_image / save_image."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from talkhead.errors import MediaError, OutputError
from talkhead.io.image import load_image, save_image


def _check_rgb(image: np.ndarray, height: int, width: int) -> None:
    assert image.dtype == np.uint8
    assert image.shape == (height, width, 3)
    assert image.flags["C_CONTIGUOUS"]


def test_exif_orientation_6_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:10, :10] = (255, 0, 0)  # red block top-left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    path = tmp_path / "rot.jpg"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    image = load_image(path)
    _check_rgb(image, 40, 20)
    assert image[:10, -10:, 0].mean() > 200  # top-right once upright
    assert image[:10, :10, 0].mean() < 50


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 3, 4), np.uint8)
    rgba[0] = (255, 0, 0, 255)
    rgba[1] = (0, 0, 0, 0)
    rgba[2] = (0, 0, 0, 128)
    rgba[3] = (0, 0, 255, 255)
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = load_image(path)
    _check_rgb(image, 4, 3)
    assert (image[0] == (255, 0, 0)).all()
    assert (image[1] == 255).all()
    assert np.abs(image[2].astype(int) - 127).max() <= 1
    assert (image[3] == (0, 0, 255)).all()


def test_la_and_palette_with_transparency(tmp_path: Path) -> None:
    la = Image.fromarray(np.array([[[0, 0], [0, 255]]], np.uint8), "LA")
    la.save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png")[0].tolist() == [[255] * 3, [0] * 3]
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    pal.save(tmp_path / "p.png", transparency=0)
    assert load_image(tmp_path / "p.png")[0].tolist() == [[255] * 3, [0, 255, 0]]
    pal.save(tmp_path / "p.gif")
    assert load_image(tmp_path / "p.gif")[0].tolist() == [[255, 0, 0], [0, 255, 0]]


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale(tmp_path: Path, mode: str) -> None:
    gray = np.array([[0, 255], [255, 0]], np.uint8)
    path = tmp_path / "g.png"
    Image.fromarray(gray).convert(mode).save(path)
    image = load_image(path)
    _check_rgb(image, 2, 2)
    assert (image == gray[:, :, None]).all()


def test_16bit_gray_png(tmp_path: Path) -> None:
    gray = np.array([[0, 65535, 32768, 257]], np.uint16)
    path = tmp_path / "g16.png"
    cv2.imwrite(str(path), gray)
    assert Image.open(path).mode.startswith("I")
    image = load_image(path)
    _check_rgb(image, 1, 4)
    assert image[0, :, 0].tolist() == [0, 255, 128, 1]
    Image.fromarray(gray).save(tmp_path / "pil16.png")
    assert (load_image(tmp_path / "pil16.png") == image).all()


def test_16bit_rgb_png(tmp_path: Path) -> None:
    bgr = np.zeros((2, 3, 3), np.uint16)
    bgr[..., 2] = 65535  # red (cv2 writes BGR)
    bgr[..., 1] = 32896  # green ~ 128
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), bgr)
    image = load_image(path)
    _check_rgb(image, 2, 3)
    assert np.abs(image.astype(int) - (255, 128, 0)).max() <= 1


def test_32bit_int_and_float_gray(tmp_path: Path) -> None:
    ints = np.array([[0, 65535]], np.int32)
    Image.fromarray(ints, "I").save(tmp_path / "i.tif")
    assert load_image(tmp_path / "i.tif")[0, :, 0].tolist() == [0, 255]
    floats = np.array([[0.0, 0.5, 1.0]], np.float32)
    Image.fromarray(floats, "F").save(tmp_path / "f.tif")
    assert load_image(tmp_path / "f.tif")[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk_jpeg(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # red
    cmyk.paste((0, 0, 0, 0), (8, 0, 16, 8))  # white
    path = tmp_path / "c.jpg"
    cmyk.save(path, quality=95)
    image = load_image(path)
    _check_rgb(image, 8, 16)
    assert np.abs(image[:, :6].astype(int) - (255, 0, 0)).mean() < 12
    assert np.abs(image[:, 10:].astype(int) - 255).mean() < 12


@pytest.mark.parametrize(
    "content", [b"not an image at all\n", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b""]
)
def test_not_an_image(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "face.png"
    path.write_bytes(content)
    with pytest.raises(MediaError, match="cannot read portrait .*face.png: not an image"):
        load_image(path)


def test_truncated_image(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = tmp_path / "cut.png"
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(MediaError, match="cut.png"):
        load_image(path)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_zero_size_image(tmp_path: Path) -> None:
    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    png += _png_chunk(b"IDAT", zlib.compress(b"")) + _png_chunk(b"IEND", b"")
    path = tmp_path / "empty.png"
    path.write_bytes(png)
    with pytest.raises(MediaError, match="empty.png"):
        load_image(path)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        load_image(tmp_path / "none.png")
    with pytest.raises(MediaError, match="directory"):
        load_image(tmp_path)


def test_save_image_round_trip(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    save_image(tmp_path / "x.png", image)
    assert (load_image(tmp_path / "x.png") == image).all()
    smooth = np.broadcast_to(np.linspace(0, 255, 12, dtype=np.uint8)[None, :, None], (10, 12, 3))
    save_image(tmp_path / "x.JPG", smooth)
    assert np.abs(load_image(tmp_path / "x.JPG").astype(int) - smooth).mean() < 4
    with pytest.raises(OutputError, match="x.bmp"):
        save_image(tmp_path / "x.bmp", image)
    with pytest.raises(ValueError):
        save_image(tmp_path / "y.png", image.astype(np.float32))
    with pytest.raises(OutputError):
        save_image(tmp_path / "missing" / "y.png", image)
