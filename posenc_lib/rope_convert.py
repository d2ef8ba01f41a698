"""Conventions of other RoPE code bases, mapped onto the library's.

Three things differ between implementations that compute the same rotation:

- **The pair layout.** The library default is ``"half"`` (pairs ``(k, k + d/2)``, as in
  Hugging Face Llama and GPT-NeoX). Meta's reference Llama, torchtune and
  rotary-embedding-torch pair neighbours ``(2k, 2k + 1)`` (``"interleaved"``). A checkpoint
  trained with interleaved pairs is imported either with ``layout="interleaved"``, or by
  permuting the rows of its q and k projections once per head
  (:func:`permute_qk_weight`) and keeping ``"half"``: the attention scores are identical.
- **The name of the base.** ``base`` here; ``rope_theta`` in Hugging Face configs (in
  ``rope_parameters`` since transformers 5, at the top of the config before); ``theta`` in
  torchtune and Meta's code; ``base`` in GPT-NeoX and rotary-embedding-torch (``theta``
  in its constructor).
- **The tables.** Hugging Face passes ``cos``/``sin`` as ``(batch, seq, head_dim)`` with
  both halves repeated; the library uses ``(seq, head_dim / 2)``
  (:func:`cos_sin_from_hf`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ._validation import check_choice, check_int, check_tensor

__all__ = ["rope_permutation", "permute_qk_weight", "cos_sin_from_hf", "rope_kwargs_from_hf"]


def rope_permutation(
    head_dim: int, *, inverse: bool = False, device: torch.device | str | None = None
) -> torch.Tensor:
    """Feature permutation from the interleaved to the half layout.

    ``perm = [0, 2, 4, .., 1, 3, 5, ..]``, so ``x[..., perm]`` moves pair ``(2k, 2k+1)`` to
    ``(k, k + d/2)`` and
    ``apply_rope(x[..., perm], c, s, layout="half") == apply_rope(x, c, s,
    layout="interleaved")[..., perm]``. ``inverse=True`` gives the inverse permutation
    (half -> interleaved).
    """
    check_int("head_dim", head_dim, minimum=2, even=True)
    perm = torch.cat((torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)))
    if inverse:
        perm = torch.argsort(perm)
    return perm.to(device)


def permute_qk_weight(
    weight: torch.Tensor, num_heads: int, *, to: str = "half", rotary_dim: int | None = None
) -> torch.Tensor:
    """Reorder the output rows of a q or k projection for the other RoPE layout.

    ``weight`` is ``(num_heads * head_dim, in_features)`` (an ``nn.Linear`` weight; a bias
    ``(num_heads * head_dim,)`` works too). Within each head the first ``rotary_dim``
    rows are permuted by :func:`rope_permutation` (``to="half"``: interleaved checkpoint
    -> half layout, the permutation of Hugging Face's Llama conversion script) or by its
    inverse (``to="interleaved"``). Queries and keys permuted alike give the same scores
    ``q . k``, since a permutation is orthogonal.
    """
    check_tensor("weight", weight)
    check_int("num_heads", num_heads, minimum=1)
    check_choice("to", to, ("half", "interleaved"))
    if weight.ndim not in (1, 2) or weight.shape[0] % num_heads:
        raise ValueError(
            f"weight must be (num_heads * head_dim, ...) with num_heads = {num_heads}, got "
            f"shape {tuple(weight.shape)}"
        )
    head_dim = weight.shape[0] // num_heads
    rotary_dim = head_dim if rotary_dim is None else rotary_dim
    check_int("rotary_dim", rotary_dim, minimum=2, even=True)
    if rotary_dim > head_dim:
        raise ValueError(f"rotary_dim must be <= head_dim = {head_dim}, got {rotary_dim}")
    perm = torch.arange(head_dim)
    perm[:rotary_dim] = rope_permutation(rotary_dim, inverse=to == "interleaved")
    rows = (torch.arange(num_heads)[:, None] * head_dim + perm).flatten()
    return weight[rows.to(weight.device)]


def cos_sin_from_hf(cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hugging Face's ``(batch, seq, head_dim)`` tables to the library's ``(batch, 1, seq,
    head_dim // 2)`` (one row for every head of a ``(batch, heads, seq, head_dim)`` tensor).

    Hugging Face repeats the angles over both halves (``cat(freqs, freqs)``); the check
    that the halves agree catches tables of the interleaved layout
    (``repeat_interleave``), which this adapter does not take. A ``(seq, head_dim)``
    table is accepted too and gives ``(seq, head_dim // 2)``.
    """
    for name, t in (("cos", cos), ("sin", sin)):
        check_tensor(name, t, floating=True)
        if t.ndim not in (2, 3) or t.shape[-1] % 2:
            raise ValueError(
                f"{name} must be (batch, seq, head_dim) or (seq, head_dim) with head_dim "
                f"even, got shape {tuple(t.shape)}"
            )
        n = t.shape[-1] // 2
        if not torch.equal(t[..., :n], t[..., n:]):
            raise ValueError(f"{name}'s two halves differ: not a Hugging Face (half layout) table")
    if cos.shape != sin.shape:
        raise ValueError(f"cos and sin shapes differ: {tuple(cos.shape)}, {tuple(sin.shape)}")
    n = cos.shape[-1] // 2
    cos, sin = cos[..., :n], sin[..., :n]
    if cos.ndim == 3:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return cos, sin


def rope_kwargs_from_hf(
    rope_parameters: Mapping, *, max_position_embeddings: int | None = None
) -> dict:
    """Keyword arguments of :class:`~posenc_lib.rope_module.RotaryEmbedding` from a
    Hugging Face ``rope_parameters`` dict (transformers >= 5; ``rope_scaling`` plus
    ``rope_theta`` before).

    ``rope_theta`` becomes ``base``; the rest becomes ``scaling`` (``None`` for
    ``"default"``). ``partial_rotary_factor`` is returned as ``rotary_fraction`` for the
    caller (``rotary_dim = int(head_dim * rotary_fraction)``, as in Hugging Face).
    Hugging Face's conventions that use the config's ``max_position_embeddings`` are
    reproduced: ``"dynamic"`` scales relative to it (Hugging Face ignores any
    ``original_max_position_embeddings`` there), and ``"longrope"`` without ``factor``
    uses ``max_position_embeddings / original_max_position_embeddings``.

    Returns:
        ``{"base": float, "scaling": dict | None, "rotary_fraction": float}``.
    """
    if not isinstance(rope_parameters, Mapping):
        raise TypeError(f"rope_parameters must be a dict, got {type(rope_parameters).__name__}")
    params = dict(rope_parameters)
    if "rope_theta" not in params:
        raise ValueError("rope_parameters must hold 'rope_theta' (the frequency base)")
    base = params.pop("rope_theta")
    fraction = params.pop("partial_rotary_factor", 1.0)
    if max_position_embeddings is not None:
        check_int("max_position_embeddings", max_position_embeddings, minimum=1)
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type == "default":
        return {"base": base, "scaling": None, "rotary_fraction": fraction}
    if rope_type == "dynamic":
        if max_position_embeddings is None:
            raise ValueError("rope_type 'dynamic' needs max_position_embeddings (HF convention)")
        params["original_max_position_embeddings"] = max_position_embeddings
    if rope_type == "longrope" and params.get("factor") is None:
        orig = params.get("original_max_position_embeddings")
        if max_position_embeddings is not None and orig:
            params["factor"] = max_position_embeddings / orig
    return {"base": base, "scaling": params, "rotary_fraction": fraction}
