"""What every model family shares: :class:`ModelConfig` (the shape of a model, saved in every
checkpoint) and how a step's float inputs join the token embedding."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from melodia.util.knobs import check

KINDS = ("lstm", "transformer", "attention-rnn")  # model families (melodia.model.families)


@dataclass
class ModelConfig:
    """Shape of a model of any family (defaults: Magenta's Performance RNN, a 3 x 512 LSTM)."""

    vocab_size: int = 388  # from the encoding: ``encoding.vocab_size``
    embed_dim: int = 512  # token embedding; also the output-embedding size when tied
    hidden_size: int = 512  # LSTM units per layer
    num_layers: int = 3
    dropout: float = 0.1  # between LSTM layers and before the output projection
    tie_embeddings: bool = True  # output layer shares the token embedding (plus a bias)
    control_dim: int = 0  # control features per step (melodia.features.controls.CONTROL_DIM), 0 = none
    # note-state features per step (melodia.features.controls.NOTE_STATE_DIM), 0 = none: which pitches
    # sound after each event and how recently they were struck, so the LSTM need not track it
    state_dim: int = 0
    # band models (melodia.features.band): constant conditions (line-up, style, tempo), 0 = none
    band_dim: int = 0
    # band models: one-hot of the instrument the last PROGRAM event chose, every step, 0 = none
    instrument_dim: int = 0
    # band models: where the music is in the bar at its tempo (melodia.features.band.METER_DIM), 0 = none
    meter_dim: int = 0
    # band models: what each part struck at this point of the bar, 1 and 2 bars back
    # (melodia.features.lookback.LOOKBACK_DIM), 0 = none
    lookback_dim: int = 0
    # the model family: "lstm" (Performance RNN), "transformer" (a decoder-only transformer with
    # rotary positions; hidden_size is its width, num_layers its blocks) or "attention-rnn"
    # (Magenta's: an LSTM attending over its own last `context` outputs)
    kind: str = "lstm"
    num_heads: int = 4  # transformer: attention heads (hidden_size / num_heads: even)
    context: int = 512  # transformer, attention-rnn: the most events one attends to; <= the crops
    ff_mult: int = 4  # transformer: feed-forward width, times hidden_size

    @property
    def fixed_dim(self) -> int:
        """Inputs constant over a piece: controls, then band conditions."""
        return self.control_dim + self.band_dim

    @property
    def step_dim(self) -> int:
        """Inputs that follow the music step by step: note state, current instrument, meter,
        bar lookback."""
        return self.state_dim + self.instrument_dim + self.meter_dim + self.lookback_dim

    @property
    def input_dim(self) -> int:
        """Per-step float inputs besides the event id: controls, band conditions, note state,
        current instrument, meter (in that order)."""
        return self.fixed_dim + self.step_dim

    def __post_init__(self) -> None:
        if int(self.vocab_size) < 1:
            raise ValueError(f"vocab_size must be >= 1, got {self.vocab_size}")
        for name in ("embed_dim", "hidden_size", "num_layers", "num_heads", "context"):
            setattr(self, name, check(name, getattr(self, name)))
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        widths = (self.control_dim, self.state_dim, self.band_dim, self.instrument_dim,
                  self.meter_dim, self.lookback_dim)
        if min(widths) < 0:
            raise ValueError(f"control_dim, state_dim, band_dim and instrument_dim must be >= 0, "
                             f"got {widths}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "transformer":
            if self.num_heads < 1 or self.hidden_size % (2 * self.num_heads):
                raise ValueError(f"a transformer needs hidden_size ({self.hidden_size}) divisible "
                                 f"by 2 x num_heads ({self.num_heads})")
            if self.context < 2 or self.ff_mult < 1:
                raise ValueError("a transformer needs context >= 2 and ff_mult >= 1")
        if self.kind == "attention-rnn" and self.context < 2:
            raise ValueError("an attention RNN needs context >= 2")

    @property
    def window(self) -> int | None:
        """The most events the model takes into account (None: an LSTM's state has no limit);
        scoring and generating beyond what it trained on would ask it to extrapolate."""
        return self.context if self.kind == "transformer" else None

    @property
    def attention_span(self) -> int | None:
        """How far back attention reaches (None: no attention); training crops must be as long."""
        return self.context if self.kind in ("transformer", "attention-rnn") else None

    def describe(self) -> str:
        """``"3 x 512 LSTM"``, ``"4 x 256 transformer (4 heads, context 1024)"``, ..."""
        if self.kind == "transformer":
            return (f"{self.num_layers} x {self.hidden_size} transformer ({self.num_heads} heads, "
                    f"context {self.context})")
        if self.kind == "attention-rnn":
            return (f"{self.num_layers} x {self.hidden_size} LSTM attending over {self.context} "
                    f"events")
        return f"{self.num_layers} x {self.hidden_size} LSTM"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> "ModelConfig":
        """The config a checkpoint holds, checked as untrusted input (every size a whole
        number): ValueError ``invalid model_config: ...`` in one line."""
        try:
            config = cls.from_dict(data)
            for name in ("vocab_size", "embed_dim", "hidden_size", "num_layers", "control_dim",
                         "state_dim", "band_dim", "instrument_dim", "meter_dim", "lookback_dim",
                         "num_heads", "context", "ff_mult"):
                value = getattr(config, name)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{name} must be an integer, got {value!r}")
        except (TypeError, ValueError) as err:
            raise ValueError(f"invalid model_config: {err}") from None
        return config


def join_inputs(x: Tensor, controls: Tensor | None, width: int) -> Tensor:
    """Token embeddings ``x [B, T, E]`` with the step inputs ``controls [B, T, width]``
    concatenated (zeros when absent), as every family takes them."""
    if width:
        if controls is None:
            controls = x.new_zeros(*x.shape[:-1], width)
        elif controls.shape != (*x.shape[:-1], width):
            want = (*x.shape[:-1], width)
            raise ValueError(f"controls must have shape {want}, got {tuple(controls.shape)}")
        return torch.cat([x, controls.to(x.dtype)], dim=-1)
    if controls is not None and controls.shape[-1] != 0:
        raise ValueError("this model was built without controls (control_dim=0)")
    return x


def attach_output(model: nn.Module, c: ModelConfig) -> None:
    """The output layer every family ends in, set on ``model``: tied to the token embedding
    (``proj`` to the embedding width when it differs, plus a ``bias``) or an untied ``head``;
    then the embedding's initialisation (``model.embedding`` must exist)."""
    if c.tie_embeddings:
        model.proj = (nn.Linear(c.hidden_size, c.embed_dim) if c.hidden_size != c.embed_dim
                      else nn.Identity())
        model.bias = nn.Parameter(torch.zeros(c.vocab_size))
        model.head = None
    else:
        model.proj = nn.Identity()
        model.head = nn.Linear(c.hidden_size, c.vocab_size)
    nn.init.normal_(model.embedding.weight, std=c.embed_dim ** -0.5)


class EventModel(nn.Module):
    """What the model of every family shares, around the ``features(ids, state, controls) ->
    (features [B, T, E], state)`` each family defines: the logits through the output layer
    :func:`attach_output` set, the forward pass and its size."""

    def logits(self, features: Tensor) -> Tensor:
        """Logits ``[..., V]`` from :meth:`features`."""
        return output_logits(self, features)

    def forward(self, ids: Tensor, state: Any = None, controls: Tensor | None = None
                ) -> tuple[Tensor, Any]:
        """Next-event logits ``[B, T, V]`` for ``ids [B, T]`` and the state after them (an LSTM's
        ``(h, c)``, a transformer's cache...), to continue from."""
        features, state = self.features(ids, state, controls)
        return self.logits(features), state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return f"{self.num_parameters():,} parameters"


def into_ring(x: Tensor, length: int, context: int, dim: int) -> Tensor:
    """The last positions of a stream, in order along ``dim`` of ``x`` (the last of them is
    position ``length - 1``), laid into a ring of ``context`` slots, position ``p`` in slot
    ``p % context``: how the attention steppers keep a window without copying it each step."""
    n = x.shape[dim]
    shape = list(x.shape)
    shape[dim] = context
    ring = x.new_zeros(shape)
    ring.index_copy_(dim, torch.arange(length - n, length, device=x.device) % context, x)
    return ring


def output_logits(model: nn.Module, features: Tensor) -> Tensor:
    """Logits ``[..., V]`` from a family's features, through the layer :func:`attach_output` set."""
    if model.head is not None:
        return model.head(features)
    return F.linear(features, model.embedding.weight, model.bias)


def output_weights(model: nn.Module) -> tuple[Tensor, Tensor]:
    """The output layer as float32 ``(weight [V, E], bias [V])``: logits = features @ W.T + b."""
    with torch.no_grad():
        if model.head is not None:
            return model.head.weight.detach().float().contiguous(), model.head.bias.detach().float()
        return model.embedding.weight.detach().float().contiguous(), model.bias.detach().float()


__all__ = ["EventModel", "KINDS", "ModelConfig", "attach_output", "into_ring", "join_inputs",
           "output_logits", "output_weights"]
