"""Positions beyond a 1-D sequence: image patches (2-D) and mixed text/image/video (3-D).

- **2-D sinusoidal table** (the "sincos 2-D" of MAE, He et al., 2022, used by many ViTs
  instead of the learned table of Dosovitskiy et al., 2021): half the features encode the
  patch row, the other half the patch column, each with the 1-D table of Vaswani et al.
- **Table interpolation** (Dosovitskiy et al., 2021; Touvron et al., 2021, DeiT): a
  ``(h*w, d)`` learned table is seen as a ``d``-channel ``h x w`` image and resized when
  the image resolution (so the patch grid) changes at fine-tuning time.
- **Axial 2-D RoPE** (Heo et al., 2024, "Rotary Position Embedding for Vision
  Transformer"): half the frequency pairs rotate with the row, half with the column, so
  an attention score depends on the 2-D offset ``(dy, dx)`` only.
- **M-RoPE** (Wang et al., 2024, Qwen2-VL): every token carries three ids
  ``(t, h, w)``; the frequency pairs are split into three sections rotated by ``t``,
  ``h`` and ``w``. Text tokens get ``t = h = w``, which makes M-RoPE equal to 1-D RoPE.

The frequencies and the rotation come from :mod:`posenc_lib.rope`
(``rope_inv_freq``, ``rope_cos_sin``, ``apply_rope``); this module only decides which
position drives which frequency pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._validation import check_choice, check_float_dtype, check_int, check_tensor
from .rope import rope_cos_sin, rope_inv_freq
from .sinusoidal import sinusoidal_encoding

__all__ = [
    "patch_positions",
    "sinusoidal_encoding_2d",
    "interpolate_position_table",
    "rope_cos_sin_2d",
    "axial_rope_cos_sin",
    "mrope_position_ids",
    "mrope_cos_sin",
    "QWEN2VL_MROPE_SECTIONS",
]

#: ``mrope_section`` of Qwen2-VL (head_dim 128 = 64 frequency pairs: 16 for time,
#: 24 for height, 24 for width).
QWEN2VL_MROPE_SECTIONS = (16, 24, 24)

INTERPOLATION_MODES = ("nearest", "bilinear", "bicubic")


def patch_positions(height: int, width: int, *, device=None) -> torch.Tensor:
    """(row, column) of every patch of a ``height x width`` grid, in raster order.

    Patch ``n`` (the ``n``-th token after the patch embedding, which flattens the grid row
    by row) sits at row ``n // width`` and column ``n % width``.

    Args:
        height: number of patch rows, >= 1.
        width: number of patch columns, >= 1.
        device: device of the result.

    Returns:
        Long tensor of shape ``(height * width, 2)``: column 0 the row, column 1 the column.
    """
    check_int("height", height, minimum=1)
    check_int("width", width, minimum=1)
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    grid = torch.meshgrid(rows, cols, indexing="ij")
    return torch.stack(grid, dim=-1).reshape(height * width, 2)


def _check_positions_2d(positions_2d) -> torch.Tensor:
    check_tensor("positions_2d", positions_2d, ndim=2)
    if positions_2d.shape[1] != 2:
        raise ValueError(
            "positions_2d must have shape (n, 2) (row, column), "
            f"got shape {tuple(positions_2d.shape)}"
        )
    if positions_2d.is_complex():
        raise TypeError(f"positions_2d must be real, got dtype {positions_2d.dtype}")
    if positions_2d.is_floating_point() and not torch.isfinite(positions_2d).all():
        raise ValueError("positions_2d must be finite (no nan or inf)")
    return positions_2d.float()


def sinusoidal_encoding_2d(
    height: int,
    width: int,
    d_model: int,
    *,
    base: float = 10_000.0,
    layout: str = "interleaved",
    dtype: torch.dtype = torch.float32,
    device=None,
) -> torch.Tensor:
    """2-D sinusoidal table: 1-D table of the row, then 1-D table of the column.

    For the patch at row ``y`` and column ``x``,

    ``P[(y, x)] = concat(S_{d/2}(y), S_{d/2}(x))``,

    where ``S_{d/2}`` is the sinusoidal table of Vaswani et al. (2017) with ``d/2``
    features (:func:`~posenc_lib.sinusoidal.sinusoidal_encoding`). Hence
    ``<P(y, x), P(y', x')> = sum_i cos((y'-y) w_i) + sum_i cos((x'-x) w_i)``, a function
    of the offset ``(dy, dx)`` only. MAE (He et al., 2022) uses the same construction with
    the ``"concat"`` layout and the column half first.

    Args:
        height: number of patch rows, >= 1.
        width: number of patch columns, >= 1.
        d_model: feature dimension, divisible by 4 (two halves of even size), >= 4.
        base: frequency base, finite and > 0.
        layout: layout of each 1-D half, ``"interleaved"`` or ``"concat"``.
        dtype: dtype of the result (computed in float32, cast at the end).
        device: device of the result.

    Returns:
        Tensor of shape ``(height * width, d_model)``, rows in raster order
        (:func:`patch_positions`).
    """
    check_int("height", height, minimum=1)
    check_int("width", width, minimum=1)
    check_int("d_model", d_model, minimum=4)
    if d_model % 4:
        raise ValueError(f"d_model must be divisible by 4 (row and column halves), got {d_model}")
    half = d_model // 2
    kwargs = dict(base=base, layout=layout, dtype=dtype, device=device)
    rows = sinusoidal_encoding(height, half, **kwargs)  # (h, d/2)
    cols = sinusoidal_encoding(width, half, **kwargs)  # (w, d/2)
    table = torch.cat(
        (
            rows[:, None, :].expand(height, width, half),
            cols[None, :, :].expand(height, width, half),
        ),
        dim=-1,
    )
    return table.reshape(height * width, d_model)


def interpolate_position_table(
    table: torch.Tensor,
    old_hw: tuple[int, int],
    new_hw: tuple[int, int],
    *,
    mode: str = "bicubic",
    num_prefix_tokens: int = 0,
    align_corners: bool = False,
) -> torch.Tensor:
    """Resize a ViT position table to a new patch grid (Dosovitskiy et al., 2021, Sec. 3.2).

    The ``old_h * old_w`` patch rows of ``table`` are reshaped to a ``d``-channel image
    ``(d, old_h, old_w)``, resized with :func:`torch.nn.functional.interpolate` to
    ``(d, new_h, new_w)`` and flattened back in raster order. The first
    ``num_prefix_tokens`` rows (a class token, register tokens) have no grid position and
    are kept unchanged. DeiT (Touvron et al., 2021) fine-tunes at 384 px this way with
    ``mode="bicubic"``, ``align_corners=False`` (the defaults). With
    ``align_corners=True`` and ``new = k (old - 1) + 1`` the old grid points are sampled
    exactly, so the old table reappears at every ``k``-th row and column.

    Args:
        table: ``(num_prefix_tokens + old_h * old_w, d)`` floating tensor.
        old_hw: ``(old_h, old_w)``, the patch grid ``table`` was made for, each >= 1.
        new_hw: ``(new_h, new_w)``, the target patch grid, each >= 1.
        mode: ``"bicubic"`` (default), ``"bilinear"`` or ``"nearest"``.
        num_prefix_tokens: rows at the start of ``table`` without a grid position, >= 0.
        align_corners: passed to ``F.interpolate`` (ignored for ``"nearest"``).

    Returns:
        ``(num_prefix_tokens + new_h * new_w, d)`` tensor, dtype and device of ``table``
        (the resize runs in float32).
    """
    check_tensor("table", table, ndim=2, floating=True)
    check_choice("mode", mode, INTERPOLATION_MODES)
    check_int("num_prefix_tokens", num_prefix_tokens, minimum=0)
    sizes = []
    for name, hw in (("old_hw", old_hw), ("new_hw", new_hw)):
        if not isinstance(hw, Sequence) or len(hw) != 2:
            raise TypeError(f"{name} must be a pair (height, width) of ints, got {hw!r}")
        sizes.append(
            (check_int(f"{name}[0]", hw[0], minimum=1), check_int(f"{name}[1]", hw[1], minimum=1))
        )
    (old_h, old_w), (new_h, new_w) = sizes
    expected = num_prefix_tokens + old_h * old_w
    if table.shape[0] != expected:
        raise ValueError(
            f"table must have num_prefix_tokens + old_h * old_w = {num_prefix_tokens} + "
            f"{old_h} * {old_w} = {expected} rows, got {table.shape[0]}"
        )
    prefix, grid = table[:num_prefix_tokens], table[num_prefix_tokens:]
    d = table.shape[1]
    image = grid.float().reshape(old_h, old_w, d).permute(2, 0, 1)[None]  # (1, d, h, w)
    options = {} if mode == "nearest" else {"align_corners": align_corners}
    resized = F.interpolate(image, size=(new_h, new_w), mode=mode, **options)
    new_grid = resized[0].permute(1, 2, 0).reshape(new_h * new_w, d)
    return torch.cat((prefix, new_grid.to(table.dtype)), dim=0)


def rope_cos_sin_2d(
    positions_2d: torch.Tensor,
    head_dim: int,
    *,
    base: float = 100.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial 2-D RoPE angles (Heo et al., 2024): pairs ``0 .. D/4-1`` follow the row,
    pairs ``D/4 .. D/2-1`` follow the column.

    With ``D = head_dim`` and ``w_k = base**(-4k / D)`` for ``k = 0 .. D/4 - 1`` (the 1-D
    RoPE frequencies of a ``D/2``-dimensional head), a token at ``(y, x)`` gets the angles

    ``theta = concat(y * w, x * w)``  (``D/2`` angles, one per rotated feature pair).

    Feed the result to ``apply_rope`` (``layout="half"``). Because both halves are
    ordinary RoPE, ``<R(y, x) q, R(y', x') k>`` depends on ``(y' - y, x' - x)`` only.
    ``base=100`` is the value of Heo et al.'s axial ViT code (images have far fewer
    positions per axis than texts).

    Args:
        positions_2d: ``(n, 2)`` tensor of (row, column), fractional values allowed.
        head_dim: head dimension ``D``, divisible by 4, >= 4.
        base: frequency base, finite and > 0.
        dtype: dtype of ``cos`` and ``sin`` (angles in float32).

    Returns:
        ``(cos, sin)``, each of shape ``(n, head_dim // 2)``.
    """
    pos = _check_positions_2d(positions_2d)
    check_int("head_dim", head_dim, minimum=4)
    if head_dim % 4:
        raise ValueError(f"head_dim must be divisible by 4 (row and column pairs), got {head_dim}")
    check_float_dtype("dtype", dtype)
    inv_freq, _ = rope_inv_freq(head_dim // 2, base=base)
    inv_freq = inv_freq.to(pos.device)
    cos_y, sin_y = rope_cos_sin(pos[:, 0], inv_freq, dtype=dtype)
    cos_x, sin_x = rope_cos_sin(pos[:, 1], inv_freq, dtype=dtype)
    return torch.cat((cos_y, cos_x), dim=-1), torch.cat((sin_y, sin_x), dim=-1)


def axial_rope_cos_sin(
    height: int,
    width: int,
    head_dim: int,
    *,
    base: float = 100.0,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial RoPE ``(cos, sin)`` for every patch of a ``height x width`` grid.

    Same as :func:`rope_cos_sin_2d` applied to :func:`patch_positions`.

    Returns:
        ``(cos, sin)``, each of shape ``(height * width, head_dim // 2)``, raster order.
    """
    positions = patch_positions(height, width, device=device)
    return rope_cos_sin_2d(positions, head_dim, base=base, dtype=dtype)


def mrope_position_ids(segments: Sequence, *, device=None) -> torch.Tensor:
    """Qwen2-VL 3-D position ids ``(t, h, w)`` for a sequence of text runs and visual grids.

    ``segments`` lists the parts of the sequence in order: an int ``L`` is a run of ``L``
    text tokens, a triple ``(T, H, W)`` is an image (``T = 1``) or a video, given as its
    grid of language-model tokens (after Qwen2-VL's 2 x 2 patch merge). With ``s`` the
    first id of a segment (0 for the first one):

    - text token ``j`` of the run: ``t = h = w = s + j``; the next segment starts at
      ``s + L``;
    - visual token at grid cell ``(a, b, c)``: ``(t, h, w) = (s + a, s + b, s + c)``, in
      raster order (``a`` slowest, ``c`` fastest); the next segment starts at the largest
      id used plus one, ``s + max(T, H, W)`` (Wang et al., 2024, Sec. 2.1).

    Args:
        segments: non-empty sequence of ints >= 1 and triples of ints >= 1.
        device: device of the result.

    Returns:
        Long tensor of shape ``(3, seq)``, rows ``t``, ``h``, ``w``.
    """
    if isinstance(segments, str | bytes) or not isinstance(segments, Sequence) or not segments:
        raise TypeError(
            "segments must be a non-empty sequence of ints (text runs) and (T, H, W) "
            f"triples (visual grids), got {segments!r}"
        )
    parts = []
    start = 0
    for i, seg in enumerate(segments):
        if isinstance(seg, int) and not isinstance(seg, bool):
            length = check_int(f"segments[{i}]", seg, minimum=1)
            ids = torch.arange(start, start + length, device=device)
            parts.append(ids.expand(3, length))
            start += length
        elif isinstance(seg, Sequence) and len(seg) == 3:
            t, h, w = (check_int(f"segments[{i}][{k}]", v, minimum=1) for k, v in enumerate(seg))
            grid = torch.meshgrid(
                torch.arange(t, device=device),
                torch.arange(h, device=device),
                torch.arange(w, device=device),
                indexing="ij",
            )
            parts.append(torch.stack(grid).reshape(3, t * h * w) + start)
            start += max(t, h, w)
        else:
            raise TypeError(
                f"segments[{i}] must be an int >= 1 (text run) or a (T, H, W) triple of ints, "
                f"got {seg!r}"
            )
    return torch.cat(parts, dim=1)


def mrope_cos_sin(
    position_ids: torch.Tensor,
    inv_freq: torch.Tensor,
    sections: Sequence[int] = QWEN2VL_MROPE_SECTIONS,
    *,
    attention_scaling: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multimodal RoPE (M-RoPE, Wang et al., 2024) angles.

    The ``n_freq = len(inv_freq)`` frequency pairs are cut, in order, into sections of
    ``sections = (s_t, s_h, s_w)`` pairs (Qwen2-VL's ``mrope_section``, counted in
    *pairs*: ``(16, 24, 24)`` for ``head_dim = 128``). Pair ``k`` in section ``a`` turns by
    ``position_ids[a] * inv_freq[k]``. The fastest-turning pairs thus follow time. When
    ``t = h = w`` (text tokens) the result equals 1-D ``rope_cos_sin``.

    Args:
        position_ids: ``(3, seq)`` integer or float tensor of (t, h, w) ids
            (:func:`mrope_position_ids`).
        inv_freq: ``(n_freq,)`` frequencies (``rope_inv_freq``).
        sections: three ints >= 0 summing to ``n_freq``.
        attention_scaling: factor on ``cos`` and ``sin`` (1 for plain RoPE).
        dtype: dtype of the result.

    Returns:
        ``(cos, sin)``, each ``(seq, n_freq)``, for ``apply_rope`` (``layout="half"``).
    """
    check_tensor("position_ids", position_ids, ndim=2)
    if position_ids.shape[0] != 3:
        raise ValueError(
            f"position_ids must have shape (3, seq) (t, h, w), got {tuple(position_ids.shape)}"
        )
    check_tensor("inv_freq", inv_freq, ndim=1, floating=True)
    if (
        isinstance(sections, str | bytes)
        or not isinstance(sections, Sequence)
        or len(sections) != 3
    ):
        raise TypeError(f"sections must be three ints (t, h, w), got {sections!r}")
    sizes = [check_int(f"sections[{a}]", s, minimum=0) for a, s in enumerate(sections)]
    if sum(sizes) != inv_freq.shape[0]:
        raise ValueError(
            f"sections must sum to the number of frequency pairs len(inv_freq) = "
            f"{inv_freq.shape[0]}, got {tuple(sizes)} (sum {sum(sizes)})"
        )
    cos_parts, sin_parts = [], []
    for axis, freqs in enumerate(inv_freq.split(sizes)):
        if freqs.numel() == 0:  # an empty section: no pair follows this axis
            continue
        cos, sin = rope_cos_sin(
            position_ids[axis], freqs, attention_scaling=attention_scaling, dtype=dtype
        )
        cos_parts.append(cos)
        sin_parts.append(sin)
    return torch.cat(cos_parts, dim=-1), torch.cat(sin_parts, dim=-1)
