"""Vector quantiser: the codebook that motion and appearance tokens snap to.

A token z (dim D) is replaced by its nearest codebook row e_k; the forward
pass sees e_k, the backward pass copies the gradient straight to z
(straight-through estimator). Two losses teach the codebook (van den Oord et
al., VQ-VAE): ||sg(z) - e||^2 moves the rows towards the tokens that use them,
beta * ||z - sg(e)||^2 keeps the tokens committed to their rows. Rows nobody
has used for a while are restarted on random tokens of the current batch, so
a short training run on a small set does not end with most codes dead.

Coarse scales of the network may use only a leading subset of the rows
(`limit`), so they share the first, most general codes with the fine scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Quantized:
    """tokens: float [B,N,D], the quantised tokens (gradient flows to the input);
    codes: long [B,N], the row each token took; loss: scalar, codebook + commitment."""

    tokens: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor


class VectorQuantizer(nn.Module):
    """A codebook of `codes` rows of dimension `dim`."""

    def __init__(self, codes: int, dim: int, beta: float = 0.25, restart_after: int = 200) -> None:
        super().__init__()
        self.beta = beta
        self.restart_after = restart_after
        self.embedding = nn.Parameter(torch.randn(codes, dim) / dim ** 0.5)
        # steps since each row was last chosen (training only; saved so a resumed run goes on alike)
        self.register_buffer("idle", torch.zeros(codes, dtype=torch.long))

    @property
    def codes(self) -> int:
        return self.embedding.shape[0]

    def rows(self, limit: int | None = None) -> torch.Tensor:
        """float [K,D]: the first `limit` rows (all by default)."""
        return self.embedding if limit is None else self.embedding[:limit]

    def forward(self, z: torch.Tensor, limit: int | None = None) -> Quantized:
        """z: float [B,N,D] → the nearest of the first `limit` rows per token."""
        rows = self.rows(limit)
        flat = z.reshape(-1, z.shape[-1])                                            # [B*N,D]
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ rows.t() + rows.pow(2).sum(1)[None]
        codes = dist.argmin(1)                                                       # [B*N]
        chosen = rows[codes].view_as(z)
        loss = F.mse_loss(chosen, z.detach()) + self.beta * F.mse_loss(z, chosen.detach())
        if self.training:
            self._track_usage(codes, flat, len(rows))
        tokens = z + (chosen - z).detach()                                           # straight-through
        return Quantized(tokens, codes.view(z.shape[:-1]), loss)

    @torch.no_grad()
    def _track_usage(self, codes: torch.Tensor, flat: torch.Tensor, limit: int) -> None:
        used = torch.zeros(self.codes, dtype=torch.bool, device=codes.device)
        used[codes] = True
        self.idle[:limit] += 1
        self.idle[used] = 0
        dead = torch.nonzero(self.idle[:limit] > self.restart_after).flatten()
        if len(dead):
            pick = torch.randint(0, len(flat), (len(dead),), device=flat.device)
            self.embedding.data[dead] = flat[pick].detach() + 0.01 * torch.randn_like(flat[pick])
            self.idle[dead] = 0

    @staticmethod
    def usage(codes: torch.Tensor, limit: int) -> float:
        """Share of the first `limit` rows that `codes` (long [...]) use."""
        return float(torch.unique(codes).numel()) / limit
