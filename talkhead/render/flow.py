"""Dense motion from sparse landmarks: a thin-plate spline sampling grid.

For every pixel of the target frame the grid says where to read the source
image (backward warping), so several target points may read one source point
(a mouth opening from closed lips) without tearing. Control points sit at the
target landmarks and carry the matching source positions; anchors on the crop
border carry themselves, so the border stays fixed and hair, ears and neck
follow the face smoothly in between.

Coordinates are normalised like `torch.nn.functional.grid_sample` with
align_corners=False: x and y in [-1, 1] over the crop, pixel i of S at
(2i + 1) / S - 1.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ANCHORS_PER_SIDE = 9


def pixels_to_unit(points: torch.Tensor, size: int) -> torch.Tensor:
    """Crop pixel coordinates (integer = pixel centre) → [-1, 1]."""
    return (2 * points + 1) / size - 1


def border_anchors(device: torch.device, per_side: int = ANCHORS_PER_SIDE) -> torch.Tensor:
    """float32 [4*(per_side-1), 2] points evenly spaced on the square [-1,1]^2's edge."""
    t = torch.linspace(-1, 1, per_side, device=device)[:-1]
    one = torch.ones_like(t)
    return torch.cat([
        torch.stack([t, -one], 1), torch.stack([one, t], 1),
        torch.stack([-t, one], 1), torch.stack([-one, -t], 1),
    ])


RINGS = ((1.2, 1.0), (1.6, 0.5))  # (radius over the face oval's, share of its motion)


def face_rings(src_oval: torch.Tensor, tgt_oval: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Extra control points around the face, outside its oval.

    src_oval: [1,K,2], tgt_oval: [B,K,2] face-oval points in [-1,1].
    Returns (sources [B,R,2], targets [B,R,2]). Each ring point copies a share
    of its oval point's motion, so the spline does not overshoot beyond the
    face (a turning head would otherwise bulge into the background) and the
    motion fades out smoothly towards the fixed border.
    """
    src_oval, tgt_oval = src_oval[:, ::2], tgt_oval[:, ::2]  # every other point is plenty out there
    centre = src_oval.mean(1, keepdim=True)
    moved = tgt_oval - src_oval
    srcs, tgts = [], []
    for radius, share in RINGS:
        ring = centre + radius * (src_oval - centre)
        srcs.append(ring.expand(tgt_oval.shape[0], -1, -1))
        tgts.append(ring + share * moved)
    return torch.cat(srcs, 1), torch.cat(tgts, 1)


def hidden_points(points: np.ndarray, radius: float, depth: float) -> np.ndarray:
    """bool [B,N]: points [B,N,3] (x, y, z away) with another point in front of them.

    A point is hidden when some other point lies within `radius` of it in the
    image and more than `depth` closer to the camera.
    """
    x, y, z = (points[..., k].astype(np.float32) for k in range(3))
    front = z[:, None, :] < z[:, :, None] - depth                           # [B,N,N]: j in front of i
    dx, dy = x[:, :, None] - x[:, None], y[:, :, None] - y[:, None]
    near = dx * dx + dy * dy < np.float32(radius) ** 2                     # (squares: no square roots)
    return (near & front).any(-1)


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """TPS radial basis U = r² log r² between a [B,P,2] and b [B,Q,2] → [B,P,Q]."""
    sq = a.square().sum(-1, keepdim=True) + b.square().sum(-1)[:, None]
    d2 = torch.baddbmm(sq, a, b.transpose(1, 2), alpha=-2).clamp_min_(0)   # |a|² + |b|² - 2ab
    # d2 log d2, taken as 0 at d2 = 0 (the tiny floor makes log finite there); faster than torch.xlogy
    return d2.clamp_min(torch.finfo(d2.dtype).tiny).log_().mul_(d2)


def tps_grid(targets: torch.Tensor, sources: torch.Tensor, grid: int, regularise: float = 1e-4,
             weights: torch.Tensor | None = None, window: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """Backward sampling grid float32 [B,grid,grid,2] from matched points.

    targets: float32 [B,N,2] control points in the target frame, in [-1,1].
    sources: float32 [B,N,2] where each target point reads the source, in [-1,1].
    The spline passes (almost, by `regularise`) through every pair and through
    the fixed border anchors, and bends as little as possible elsewhere.
    weights: optional float [B,N] in 0..1; a pair with weight 0 is ignored
    (its equation is relaxed), e.g. a landmark hidden behind the turned face.
    window: optionally (x0, y0, x1, y1), grid points: the spline is evaluated there only (evaluating it
    is most of the cost), the rest of the grid is left as the identity.
    """
    b, device = targets.shape[0], targets.device
    anchors = border_anchors(device)[None].expand(b, -1, -1)
    ctrl = torch.cat([targets, anchors], 1).double()                      # [B,M,2]
    vals = torch.cat([sources, anchors], 1).double()                      # [B,M,2]
    m = ctrl.shape[1]
    ones = torch.ones(b, m, 1, dtype=ctrl.dtype, device=device)
    p = torch.cat([ones, ctrl], 2)                                        # [B,M,3]
    relax = torch.full((b, m), regularise, dtype=ctrl.dtype, device=device)
    if weights is not None:
        relax[:, :weights.shape[1]] += 1e3 * (1 - weights.double())
    k = _kernel(ctrl, ctrl) + torch.diag_embed(relax)
    top = torch.cat([k, p], 2)                                            # [B,M,M+3]
    bottom = torch.cat([p.transpose(1, 2), torch.zeros(b, 3, 3, dtype=ctrl.dtype, device=device)], 2)
    system = torch.cat([top, bottom], 1)                                  # [B,M+3,M+3]
    rhs = torch.cat([vals - ctrl, torch.zeros(b, 3, 2, dtype=ctrl.dtype, device=device)], 1)
    # numpy's LAPACK: torch's batched MKL solve fails ("DLASWP") with 2+ threads.
    coef = np.linalg.solve(system.cpu().numpy(), rhs.cpu().numpy())       # [B,M+3,2] displacement spline
    coef = torch.from_numpy(coef).float().to(device)
    x0, y0, x1, y1 = window or (0, 0, grid, grid)
    identity = identity_grid(grid, device)
    pts = identity[:, y0:y1, x0:x1].reshape(1, -1, 2).expand(b, -1, -1)  # [B,G,2]
    u = _kernel(pts, ctrl.float())                                        # [B,G,M]
    disp = u @ coef[:, :m] + coef[:, m:m + 1] + pts @ coef[:, m + 1:]     # [B,G,2]
    inside = (pts + disp).reshape(b, y1 - y0, x1 - x0, 2)
    if window is None:
        return inside
    out = identity.expand(b, -1, -1, -1).clone()
    out[:, y0:y1, x0:x1] = inside
    return out


@functools.lru_cache(maxsize=8)
def identity_grid(size: int, device: torch.device) -> torch.Tensor:
    """float32 [1,size,size,2]: every pixel centre's own position in [-1,1] (cached; do not modify)."""
    axis = (2 * torch.arange(size, device=device, dtype=torch.float32) + 1) / size - 1
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx, gy], -1)[None]


def upsample_grid(coarse: torch.Tensor, size: int) -> torch.Tensor:
    """[B,g,g,2] sampling grid → [B,size,size,2].

    The displacement (not the absolute position) is interpolated, so the
    identity stays exact up to the edges.
    """
    g = coarse.shape[1]
    if g == size:
        return coarse
    disp = coarse - identity_grid(g, coarse.device)
    if disp.device.type == "cpu" and not disp.requires_grad:
        # OpenCV's bilinear resize uses the same pixel-centre convention as align_corners=False,
        # and on a CPU it is several times faster than torch's on this [B,g,g,2] layout.
        disp = disp.contiguous().numpy()
        up = torch.from_numpy(np.stack([cv2.resize(d, (size, size), interpolation=cv2.INTER_LINEAR) for d in disp]))
    else:
        up = F.interpolate(disp.permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                           align_corners=False).permute(0, 2, 3, 1).contiguous()
    return up.add_(identity_grid(size, coarse.device))


def warp(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample image [1 or B,C,H,W] at grid [B,H,W,2] → [B,C,H,W] (bilinear, border clamp)."""
    if image.shape[0] != grid.shape[0]:
        image = image.expand(grid.shape[0], -1, -1, -1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
