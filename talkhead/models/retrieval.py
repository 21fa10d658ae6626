"""Codebook retrieval by attention (paper A): tokens ask the codebook, not an index classifier.

Each layer: self-attention among the tokens of the grid, then
cross-attention whose keys and values are the codebook's rows (projected to
the token width), then a convolutional feed-forward on the token grid, which
also gives the tokens their sense of position. The output is a continuous
mix of codebook entries, which the caller may then quantise.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ConvFeedForward(nn.Module):
    """1x1 up, depthwise 3x3 on the grid, 1x1 down."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.up = nn.Conv2d(dim, hidden, 1)
        self.spatial = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.down = nn.Conv2d(hidden, dim, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, side: int) -> torch.Tensor:
        """x: float [B,N,C] with N = side*side → float [B,N,C]."""
        b, n, c = x.shape
        grid = x.transpose(1, 2).reshape(b, c, side, n // side)                       # [B,C,side,side]
        out = self.down(self.act(self.spatial(self.act(self.up(grid)))))
        return out.flatten(2).transpose(1, 2)                                         # [B,N,C]


class RetrievalLayer(nn.Module):
    """Self-attention, cross-attention over codebook rows, convolutional feed-forward (pre-norm)."""

    def __init__(self, dim: int, code_dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, kdim=code_dim, vdim=code_dim, batch_first=True)
        self.code_norm = nn.LayerNorm(code_dim)
        self.ffn = ConvFeedForward(dim, 2 * dim)

    def forward(self, x: torch.Tensor, rows: torch.Tensor, side: int) -> torch.Tensor:
        """x: float [B,N,C] tokens; rows: float [K,code_dim] codebook rows → float [B,N,C]."""
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h, need_weights=False)[0]
        book = self.code_norm(rows)[None].expand(len(x), -1, -1)                      # [B,K,code_dim]
        x = x + self.cross_attn(self.norm2(x), book, book, need_weights=False)[0]
        return x + self.ffn(self.norm3(x), side)


class CodebookRetrieval(nn.Module):
    """A stack of retrieval layers, then a projection to the codebook's dimension."""

    def __init__(self, dim: int, code_dim: int, heads: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(RetrievalLayer(dim, code_dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.to_code = nn.Linear(dim, code_dim)

    def forward(self, tokens: torch.Tensor, rows: torch.Tensor, side: int) -> torch.Tensor:
        """tokens: float [B,side*side,dim]; rows: float [K,code_dim] → float [B,side*side,code_dim]."""
        for layer in self.layers:
            tokens = layer(tokens, rows, side)
        return self.to_code(self.norm(tokens))
