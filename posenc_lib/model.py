"""A small decoder-only Transformer whose positional scheme is one argument.

Used by the experiments of the book (learned tables, the length-generalisation lab,
context extension). Pre-LayerNorm blocks (as in GPT-2), a GELU MLP, a causal mask, and
untied input and output embeddings (``tie_weights=True`` shares them, as GPT-2 does).
Evaluation at lengths beyond training works for every scheme except ``"learned"``, whose table has no vector past ``max_len`` (a clear
``ValueError``). Incremental decoding with :class:`KVCache` gives the same logits as the
full forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validation import check_choice, check_int, check_positive_float, check_tensor
from .attention import POSITION_SCHEMES, LayerKVCache, MultiHeadAttention
from .learned import LearnedPositionalEmbedding
from .rope import rope_inv_freq
from .sinusoidal import SinusoidalPositionalEncoding

__all__ = ["KVCache", "TinyTransformer", "TransformerBlock"]


class KVCache:
    """One :class:`~posenc_lib.attention.LayerKVCache` per layer of a model.

    Layer ``l`` holds keys and values ``(batch, heads, length, head_dim)`` of every token
    processed so far; the next token sits at position :attr:`length`.

    Args:
        num_layers: number of layers, >= 1.
    """

    def __init__(self, num_layers: int) -> None:
        check_int("num_layers", num_layers, minimum=1)
        self.layers = [LayerKVCache() for _ in range(num_layers)]

    @property
    def length(self) -> int:
        """Number of tokens already processed (the position of the next token)."""
        return self.layers[0].length


class TransformerBlock(nn.Module):
    """Pre-LayerNorm Transformer block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``.

    ``MLP(h) = W_2 GELU(W_1 h)`` with ``W_1: d_model -> d_ff``; pre-LN as in GPT-2
    (Radford et al., 2019; Xiong et al., 2020). ``forward(x)`` maps ``(batch, seq, d_model)``
    to the same shape. ``attention_options`` go to
    :class:`~posenc_lib.attention.MultiHeadAttention`.
    """

    def __init__(
        self, d_model: int, num_heads: int, d_ff: int, *, dropout: float = 0.0, **attention_options
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, dropout=dropout, **attention_options)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model), nn.Dropout(dropout)
        )

    def forward(
        self,
        x: torch.Tensor,
        *,
        kv_cache: LayerKVCache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x`` ``(batch, seq, d_model)`` -> same shape; the keyword arguments go to
        :meth:`~posenc_lib.attention.MultiHeadAttention.forward`."""
        h = self.attn(
            self.ln1(x), kv_cache=kv_cache, attention_mask=attention_mask, position_ids=position_ids
        )
        x = x + h
        return x + self.mlp(self.ln2(x))


class TinyTransformer(nn.Module):
    """Decoder-only Transformer language model with a pluggable positional scheme.

    Args:
        vocab_size: number of token ids.
        d_model, num_heads, num_layers: width, heads per layer, depth.
        d_ff: hidden width of the MLP (default ``4 * d_model``).
        max_len: rows of the ``"learned"`` table, and of the precomputed sinusoidal table
            (longer inputs compute their sinusoids on the fly).
        position: one of ``"none"`` (alias ``"nope"``), ``"sinusoidal"``, ``"learned"``,
            ``"shaw"``, ``"t5"``, ``"alibi"``, ``"rope"``.
        rope_base, rope_scaling: RoPE options (a Hugging Face style ``rope_scaling`` dict).
        dropout: dropout rate in training.
        tie_weights: use the token embedding matrix as the output head (GPT-2, Press &
            Wolf, 2017); default False (separate head).
        sinusoidal_scale_input: with ``position="sinusoidal"``, multiply the token
            embeddings by ``sqrt(d_model)`` before adding the table, as in Vaswani et al.
            (2017); without it a table of amplitude 1 drowns embeddings of std 0.02.
        **attention_options: further options of
            :class:`~posenc_lib.attention.MultiHeadAttention` (``shaw_max_distance``, ...).

    ``forward(tokens)`` maps ``(batch, seq)`` token ids to ``(batch, seq, vocab_size)`` logits.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        d_ff: int | None = None,
        max_len: int = 512,
        position: str = "rope",
        rope_base: float = 10_000.0,
        rope_scaling: dict | None = None,
        dropout: float = 0.0,
        tie_weights: bool = False,
        sinusoidal_scale_input: bool = False,
        **attention_options,
    ) -> None:
        super().__init__()
        check_int("vocab_size", vocab_size, minimum=1)
        check_int("num_layers", num_layers, minimum=1)
        check_int("max_len", max_len, minimum=1)
        position = "none" if position == "nope" else position
        self.position = check_choice("position", position, POSITION_SCHEMES + ("nope",))
        self.vocab_size, self.max_len = vocab_size, max_len
        self.embed = nn.Embedding(vocab_size, d_model)
        if position == "sinusoidal":
            self.pos = SinusoidalPositionalEncoding(
                d_model, max_len=max_len, scale_input=sinusoidal_scale_input
            )
        elif position == "learned":
            self.pos = LearnedPositionalEmbedding(max_len, d_model)
        else:
            self.pos = None
        if position == "rope":
            attention_options.update(rope_base=rope_base, rope_scaling=rope_scaling)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                d_model,
                num_heads,
                d_ff or 4 * d_model,
                dropout=dropout,
                position=position,
                causal=True,
                **attention_options,
            )
            for _ in range(num_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        for part in (self.embed, self.blocks, self.head):  # self.pos keeps its own init
            part.apply(self._init_weights)
        if tie_weights:  # logits = h E^T: one (vocab_size, d_model) matrix for both ends
            self.head.weight = self.embed.weight

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # GPT-2's initialisation: N(0, 0.02) weights, zero biases.
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_kv_cache(self) -> KVCache:
        """An empty cache for incremental decoding with ``forward(tokens, kv_cache=...)``."""
        return KVCache(len(self.blocks))

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        kv_cache: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``(batch, seq, vocab_size)`` for token ids ``(batch, seq)``.

        With ``kv_cache`` the tokens continue the cached ones: their positions start at
        ``kv_cache.length``, and the cache is extended in place.

        For a batch of left-padded prompts pass ``attention_mask`` ``(batch, k_len)``
        (1 = token, 0 = padding, over the cached and new tokens) and ``position_ids``
        ``(batch, seq)`` (e.g. ``(attention_mask.cumsum(-1) - 1).clamp(min=0)`` for the new
        columns). The absolute tables and RoPE use the positions; the relative biases
        (alibi, t5, shaw) need only the mask (left padding does not change distances) and
        refuse ``position_ids``. Logits on padding positions are meaningless.
        :meth:`generate` does all this for you.
        """
        check_tensor("tokens", tokens, ndim=2)
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"tokens must be an integer tensor, got {tokens.dtype}")
        # Checked on the CPU only: on a GPU the check would synchronise every step, and an
        # out-of-range id already stops the embedding kernel there (device-side assert).
        # Under torch.compile a Python `if` on tensor values cannot be traced: the same
        # check becomes an assertion op inside the graph.
        if torch.compiler.is_compiling():
            if tokens.numel():
                in_range = (tokens.min() >= 0) & (tokens.max() < self.vocab_size)
                torch._assert_async(in_range, "tokens must lie in [0, vocab_size)")
        elif (
            tokens.device.type == "cpu"
            and tokens.numel()
            and not (0 <= tokens.min() and tokens.max() < self.vocab_size)
        ):
            raise ValueError(
                f"tokens must lie in [0, vocab_size={self.vocab_size}), got values in "
                f"[{int(tokens.min())}, {int(tokens.max())}]"
            )
        offset = kv_cache.length if kv_cache is not None else 0
        x = self.embed(tokens)
        if self.pos is not None and position_ids is not None:
            x = self._add_table_at(x, position_ids)
        elif self.pos is not None:
            x = self.pos(x, offset=offset)
        x = self.drop(x)
        rope_ids = position_ids if self.position == "rope" else None
        if position_ids is not None and self.position in ("alibi", "t5", "shaw"):
            raise ValueError(
                f"position_ids are not used by position={self.position!r} (it biases by "
                "column distance, which left padding with attention_mask leaves unchanged)"
            )
        for i, block in enumerate(self.blocks):
            layer_cache = kv_cache.layers[i] if kv_cache is not None else None
            x = block(x, kv_cache=layer_cache, attention_mask=attention_mask, position_ids=rope_ids)
        return self.head(self.ln_f(x))

    def _add_table_at(self, x: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """``x`` plus the absolute table's rows at ``position_ids`` (``(batch, seq)`` or
        ``(seq,)``), as ``self.pos(x, offset=...)`` does for consecutive positions."""
        check_tensor("position_ids", position_ids)
        if position_ids.is_floating_point() or position_ids.dtype == torch.bool:
            raise TypeError(f"position_ids must be integers, got dtype {position_ids.dtype}")
        if position_ids.shape[-1] != x.shape[1] or position_ids.ndim not in (1, 2):
            raise ValueError(
                f"position_ids must be (batch, seq) or (seq,) with seq = {x.shape[1]}, got "
                f"shape {tuple(position_ids.shape)}"
            )
        if not position_ids.numel():
            return x
        if position_ids.min() < 0:
            raise ValueError(f"position_ids must be >= 0, got {int(position_ids.min())}")
        table = self.pos.positions_table(int(position_ids.max()) + 1)
        if getattr(self.pos, "scale_input", False):
            x = x * self.pos.d_model**0.5
        x = x + table.to(device=x.device, dtype=x.dtype)[position_ids.to(x.device)]
        dropout = getattr(self.pos, "dropout", None)
        return dropout(x) if dropout is not None else x

    @torch.no_grad()
    def generate(
        self,
        tokens: torch.Tensor,
        max_new_tokens: int,
        *,
        greedy: bool = True,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Continue ``tokens`` ``(batch, seq)`` by ``max_new_tokens`` using the KV cache.

        The prompt is processed in one pass (prefill), then one token per step, each
        attending to the cached keys and values. ``greedy=False`` samples from
        ``softmax(logits / temperature)``. Call ``model.eval()`` first if the model has
        dropout. Returns ``(batch, seq + max_new_tokens)`` token ids.

        ``attention_mask`` ``(batch, seq)`` (1 = token, 0 = padding) marks left padding
        of prompts of different lengths: each row then continues as its prompt would
        alone (positions count real tokens only; padding gets no attention).
        """
        check_int("max_new_tokens", max_new_tokens, minimum=0)
        check_positive_float("temperature", temperature)
        check_tensor("tokens", tokens, ndim=2)
        if tokens.shape[1] == 0:
            raise ValueError("tokens must hold a prompt of at least one token per sequence")
        cache = self.new_kv_cache()
        out = [tokens]
        nxt = tokens
        mask = position_ids = None
        if attention_mask is not None:
            check_tensor("attention_mask", attention_mask, ndim=2)
            if attention_mask.shape != tokens.shape:
                raise ValueError(
                    f"attention_mask must have the shape of tokens {tuple(tokens.shape)}, got "
                    f"{tuple(attention_mask.shape)}"
                )
            mask = attention_mask.long()
            if self.position not in ("alibi", "t5", "shaw"):  # they use distances only
                position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        for _ in range(max_new_tokens):
            logits = self(nxt, kv_cache=cache, attention_mask=mask, position_ids=position_ids)
            logits = logits[:, -1]  # (batch, vocab_size)
            if greedy:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                probs = (logits.float() / temperature).softmax(-1)
                nxt = torch.multinomial(probs, 1, generator=generator)
            out.append(nxt)  # (batch, 1)
            if mask is not None:  # the new token is real and one past its row's last position
                if position_ids is not None:
                    position_ids = position_ids[:, -1:] + 1
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        return torch.cat(out, dim=1)

    def set_rope_scaling(self, scaling: dict | None, *, base: float | None = None) -> None:
        """Switch every RoPE layer to a new ``rope_scaling`` dict (None: plain RoPE), and
        optionally a new ``base``; no weight changes.

        For context-extension experiments: evaluate a model trained at length ``L`` at
        ``4L`` with ``{"rope_type": "yarn", "factor": 4.0,
        "original_max_position_embeddings": L}`` (or ``"linear"``, ``"ntk"``,
        ``"dynamic"``, ``"llama3"``; see :func:`~posenc_lib.rope.rope_inv_freq`).
        Start a new KV cache afterwards: cached keys keep their old rotation. With
        ``"dynamic"`` the frequencies depend on the current length, so incremental
        decoding past ``original_max_position_embeddings`` differs from a full pass (the
        cached keys were rotated at shorter lengths), as in other implementations.
        """
        if self.position != "rope":
            raise ValueError(
                f"set_rope_scaling needs position='rope', this model has {self.position!r}"
            )
        if base is not None:
            base = check_positive_float("base", base)
        first = self.blocks[0].attn.rotary  # validate once, so no layer is left half-changed
        rope_inv_freq(first.rotary_dim, base=base or first.base, scaling=scaling)
        for block in self.blocks:
            rotary = block.attn.rotary
            if base is not None:
                rotary.base = base
            rotary.set_scaling(scaling)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return f"position={self.position!r}, max_len={self.max_len}"
