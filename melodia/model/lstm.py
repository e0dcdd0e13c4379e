"""Performance RNN in PyTorch: token embedding -> stacked LSTM -> output embedding -> logits.

The model predicts the next event id. It can be run over a whole sequence (training) or one step
at a time carrying the LSTM state ``(h, c)`` (generation):

    >>> import torch
    >>> model = PerformanceRNN(ModelConfig(vocab_size=388))
    >>> logits, state = model(torch.zeros(2, 5, dtype=torch.long))   # ids: LongTensor[B, T]
    >>> tuple(logits.shape)
    (2, 5, 388)
    >>> logits, state = model(torch.zeros(2, 1, dtype=torch.long), state)  # one more step
    >>> tuple(logits.shape)
    (2, 1, 388)

``features`` returns the predicted *output embedding* and ``logits`` turns it into logits; with
``tie_embeddings`` (the default) they are ``features @ embedding.weight.T + bias``, so features live
in the token-embedding space. Optional controls and note state (see :mod:`melodia.features.controls`) are
concatenated to the embedding at each step, as one ``controls`` tensor of ``config.input_dim``
floats (controls first); absent ones are zeros.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

log = logging.getLogger(__name__)

State = tuple[Tensor, Tensor]  # LSTM (h, c), each [num_layers, B, hidden_size]


@dataclass
class ModelConfig:
    """Shape of a :class:`PerformanceRNN` (defaults: Magenta's Performance RNN, 3 x 512 LSTM)."""

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

    @property
    def fixed_dim(self) -> int:
        """Inputs constant over a piece: controls, then band conditions."""
        return self.control_dim + self.band_dim

    @property
    def step_dim(self) -> int:
        """Inputs that follow the music step by step: note state, current instrument, meter."""
        return self.state_dim + self.instrument_dim + self.meter_dim

    @property
    def input_dim(self) -> int:
        """Per-step float inputs besides the event id: controls, band conditions, note state,
        current instrument, meter (in that order)."""
        return self.fixed_dim + self.step_dim

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_dim", "hidden_size", "num_layers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        widths = (self.control_dim, self.state_dim, self.band_dim, self.instrument_dim,
                  self.meter_dim)
        if min(widths) < 0:
            raise ValueError(f"control_dim, state_dim, band_dim and instrument_dim must be >= 0, "
                             f"got {widths}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {sorted(unknown)}")
        return cls(**data)


class PerformanceRNN(nn.Module):
    """LSTM language model over performance events; see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        self.lstm = nn.LSTM(c.embed_dim + c.input_dim, c.hidden_size, c.num_layers,
                            dropout=c.dropout if c.num_layers > 1 else 0.0, batch_first=True)
        self.dropout = nn.Dropout(c.dropout)
        if c.tie_embeddings:
            self.proj = (nn.Linear(c.hidden_size, c.embed_dim) if c.hidden_size != c.embed_dim
                         else nn.Identity())
            self.bias = nn.Parameter(torch.zeros(c.vocab_size))
            self.head = None
        else:
            self.proj = nn.Identity()
            self.head = nn.Linear(c.hidden_size, c.vocab_size)
        nn.init.normal_(self.embedding.weight, std=c.embed_dim ** -0.5)

    # ---------------------------------------------------------------------------- running

    def features(
        self, ids: Tensor, state: State | None = None, controls: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """Predicted output embeddings ``[B, T, E]`` (``[B, T, H]`` untied) and the new state."""
        x = self.embedding(ids)
        width = self.config.input_dim
        if width:
            if controls is None:
                controls = x.new_zeros(*x.shape[:-1], width)
            elif controls.shape != (*x.shape[:-1], width):
                want = (*x.shape[:-1], width)
                raise ValueError(f"controls must have shape {want}, got {tuple(controls.shape)}")
            x = torch.cat([x, controls.to(x.dtype)], dim=-1)
        elif controls is not None and controls.shape[-1] != 0:
            raise ValueError("this model was built without controls (control_dim=0)")
        out, state = self.lstm(x, state)
        return self.proj(self.dropout(out)), state

    def logits(self, features: Tensor) -> Tensor:
        """Logits ``[..., V]`` from :meth:`features`."""
        if self.head is not None:
            return self.head(features)
        return F.linear(features, self.embedding.weight, self.bias)

    def forward(
        self, ids: Tensor, state: State | None = None, controls: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """Next-event logits ``[B, T, V]`` for ``ids [B, T]`` and the LSTM state after them."""
        features, state = self.features(ids, state, controls)
        return self.logits(features), state

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zero ``(h, c)``, the same as passing ``state=None``."""
        c = self.config
        shape = (c.num_layers, batch_size, c.hidden_size)
        device = device or self.embedding.weight.device
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return f"{self.num_parameters():,} parameters"


def next_event_loss(model: nn.Module, inputs: Tensor, targets: Tensor,
                    controls: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Summed cross-entropy (nats) over targets that are not ``-100``, and how many there are."""
    logits, _ = model(inputs, None, controls)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=-100, reduction="sum")
    return loss, (targets != -100).sum()


def estimate_parameters(config: ModelConfig) -> int:
    """How many parameters :class:`PerformanceRNN` ``(config)`` has, without building it."""
    c = config
    gates = 4 * c.hidden_size
    lstm = gates * (c.embed_dim + c.input_dim + c.hidden_size) + 2 * gates
    lstm += (c.num_layers - 1) * (gates * 2 * c.hidden_size + 2 * gates)
    if c.tie_embeddings:
        head = c.vocab_size + (c.hidden_size * c.embed_dim + c.embed_dim
                               if c.hidden_size != c.embed_dim else 0)
    else:
        head = c.hidden_size * c.vocab_size + c.vocab_size
    return c.vocab_size * c.embed_dim + lstm + head


def _config_from(data: dict[str, Any]) -> ModelConfig:
    try:
        config = ModelConfig.from_dict(data)
        for name in ("vocab_size", "embed_dim", "hidden_size", "num_layers", "control_dim",
                     "state_dim", "band_dim", "instrument_dim", "meter_dim"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
    except (TypeError, ValueError) as err:
        raise ValueError(f"invalid model_config: {err}") from None
    return config


def _check_weights(weights: Any, config: ModelConfig) -> None:
    """Names and shapes of ``weights`` against the model ``config`` describes (built on meta)."""
    if not isinstance(weights, dict) or not weights:
        raise ValueError("holds no model weights")
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in PerformanceRNN(config).state_dict().items()}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ValueError(f"its weights do not match its model_config (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    for name, shape in expected.items():
        tensor = weights[name]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise ValueError(f"weight {name} is not a float tensor")
        if tuple(tensor.shape) != shape:
            raise ValueError(f"weight {name} has shape {tuple(tensor.shape)}, its model_config "
                             f"implies {shape}")


def build_model(data: dict[str, Any], weights_of: Callable[[], Any],
                max_parameters: int) -> PerformanceRNN:
    """The model a saved config describes, with its weights: the config is checked, its size
    held to ``max_parameters`` before ``weights_of()`` loads anything, the weights' names and
    shapes checked before they are copied in. Raises ValueError (one line) for anything else."""
    config = _config_from(data)
    size = estimate_parameters(config)
    if size > max_parameters:
        raise ValueError(f"its model_config asks for {size:,} parameters (> {max_parameters:,}); "
                         f"refusing to build it")
    weights = weights_of()
    _check_weights(weights, config)
    model = PerformanceRNN(config)
    model.load_state_dict(weights)
    return model


__all__ = ["ModelConfig", "PerformanceRNN", "State", "build_model", "estimate_parameters",
           "next_event_loss"]
