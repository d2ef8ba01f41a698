"""Learned absolute position embeddings (BERT, Devlin et al., 2019; GPT-2, Radford et al., 2019).

Each position ``p < max_len`` owns a trainable vector ``E[p]`` (a row of an
``nn.Embedding``), added to the token embedding: ``y_t = x_t + E[offset + t]``. Unlike the
sinusoidal table (Vaswani et al., 2017) the table is a parameter: positions never seen in
training keep their initial random vectors, and positions ``>= max_len`` have no vector at
all, so a longer input is an error, never a silent wrap-around.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validation import check_init_std, check_int, check_tensor

__all__ = ["LearnedPositionalEmbedding"]


class LearnedPositionalEmbedding(nn.Module):
    """Trainable position table ``E`` of shape ``(max_len, d_model)``, added to the input.

    ``forward(x, offset=o)`` returns ``x + E[o : o + seq]``; with a KV cache, ``offset`` is
    the position of the first token of ``x``.

    Args:
        max_len: number of positions with a vector (BERT: 512, GPT-2: 1024), >= 1.
        d_model: feature dimension, >= 1.
        init_std: standard deviation of the normal initialisation (BERT: 0.02,
            truncated; the position table of OpenAI's GPT-2 code: 0.01).

    Shapes:
        ``x``: ``(batch, seq, d_model)``; output: same shape and dtype as ``x``.

    Raises:
        ValueError: in ``forward``, when ``offset + seq > max_len``.
    """

    def __init__(self, max_len: int, d_model: int, *, init_std: float = 0.02) -> None:
        super().__init__()
        check_int("max_len", max_len, minimum=1)
        check_int("d_model", d_model, minimum=1)
        self.max_len, self.d_model = max_len, d_model
        self.init_std = check_init_std(init_std)
        self.embedding = nn.Embedding(max_len, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every row from ``N(0, init_std^2)``."""
        nn.init.normal_(self.embedding.weight, mean=0.0, std=self.init_std)

    @property
    def table(self) -> torch.Tensor:
        """The ``(max_len, d_model)`` table (the embedding weight, a parameter)."""
        return self.embedding.weight

    def positions_table(
        self, seq_len: int, *, offset: int = 0, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Rows ``offset .. offset + seq_len - 1`` of the table, shape ``(seq_len, d_model)``."""
        check_int("seq_len", seq_len, minimum=0)
        check_int("offset", offset, minimum=0)
        if offset + seq_len > self.max_len:
            raise ValueError(
                f"learned table has no vector for position {offset + seq_len - 1}: sequence "
                f"length {seq_len} + offset {offset} = {offset + seq_len} > max_len "
                f"{self.max_len} (positions 0..{self.max_len - 1} only)"
            )
        device = self.embedding.weight.device if device is None else device
        positions = torch.arange(offset, offset + seq_len, device=device)
        return self.embedding(positions)

    def forward(self, x: torch.Tensor, *, offset: int = 0) -> torch.Tensor:
        check_tensor("x", x, ndim=3, floating=True)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have last dimension d_model={self.d_model}, got {x.shape}")
        pe = self.positions_table(x.shape[1], offset=offset)
        return x + pe.to(device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}, init_std={self.init_std:g}"
