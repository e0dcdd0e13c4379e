"""Magenta's attention RNN, the cheap way to look back: an LSTM whose every output also reads its
own last ``context`` outputs through attention.

The Performance RNN's LSTM has to carry in its state whatever it would copy; this family lets the
step at time ``t`` look at the LSTM outputs of ``t - context + 1 .. t`` directly, as Magenta's
``attention_rnn`` (its ``AttentionCellWrapper``) did for melodies. Here: a query from the output
``h_t``, keys from every remembered output, the read ``a_t`` the attention-weighted sum of those
outputs (one head, ``scaled_dot_product_attention``), and the features ``tanh(W [h_t; a_t])``,
projected into the tied output embedding like the other families. The inputs are the LSTM's
(events, controls, note state, band conditions, instrument, meter), so every control works.

Generation keeps the remembered keys and outputs in a ring of ``context`` slots beside the LSTM
state (:class:`AttentionStepper`), so a step costs the same at event 10,000 as at event 1,000.

>>> import torch
>>> from melodia.model.config import ModelConfig
>>> model = AttentionRNN(ModelConfig(kind="attention-rnn", embed_dim=32, hidden_size=32,
...                                  num_layers=1, context=8, dropout=0.0)).eval()
>>> ids = torch.randint(0, 388, (1, 12))
>>> whole, _ = model(ids)
>>> head, state = model(ids[:, :8])
>>> tail, state = model(ids[:, 8:], state)  # the last four events, from the state
>>> bool(torch.allclose(whole[:, 8:], tail, atol=1e-5)), state.length
(True, 12)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from melodia.model.config import (EventModel, ModelConfig, attach_output, into_ring, join_inputs,
                                  output_weights)
from melodia.model.stepper import FastStepper


class AttentionState(NamedTuple):
    """The LSTM's state (the model's ``(h, c)``; a stepper's per-layer form), the keys and outputs
    of the last ``context`` steps at most (``[B, T, H]`` each) and how many events were seen."""

    lstm: tuple[Tensor, Tensor]
    keys: Tensor
    outputs: Tensor
    length: int

    def select(self, rows: Tensor) -> "AttentionState":
        """Rows of the state (repeats allowed), e.g. for beam search."""
        h, c = self.lstm
        return AttentionState((h[:, rows], c[:, rows]), self.keys[rows], self.outputs[rows],
                              self.length)


class AttentionRNN(EventModel):
    """An LSTM language model attending over its own recent outputs; see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        self.lstm = nn.LSTM(c.embed_dim + c.input_dim, c.hidden_size, c.num_layers,
                            dropout=c.dropout if c.num_layers > 1 else 0.0, batch_first=True)
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.mix = nn.Linear(2 * c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(c.dropout)
        attach_output(self, c)

    def features(self, ids: Tensor, state: AttentionState | None = None,
                 controls: Tensor | None = None) -> tuple[Tensor, AttentionState]:
        """Predicted output embeddings ``[B, T, E]`` and the state after ``ids [B, T]``."""
        c = self.config
        x = join_inputs(self.embedding(ids), controls, c.input_dim)
        out, lstm = self.lstm(x, None if state is None else state.lstm)
        keys = self.key(out)
        start, T = (0, ids.shape[1]) if state is None else (state.length, ids.shape[1])
        if state is not None:  # remembered steps first
            keys, memory = torch.cat([state.keys, keys], 1), torch.cat([state.outputs, out], 1)
        else:
            memory = out
        S = memory.shape[1]
        q = torch.arange(S - T, S, device=ids.device)[:, None]  # each step sees its last `context`
        k = torch.arange(S, device=ids.device)[None]
        mask = (k <= q) & (k > q - c.context)
        read = F.scaled_dot_product_attention(self.query(out)[:, None], keys[:, None],
                                              memory[:, None], attn_mask=mask)[:, 0]
        h = torch.tanh(self.mix(torch.cat([out, read], dim=-1)))
        new = AttentionState(lstm, keys[:, -c.context:], memory[:, -c.context:], start + T)
        return self.proj(self.dropout(h)), new


def parameter_count(c: ModelConfig) -> int:
    """How many parameters :class:`AttentionRNN` ``(c)`` has, without building it."""
    h, gates = c.hidden_size, 4 * c.hidden_size
    lstm = gates * (c.embed_dim + c.input_dim + h) + 2 * gates
    lstm += (c.num_layers - 1) * (gates * 2 * h + 2 * gates)
    attention = 2 * (h * h + h) + (2 * h * h + h)
    head = (c.vocab_size + (h * c.embed_dim + c.embed_dim if h != c.embed_dim else 0)
            if c.tie_embeddings else h * c.vocab_size + c.vocab_size)
    return c.vocab_size * c.embed_dim + lstm + attention + head


class AttentionStepper:
    """Event-by-event inference of an :class:`AttentionRNN` (eval mode, no autograd), behind the
    stepper interface of the other families: ``step(ids [B], state, controls [B, C]) ->
    (logits [B, V], features [B, E], state)``. The LSTM steps as the Performance RNN's does
    (:meth:`FastStepper.lstm_step <melodia.model.stepper.FastStepper.lstm_step>`, int8 too);
    keys and outputs go into a ring of ``config.context`` slots (step ``p`` in slot
    ``p % context``; attention does not care about the order of its keys), written in place:
    keep a copy (:meth:`select`) to come back."""

    def __init__(self, model: AttentionRNN, precision: str = "fp32") -> None:
        self.model = model.eval()
        self.lstm = FastStepper(model, precision)
        self.precision, self.context = self.lstm.precision, model.config.context
        self.output_weight, self.output_bias = output_weights(model)

    def __repr__(self) -> str:
        c = self.model.config
        return f"AttentionStepper({c.describe()}, vocab {c.vocab_size})"

    @staticmethod
    def select(state: AttentionState, rows: Tensor) -> AttentionState:
        return AttentionState(FastStepper.select(state.lstm, rows), state.keys[rows],
                              state.outputs[rows], state.length)

    def _ring(self, state: AttentionState) -> AttentionState:
        """The model's state in the stepper's form: per-layer LSTM state, keys and outputs in
        rings."""
        keys, outputs = (into_ring(x, state.length, self.context, 1)
                         for x in (state.keys, state.outputs))
        return AttentionState(FastStepper.from_model_state(state.lstm), keys, outputs,
                              state.length)

    def prime(self, ids: Tensor, controls: Tensor | None = None
              ) -> tuple[Tensor, Tensor, AttentionState]:
        """Run a context ``ids [B, T]`` through the model in one call."""
        with torch.no_grad():
            features, state = self.model.features(ids, None, controls)
        features = features[:, -1].float()
        logits = F.linear(features, self.output_weight, self.output_bias)
        return logits, features, self._ring(state)

    @torch.no_grad()
    def step(self, ids: Tensor, state: AttentionState | None = None,
             controls: Tensor | None = None) -> tuple[Tensor, Tensor, AttentionState]:
        """Feed one event per row; the logits and features predicting the next, and the state."""
        if state is None:
            return self.prime(ids[:, None], None if controls is None else controls[:, None])
        model = self.model
        out, lstm = self.lstm.lstm_step(ids, state.lstm, controls)
        slot, filled = state.length % self.context, min(state.length + 1, self.context)
        state.keys[:, slot], state.outputs[:, slot] = model.key(out), out
        read = F.scaled_dot_product_attention(
            model.query(out)[:, None, None], state.keys[:, None, :filled],
            state.outputs[:, None, :filled])[:, 0, 0]
        features = model.proj(torch.tanh(model.mix(torch.cat([out, read], dim=-1)))).float()
        logits = F.linear(features, self.output_weight, self.output_bias)
        return logits, features, AttentionState(lstm, state.keys, state.outputs,
                                                state.length + 1)


__all__ = ["AttentionRNN", "AttentionState", "AttentionStepper", "parameter_count"]
