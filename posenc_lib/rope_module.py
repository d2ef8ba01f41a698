"""The RoPE module: frequencies, cached float32 tables and the fused rotation.

:class:`RotaryEmbedding` keeps its frequencies and tables in float32 whatever the
module's dtype (``.half()``, ``.to(torch.bfloat16)``), since bf16 frequencies put
positions in the thousands off by whole radians. It rotates through
:func:`posenc_lib.rope_triton.apply_rope_fast`, so a model uses the fused Triton kernel on
a GPU and the one-pass eager code elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ._validation import as_positions_checked, check_choice, check_int, check_tensor
from .rope import ROPE_LAYOUTS, rope_cos_sin, rope_inv_freq
from .rope_convert import rope_kwargs_from_hf
from .rope_scaling import LENGTH_DEPENDENT, check_base, normalize_rope_scaling
from .rope_triton import apply_rope_fast

__all__ = ["RotaryEmbedding"]


class RotaryEmbedding(nn.Module):
    """RoPE (Su et al., 2021) for queries and keys ``(batch, heads, seq, head_dim)``.

    ``forward(q, k)`` returns ``(R_m q_m, R_m k_m)`` for each position ``m``: pair ``k`` of
    the first ``rotary_dim`` features turns by ``m * theta_k`` with
    ``theta_k = base ** (-2k / rotary_dim)`` (or the frequencies of a ``scaling`` rule), so
    ``<R_m q, R_n k> = <q, R_{n-m} k>``. :meth:`rotate` rotates a single tensor.

    The pair layout defaults to ``"half"`` (Hugging Face Llama); checkpoints from Meta's
    reference code or torchtune pair neighbours: see :mod:`posenc_lib.rope_convert`.

    Frequencies and ``cos``/``sin`` tables are float32 whatever the module's dtype (a
    ``.to(torch.bfloat16)`` leaves them alone), cached per device; the rotation works in
    float32 and returns ``q``'s dtype. With ``"dynamic"`` or ``"longrope"`` scaling past
    ``original_max_position_embeddings``, each call computes only the positions it
    rotates, with the frequencies of the current length ``offset + seq``; so token-by-token
    decoding and a full pass differ from position 1 on (as in Hugging Face).

    Args:
        head_dim: features per head (even).
        base: frequency base (Hugging Face ``rope_theta``, torchtune ``theta``), > 1.
        scaling: ``None`` or a ``rope_scaling`` dict (:func:`~posenc_lib.rope.rope_inv_freq`).
        layout: ``"half"`` or ``"interleaved"``.
        rotary_dim: rotate only the first ``rotary_dim`` features (even, <= head_dim);
            default ``head_dim``. Frequencies use ``rotary_dim`` as ``d``.
        seq_dim: the sequence dimension of ``q``/``k``: -2 for ``(batch, heads, seq,
            head_dim)`` (default), -3 for ``(batch, seq, heads, head_dim)`` (torchtune,
            flash-attn).
    """

    def __init__(
        self,
        head_dim: int,
        *,
        base: float = 10_000.0,
        scaling: Mapping | None = None,
        layout: str = "half",
        rotary_dim: int | None = None,
        seq_dim: int = -2,
    ):
        super().__init__()
        self.head_dim = check_int("head_dim", head_dim, minimum=2, even=True)
        rotary_dim = head_dim if rotary_dim is None else rotary_dim
        self.rotary_dim = check_int("rotary_dim", rotary_dim, minimum=2, even=True)
        if rotary_dim > head_dim:
            raise ValueError(f"rotary_dim must be <= head_dim = {head_dim}, got {rotary_dim}")
        self.layout = check_choice("layout", layout, ROPE_LAYOUTS)
        self.seq_dim = check_choice("seq_dim", seq_dim, (-2, -3))
        self.base = check_base(base)
        self._cache: dict = {}
        self.register_buffer("inv_freq", torch.empty(rotary_dim // 2), persistent=False)
        self.set_scaling(scaling)

    @classmethod
    def from_hf(
        cls,
        head_dim: int,
        rope_parameters: Mapping,
        *,
        max_position_embeddings: int | None = None,
        **kwargs,
    ) -> RotaryEmbedding:
        """Build from a Hugging Face ``rope_parameters`` dict (with ``rope_theta``), following
        its conventions (:func:`~posenc_lib.rope_convert.rope_kwargs_from_hf`).
        ``kwargs`` go to the constructor (e.g. ``layout``, ``seq_dim``)."""
        kw = rope_kwargs_from_hf(rope_parameters, max_position_embeddings=max_position_embeddings)
        rotary_dim = int(head_dim * kw["rotary_fraction"])
        return cls(
            head_dim, base=kw["base"], scaling=kw["scaling"], rotary_dim=rotary_dim, **kwargs
        )

    def set_scaling(self, scaling: Mapping | None) -> None:
        """Switch the context-extension rule (``None`` for plain RoPE); clears the cache."""
        inv_freq, self.attention_scaling = rope_inv_freq(
            self.rotary_dim, base=self.base, scaling=scaling
        )
        self.scaling = normalize_rope_scaling(scaling)
        self.inv_freq = inv_freq.to(self.inv_freq.device)
        self._cache.clear()

    def _apply(self, fn, recurse=True):
        # .to(dtype) / .half() cast every floating buffer; the frequencies must stay
        # float32 (recomputed exactly, not cast back), and cached tables are dropped.
        super()._apply(fn, recurse)
        if self.inv_freq.dtype != torch.float32:
            inv_freq, _ = rope_inv_freq(self.rotary_dim, base=self.base, scaling=self.scaling)
            self.inv_freq = inv_freq.to(self.inv_freq.device)
        self._cache.clear()
        return self

    @property
    def _orig_len(self) -> int | None:
        """L0 of a rule whose frequencies depend on the length, else None."""
        if self.scaling is None or self.scaling["rope_type"] not in LENGTH_DEPENDENT:
            return None
        return self.scaling["original_max_position_embeddings"]

    def _freqs(self, seq_len: int | None) -> tuple[torch.Tensor, float]:
        if self._orig_len is None or seq_len is None or seq_len <= self._orig_len:
            return self.inv_freq, self.attention_scaling
        return rope_inv_freq(
            self.rotary_dim,
            base=self.base,
            scaling=self.scaling,
            seq_len=seq_len,
            device=self.inv_freq.device,
        )

    def cos_sin(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 tables for positions ``0 .. length-1`` (cached per device).

        For a length-dependent rule past its original length the tables are built for
        this length and not cached (the next length has other frequencies).
        """
        check_int("length", length, minimum=1)
        if self._orig_len is not None and length > self._orig_len:
            inv_freq, att = self._freqs(length)
            return rope_cos_sin(length, inv_freq, attention_scaling=att)
        key = (self.inv_freq.device, torch.float32)
        hit = self._cache.get(key)
        if hit is None or hit[0].shape[0] < length:
            if len(self._cache) >= 8:
                self._cache.clear()
            # grow geometrically so token-by-token decoding rebuilds the table O(log L) times
            size = length if hit is None else max(length, 2 * hit[0].shape[0])
            if self._orig_len is not None:
                size = min(size, self._orig_len)
            hit = rope_cos_sin(size, self.inv_freq, attention_scaling=self.attention_scaling)
            self._cache[key] = hit
        return hit[0][:length], hit[1][:length]

    def _tables(self, seq: int, positions, offset: int):
        if positions is None:
            end = offset + seq
            if self._orig_len is not None and end > self._orig_len:
                # only the rows asked for, with the frequencies of the current length
                inv_freq, att = self._freqs(end)
                pos = torch.arange(offset, end, device=self.inv_freq.device)
                return rope_cos_sin(pos, inv_freq, attention_scaling=att)
            cos, sin = self.cos_sin(end)
            return cos[offset:], sin[offset:]
        if offset:
            raise ValueError("give either positions or offset, not both")
        check_tensor("positions", positions)
        if positions.ndim not in (1, 2) or positions.shape[-1] != seq:
            raise ValueError(
                f"positions must be (seq,) or (batch, seq) with seq = {seq} (the size of "
                f"dim {self.seq_dim}), got shape {tuple(positions.shape)}"
            )
        flat = as_positions_checked(positions.reshape(-1), device=self.inv_freq.device)
        length = None
        if self._orig_len is not None:  # the current length decides the frequencies
            length = max(int(flat.max().ceil()) + 1, 1) if flat.numel() else 1
        inv_freq, att = self._freqs(length)
        cos, sin = rope_cos_sin(flat, inv_freq, attention_scaling=att)
        if positions.ndim == 2:  # (batch, seq, n): per-sequence tables
            cos = cos.reshape(positions.shape[0], seq, -1)
            sin = sin.reshape(positions.shape[0], seq, -1)
            if self.seq_dim == -2:  # one row for every head
                cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        return cos, sin

    def rotate(
        self, x: torch.Tensor, positions: torch.Tensor | None = None, *, offset: int = 0
    ) -> torch.Tensor:
        """Rotate one tensor ``x`` (queries or keys, any number of heads), laid out as the
        module's ``seq_dim`` says; positions as in :meth:`forward`."""
        check_tensor("x", x, ndim=4, floating=True)
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"x.shape[-1] must be head_dim = {self.head_dim}, got {x.shape[-1]}")
        offset = check_int("offset", offset, minimum=0)
        cos, sin = self._tables(x.shape[self.seq_dim], positions, offset)
        cos, sin = cos.to(x.device), sin.to(x.device)
        return apply_rope_fast(x, cos, sin, layout=self.layout, seq_dim=self.seq_dim)

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        positions: torch.Tensor | None = None,
        *,
        offset: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate ``q`` ``(batch, heads_q, seq, head_dim)`` and ``k`` ``(batch, heads_k, seq,
        head_dim)`` (with ``seq_dim=-3``: ``(batch, seq, heads, head_dim)``); positions
        default to ``offset .. offset + seq - 1`` (KV-cache decoding). ``positions`` may be
        ``(seq,)`` or per-sequence ``(batch, seq)``, real numbers (bool is rejected).
        """
        for name, t in (("q", q), ("k", k)):
            check_tensor(name, t, ndim=4, floating=True)
            if t.shape[-1] != self.head_dim:
                raise ValueError(
                    f"{name}.shape[-1] must be head_dim = {self.head_dim}, got {t.shape[-1]}"
                )
        sd = self.seq_dim
        if q.shape[0] != k.shape[0] or q.shape[sd] != k.shape[sd]:
            other = -3 if sd == -2 else -2
            raise ValueError(
                f"q and k must share batch and seq (dim {sd}), got {tuple(q.shape)} and "
                f"{tuple(k.shape)}; if seq is dim {other}, build the module with "
                f"seq_dim={other}"
            )
        offset = check_int("offset", offset, minimum=0)
        cos, sin = self._tables(q.shape[sd], positions, offset)
        cos, sin = cos.to(q.device), sin.to(q.device)
        return (
            apply_rope_fast(q, cos, sin, layout=self.layout, seq_dim=sd),
            apply_rope_fast(k, cos, sin, layout=self.layout, seq_dim=sd),
        )

    def extra_repr(self) -> str:
        return (
            f"head_dim={self.head_dim}, rotary_dim={self.rotary_dim}, base={self.base}, "
            f"layout={self.layout!r}, seq_dim={self.seq_dim}, scaling={self.scaling}"
        )
