"""The attention family: a decoder-only transformer over performance events, a drop-in for the LSTM.

Music Transformer showed that attention which knows *how far back* an event lies lets a model
copy a motif from bars ago; here that is rotary position embeddings (RoPE): queries and keys are
rotated by their absolute position, so their product depends only on the distance between them,
and a key cached at generation time keeps its meaning however long the piece grows.

The model takes what the LSTM takes, in the same layout (:class:`~melodia.model.config.ModelConfig`):
event ids, and per step the float inputs (controls, band conditions, note state, instrument,
meter) concatenated to the token embedding, projected to ``hidden_size``; ``num_layers``
pre-norm blocks of causal self-attention (``torch.nn.functional.scaled_dot_product_attention``,
so a GPU runs its fused kernels) and a GELU feed-forward; the output is tied to the token
embedding, as the LSTM's. ``features(ids, state, controls)`` returns the new state: a
:class:`KVCache` of every layer's keys and values, so generation costs one step per event.

>>> import torch
>>> from melodia.model.config import ModelConfig
>>> model = MusicTransformer(ModelConfig(kind="transformer", embed_dim=32, hidden_size=32,
...                                      num_layers=2, dropout=0.0)).eval()
>>> ids = torch.randint(0, 388, (1, 12))
>>> whole, _ = model(ids)
>>> head, cache = model(ids[:, :8])
>>> tail, cache = model(ids[:, 8:], cache)  # the last four events, from the cache
>>> bool(torch.allclose(whole[:, 8:], tail, atol=1e-5)), cache.length
(True, 12)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from melodia.model.config import (EventModel, ModelConfig, attach_output, into_ring, join_inputs,
                                  output_weights)


@dataclass
class KVCache:
    """Keys and values of every layer (``[B, heads, T, head_dim]`` each, the last ``context``
    events at most) and how many events have been seen (the next event's position)."""

    keys: list[Tensor]
    values: list[Tensor]
    length: int

    def select(self, rows: Tensor) -> "KVCache":
        """Rows of the cache (repeats allowed), e.g. for beam search."""
        return KVCache([k[rows] for k in self.keys], [v[rows] for v in self.values], self.length)


def rotary_frequencies(dim: int, base: float = 10000.0) -> Tensor:
    """The rotation rate of each of the ``dim / 2`` pairs, float64."""
    return base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def rotary(positions: Tensor, dim: int, frequencies: Tensor | None = None
           ) -> tuple[Tensor, Tensor]:
    """``cos, sin [T, dim]`` of the rotation at each position, laid out for :func:`rotate`: each
    pair's angle twice (first half, second half) and the sine negated in the first half (angles
    in float64, so far positions of a long stream keep their precision)."""
    inv = rotary_frequencies(dim) if frequencies is None else frequencies
    angles = positions.to(torch.float64)[:, None] * inv[None]
    cos, sin = angles.cos().float(), angles.sin().float()
    return torch.cat([cos, cos], dim=-1), torch.cat([-sin, sin], dim=-1)


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """``x [..., T, dim]`` rotated pairwise (first half with second half) by :func:`rotary`'s
    ``cos, sin``: ``(x1 cos - x2 sin, x2 cos + x1 sin)``."""
    return x * cos.to(x.dtype) + x.roll(x.shape[-1] // 2, -1) * sin.to(x.dtype)


class Block(nn.Module):
    """Pre-norm causal self-attention and feed-forward, each added to the residual stream."""

    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        self.heads = c.num_heads
        self.norm1 = nn.LayerNorm(c.hidden_size)
        self.qkv = nn.Linear(c.hidden_size, 3 * c.hidden_size)
        self.out = nn.Linear(c.hidden_size, c.hidden_size)
        self.norm2 = nn.LayerNorm(c.hidden_size)
        self.ff = nn.Sequential(nn.Linear(c.hidden_size, c.ff_mult * c.hidden_size), nn.GELU(),
                                nn.Linear(c.ff_mult * c.hidden_size, c.hidden_size))
        self.dropout = nn.Dropout(c.dropout)
        self.p = c.dropout

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, past: tuple[Tensor, Tensor] | None,
                window: int) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        B, T, H = x.shape
        q, k, v = (self.qkv(self.norm1(x)).view(B, T, 3, self.heads, H // self.heads)
                   .permute(2, 0, 3, 1, 4))
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        S = k.shape[2]
        if T == 1:
            mask, causal = None, False
        elif S == T:
            mask, causal = None, True
        else:  # new events after cached ones: each sees the cache and the new ones up to itself
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
            causal = False
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.p if self.training else 0.0)
        x = x + self.dropout(self.out(a.transpose(1, 2).reshape(B, T, H)))
        x = x + self.dropout(self.ff(self.norm2(x)))
        return x, (k[:, :, -window:], v[:, :, -window:])


class MusicTransformer(EventModel):
    """Decoder-only transformer language model over performance events; see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        self.input = nn.Linear(c.embed_dim + c.input_dim, c.hidden_size)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.hidden_size)
        self.dropout = nn.Dropout(c.dropout)
        attach_output(self, c)

    def features(self, ids: Tensor, state: KVCache | None = None, controls: Tensor | None = None
                 ) -> tuple[Tensor, KVCache]:
        """Predicted output embeddings ``[B, T, E]`` and the cache after ``ids [B, T]``."""
        c = self.config
        x = self.dropout(self.input(join_inputs(self.embedding(ids), controls, c.input_dim)))
        start = 0 if state is None else state.length
        cos, sin = rotary(torch.arange(start, start + ids.shape[1]), c.hidden_size // c.num_heads)
        cos, sin = cos.to(x.device), sin.to(x.device)
        keys, values = [], []
        for i, block in enumerate(self.blocks):
            past = None if state is None else (state.keys[i], state.values[i])
            x, (k, v) = block(x, cos, sin, past, c.context)
            keys.append(k)
            values.append(v)
        return (self.proj(self.dropout(self.norm(x))),
                KVCache(keys, values, start + ids.shape[1]))


def parameter_count(c: ModelConfig) -> int:
    """How many parameters :class:`MusicTransformer` ``(c)`` has, without building it."""
    h, f = c.hidden_size, c.ff_mult * c.hidden_size
    block = 2 * 2 * h + (3 * h * h + 3 * h) + (h * h + h) + (h * f + f) + (f * h + h)
    head = (c.vocab_size + (h * c.embed_dim + c.embed_dim if h != c.embed_dim else 0)
            if c.tie_embeddings else h * c.vocab_size + c.vocab_size)
    return (c.vocab_size * c.embed_dim + (c.embed_dim + c.input_dim) * h + h
            + c.num_layers * block + 2 * h + head)


class TransformerStepper:
    """Event-by-event inference of a :class:`MusicTransformer` with its KV cache (eval mode, no
    autograd), behind the same interface as :class:`~melodia.model.stepper.FastStepper`:
    ``step(ids [B], state, controls [B, C]) -> (logits [B, V], features [B, E], state)``.

    A step writes its key and value into a ring of ``config.context`` slots (position ``p`` in
    slot ``p % context``) and attends over the filled slots: attention does not care about the
    order of keys, and rotary keys carry their own positions. So nothing is copied per step, and
    event 10,000 costs what event 1,000 does. A context longer than the ring is primed from its
    last ``context`` events. A step writes into the state it is given: to come back to a state
    later, keep a copy (:meth:`select`), as beam search does."""

    def __init__(self, model: MusicTransformer, precision: str = "fp32") -> None:
        if precision != "fp32":
            raise ValueError(f"a transformer runs in fp32 (int8 is for LSTM models), "
                             f"not {precision!r}")
        self.model, self.precision = model.eval(), precision
        c = model.config
        self.context, self.heads, self.head_dim = c.context, c.num_heads, c.hidden_size // c.num_heads
        self.output_weight, self.output_bias = output_weights(model)
        self._frequencies = rotary_frequencies(self.head_dim)  # made once, used every step
        self._layers = [_Weights.of(block) for block in model.blocks]  # no module calls per step

    def __repr__(self) -> str:
        c = self.model.config
        return (f"TransformerStepper({c.num_layers} x {c.hidden_size} transformer, context "
                f"{c.context}, vocab {c.vocab_size})")

    @staticmethod
    def select(state: KVCache, rows: Tensor) -> KVCache:
        return state.select(rows)

    def _ring(self, cache: KVCache) -> KVCache:
        """The model's cache (the last ``n <= context`` positions in order) laid into rings."""
        keys, values = ([into_ring(x, cache.length, self.context, 2) for x in store]
                        for store in (cache.keys, cache.values))
        return KVCache(keys, values, cache.length)

    def prime(self, ids: Tensor, controls: Tensor | None = None
              ) -> tuple[Tensor, Tensor, KVCache]:
        """Run a context ``ids [B, T]`` through the model in one call (its last ``context``)."""
        if ids.shape[1] > self.context:
            ids = ids[:, -self.context:]
            controls = None if controls is None else controls[:, -self.context:]
        with torch.no_grad():
            features, cache = self.model.features(ids, None, controls)
        features = features[:, -1].float()
        logits = F.linear(features, self.output_weight, self.output_bias)
        return logits, features, self._ring(cache)

    @torch.no_grad()
    def step(self, ids: Tensor, state: KVCache | None = None, controls: Tensor | None = None
             ) -> tuple[Tensor, Tensor, KVCache]:
        """Feed one event per row; the logits and features predicting the next, and the cache."""
        model, c = self.model, self.model.config
        if state is None:
            return self.prime(ids[:, None], None if controls is None else controls[:, None])
        x = F.linear(join_inputs(F.embedding(ids, model.embedding.weight), controls, c.input_dim),
                     model.input.weight, model.input.bias)  # [B, H]
        cos, sin = rotary(torch.tensor([state.length]), self.head_dim, self._frequencies)
        slot, filled = state.length % self.context, min(state.length + 1, self.context)
        B, H = len(ids), c.hidden_size
        for w, keys, values in zip(self._layers, state.keys, state.values):
            qkv = F.linear(F.layer_norm(x, (H,), w.norm1, w.norm1_bias, w.eps), w.qkv, w.qkv_bias)
            qkv = qkv.view(B, 3, self.heads, self.head_dim)
            qk = rotate(qkv[:, :2], cos, sin)  # queries and keys in one rotation
            keys[:, :, slot], values[:, :, slot] = qk[:, 1], qkv[:, 2]
            a = F.scaled_dot_product_attention(qk[:, 0, :, None], keys[:, :, :filled],
                                               values[:, :, :filled])
            x = x + F.linear(a.reshape(B, -1), w.out, w.out_bias)
            h = F.layer_norm(x, (H,), w.norm2, w.norm2_bias, w.eps)
            x = x + F.linear(F.gelu(F.linear(h, w.ff1, w.ff1_bias)), w.ff2, w.ff2_bias)
        features = model.proj(model.norm(x)).float()
        logits = F.linear(features, self.output_weight, self.output_bias)
        return logits, features, KVCache(state.keys, state.values, state.length + 1)


class _Weights(NamedTuple):
    """One block's parameters, gathered once for :meth:`TransformerStepper.step`."""

    norm1: Tensor
    norm1_bias: Tensor
    qkv: Tensor
    qkv_bias: Tensor
    out: Tensor
    out_bias: Tensor
    norm2: Tensor
    norm2_bias: Tensor
    ff1: Tensor
    ff1_bias: Tensor
    ff2: Tensor
    ff2_bias: Tensor
    eps: float

    @classmethod
    def of(cls, b: Block) -> "_Weights":
        return cls(b.norm1.weight, b.norm1.bias, b.qkv.weight, b.qkv.bias, b.out.weight,
                   b.out.bias, b.norm2.weight, b.norm2.bias, b.ff[0].weight, b.ff[0].bias,
                   b.ff[2].weight, b.ff[2].bias, b.norm1.eps)

__all__ = ["Block", "KVCache", "MusicTransformer", "TransformerStepper", "parameter_count",
           "rotary", "rotary_frequencies", "rotate"]
