"""Square face crop around a portrait's face, and feathered paste-back.

The crop is processed at a fixed size (256 or 512); paste-back resizes the
rendered crop to its place in the portrait and blends it in with a mask that
is 1 in the middle and fades to 0 before the crop's edge, so no seam shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP_SCALE = 2.2      # crop side / face size (the larger side of the landmarks' box)
CROP_LIFT = 0.12      # crop centre moved up by this many face sizes (keeps the hair)
FEATHER = 0.12        # fraction of the crop side over which the paste mask fades


@dataclass(frozen=True)
class CropBox:
    """A square region of the portrait: top-left corner and side, in portrait pixels."""

    x0: float
    y0: float
    side: float

    def to_crop(self, points: np.ndarray, size: int) -> np.ndarray:
        """Portrait pixel coordinates [...,2+] → crop pixels at `size` (z scaled alike)."""
        k = size / self.side
        out = np.array(points, np.float32, copy=True)
        out[..., 0] = (out[..., 0] - self.x0) * k
        out[..., 1] = (out[..., 1] - self.y0) * k
        out[..., 2:] *= k
        return out

    def affine(self, size: int) -> np.ndarray:
        """2x3 affine taking portrait pixels to crop pixels at `size`."""
        k = size / self.side
        return np.array([[k, 0, -k * self.x0], [0, k, -k * self.y0]], np.float64)


def crop_box(landmarks: np.ndarray, scale: float = CROP_SCALE, lift: float = CROP_LIFT) -> CropBox:
    """Crop around a face's landmarks [478,2+] (portrait pixels)."""
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    face = float((hi - lo).max())
    cx, cy = (lo + hi) / 2
    cy -= lift * face
    side = scale * face
    return CropBox(float(cx - side / 2), float(cy - side / 2), float(side))


def cut(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """The crop uint8 [size,size,3] of `image` (uint8 [H,W,3]); outside is mirrored."""
    interp = cv2.INTER_AREA if box.side > size else cv2.INTER_LINEAR
    return cv2.warpAffine(image, box.affine(size), (size, size), flags=interp,
                          borderMode=cv2.BORDER_REFLECT_101)


def feather_mask(size: int, feather: float = FEATHER) -> np.ndarray:
    """float32 [size,size] 1 inside, smoothly 0 at the square's edge."""
    ramp = np.clip(np.minimum(np.arange(size), np.arange(size)[::-1]) / (feather * size), 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    return np.outer(ramp, ramp).astype(np.float32)


@dataclass(frozen=True)
class PasteBack:
    """Precomputed placement of a crop into a portrait of a given shape."""

    box: CropBox
    region: tuple[int, int, int, int]     # x0, y0, x1, y1 in the portrait, clipped
    mask: np.ndarray                      # float32 [h,w] blend weights over the region
    rest: np.ndarray                      # float32 [h,w], 1 - mask
    inner: tuple[int, int, int, int]      # x0, y0, x1, y1 in the region where the crop is copied, not blended

    @classmethod
    def plan(cls, box: CropBox, portrait_shape: tuple[int, ...]) -> "PasteBack":
        h, w = portrait_shape[:2]
        x0, y0 = max(0, int(np.floor(box.x0))), max(0, int(np.floor(box.y0)))
        x1 = min(w, int(np.ceil(box.x0 + box.side)))
        y1 = min(h, int(np.ceil(box.y0 + box.side)))
        mask = _warp_to_region(feather_mask(256), box, (x0, y0, x1, y1), 256).reshape(y1 - y0, x1 - x0)
        return cls(box, (x0, y0, x1, y1), mask, 1 - mask, _inner_rectangle(mask >= 0.999))

    def visible(self) -> tuple[float, float, float, float] | None:
        """The part of the crop that lands in the portrait, (x0, y0, x1, y1) as shares of the crop's side;
        None when all of it does."""
        b = self.box
        x0, y0, x1, y1 = ((v - o) / b.side for v, o in zip(self.region, (b.x0, b.y0, b.x0, b.y0)))
        return None if x0 <= 0 and y0 <= 0 and x1 >= 1 and y1 >= 1 else (x0, y0, x1, y1)

    def apply(self, portrait: np.ndarray, crop: np.ndarray) -> np.ndarray:
        """Portrait uint8 [H,W,3] with `crop` uint8 [S,S,3] blended in (new array)."""
        x0, y0, x1, y1 = self.region
        out = portrait.copy()
        placed = _warp_to_region(crop, self.box, self.region, crop.shape[0])
        region = out[y0:y1, x0:x1]
        ix0, iy0, ix1, iy1 = self.inner
        region[iy0:iy1, ix0:ix1] = placed[iy0:iy1, ix0:ix1]          # the inside: a plain copy
        h, w = region.shape[:2]
        for ys, xs in ((slice(0, iy0), slice(0, w)), (slice(iy1, h), slice(0, w)),  # the feathered edges
                       (slice(iy0, iy1), slice(0, ix0)), (slice(iy0, iy1), slice(ix1, w))):
            if region[ys, xs].size:
                region[ys, xs] = cv2.blendLinear(placed[ys, xs], region[ys, xs], self.mask[ys, xs], self.rest[ys, xs])
        return out


def _inner_rectangle(full: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a rectangle where the bool mask [h,w] is all true, grown from its middle
    ((0, 0, 0, 0) when the middle is not)."""
    h, w = full.shape
    cy, cx = h // 2, w // 2
    if not full[cy, cx]:
        return 0, 0, 0, 0
    row, col = full[cy], full[:, cx]
    x0 = cx - int(np.argmin(row[cx::-1])) + 1 if not row[:cx + 1].all() else 0
    x1 = cx + int(np.argmin(row[cx:])) if not row[cx:].all() else w
    y0 = cy - int(np.argmin(col[cy::-1])) + 1 if not col[:cy + 1].all() else 0
    y1 = cy + int(np.argmin(col[cy:])) if not col[cy:].all() else h
    while not full[y0:y1, x0:x1].all():   # the mask is a feathered square, so this rarely shrinks at all
        x0, y0, x1, y1 = x0 + 1, y0 + 1, x1 - 1, y1 - 1
    return x0, y0, max(x0, x1), max(y0, y1)


def _warp_to_region(crop: np.ndarray, box: CropBox, region: tuple[int, int, int, int],
                    size: int) -> np.ndarray:
    """Resample a crop [size,size,C] onto the portrait region (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = region
    k = box.side / size
    affine = np.array([[k, 0, box.x0 - x0], [0, k, box.y0 - y0]], np.float64)
    # Same convention as `CropBox.affine`: crop pixel i sits at portrait x0 + i*k.
    interp = cv2.INTER_LINEAR if k >= 1 else cv2.INTER_AREA
    return cv2.warpAffine(crop, affine, (x1 - x0, y1 - y0), flags=interp,
                          borderMode=cv2.BORDER_REPLICATE)
