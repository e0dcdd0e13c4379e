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

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from melodia.model.config import EventModel, ModelConfig, attach_output, join_inputs

log = logging.getLogger(__name__)

State = tuple[Tensor, Tensor]  # LSTM (h, c), each [num_layers, B, hidden_size]


class PerformanceRNN(EventModel):
    """LSTM language model over performance events; see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        self.lstm = nn.LSTM(c.embed_dim + c.input_dim, c.hidden_size, c.num_layers,
                            dropout=c.dropout if c.num_layers > 1 else 0.0, batch_first=True)
        self.dropout = nn.Dropout(c.dropout)
        attach_output(self, c)

    # ---------------------------------------------------------------------------- running

    def features(
        self, ids: Tensor, state: State | None = None, controls: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """Predicted output embeddings ``[B, T, E]`` (``[B, T, H]`` untied) and the new state."""
        x = join_inputs(self.embedding(ids), controls, self.config.input_dim)
        out, state = self.lstm(x, state)
        return self.proj(self.dropout(out)), state

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zero ``(h, c)``, the same as passing ``state=None``."""
        c = self.config
        shape = (c.num_layers, batch_size, c.hidden_size)
        device = device or self.embedding.weight.device
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)


def next_event_loss(model: nn.Module, inputs: Tensor, targets: Tensor,
                    controls: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Summed cross-entropy (nats) over targets that are not ``-100``, and how many there are."""
    logits, _ = model(inputs, None, controls)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=-100, reduction="sum")
    return loss, (targets != -100).sum()


def parameter_count(config: ModelConfig) -> int:
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


__all__ = ["PerformanceRNN", "State", "next_event_loss", "parameter_count"]
