"""Still images: load a portrait as RGB, save an RGB image.

Uses Pillow. Whatever the file holds (EXIF rotation, alpha, grayscale,
palette, CMYK, 16-bit samples) comes out as ``uint8 [H,W,3] RGB``.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from talkhead.errors import MediaError, OutputError
from talkhead.io.files import require_readable

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WIDE_GRAY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
_OPEN_ERRORS = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    SyntaxError,
    Image.DecompressionBombError,
)


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Load a portrait image, upright, as RGB.

    EXIF orientation is applied; transparency is composited over white;
    grayscale, palette, CMYK and 16-bit images are converted (16-bit samples
    are scaled by 255/65535).

    Returns:
        image: uint8 [H,W,3] RGB, 0..255, C-contiguous.

    Raises:
        MediaError: missing, unreadable, corrupt, empty, or not an image.
    """
    p = require_readable(path)
    try:
        with Image.open(p) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.width == 0 or im.height == 0:
                raise MediaError(
                    f"cannot read portrait {p}: the image is empty (0 pixels); use another image"
                )
            rgb = _to_rgb_array(im)
    except MediaError:
        raise
    except _OPEN_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MediaError(
            f"cannot read portrait {p}: not an image Pillow can open ({reason}); use a PNG or JPEG"
        ) from exc
    return rgb


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert any Pillow image to uint8 [H,W,3] RGB (alpha over white)."""
    if im.mode in _WIDE_GRAY_MODES:
        gray = _wide_gray_to_uint8(np.asarray(im), im.mode)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb)


def _wide_gray_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16/32-bit integer or float grayscale array to uint8 [H,W].

    ``I;16*``: 0..65535. ``I`` (32-bit int, which older Pillow uses for
    16-bit PNGs): 0..65535 when all values fit, else 0..2**31-1. ``F``:
    0..1 when all values fit, else 0..255 when they fit, else 0..65535.
    """
    values = arr.astype(np.float64)
    top = float(values.max()) if values.size else 0.0
    if mode.startswith("I;16"):
        full = 65535.0
    elif mode == "I":
        full = 65535.0 if top <= 65535 else float(2**31 - 1)
    elif top <= 1.0:
        full = 1.0
    else:
        full = 255.0 if top <= 255 else 65535.0
    scaled = np.clip(values * (255.0 / full), 0.0, 255.0)
    return np.rint(scaled).astype(np.uint8)


def save_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Save ``image`` (uint8 [H,W,3] RGB) as PNG or JPEG, chosen by suffix.

    JPEG is written at quality 95. Writes ``path`` directly; wrap it in
    :func:`talkhead.io.files.atomic_output` for all-or-nothing output.

    Raises:
        ValueError: ``image`` is not uint8 [H,W,3].
        OutputError: unknown suffix or the file cannot be written.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 [H,W,3], got {image.dtype} {image.shape}")
    fmt = _SAVE_FORMATS.get(os.path.splitext(os.fspath(path))[1].lower())
    if fmt is None:
        raise OutputError(f"cannot write {path}: unknown image type; use a .png or .jpg file name")
    options = {"quality": 95} if fmt == "JPEG" else {}
    try:
        Image.fromarray(np.ascontiguousarray(image), "RGB").save(path, format=fmt, **options)
    except OSError as exc:
        raise OutputError(
            f"cannot write {path}: {exc.strerror or exc}; check the output path"
        ) from exc
