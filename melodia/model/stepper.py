"""Fast event-by-event inference for a trained :class:`~melodia.model.lstm.PerformanceRNN`.

Generation feeds one event at a time at batch 1, where ``nn.LSTM`` spends most of its time in
per-call overhead (and oneDNN's LSTM kernel is slow for single steps). :class:`FastStepper` copies
the weights out of the model once and runs each layer as one fused matrix product over
``[x, h]`` plus the gate arithmetic, with two further savings:

- the first layer's input product depends only on the token (and the controls), so
  ``embedding @ W_ih.T + b`` is precomputed as a ``[V, 4H]`` table and a step is a row lookup;
- ``precision="int8"`` stores the LSTM matrices as int8 with one scale per output row and
  quantizes each step's input vector on the fly (symmetric, one scale per row of the batch),
  multiplying in integers with ``torch._int_mm``; the table, the output layer and all gate
  arithmetic stay fp32.

Why ``torch._int_mm`` rather than ``torch.ao.quantization.quantize_dynamic`` or torchao: the
``torch.ao`` eager API and the quantized tensor dtypes it needs (``qint8``) are deprecated and
slated for removal; torchao is a separate, fast-moving package whose int8 CPU path is tuned for
``torch.compile`` rather than batch-1 eager steps. ``_int_mm`` is the plain-int8 aten kernel
that torchao itself dispatches to, it takes ordinary ``int8`` tensors, and it is checked
against exact integer arithmetic at first use; if it is missing or wrong, ``int8`` falls back
to fp32 with a warning.

Nothing here changes the model: the stepper reads its parameters, so ``model.py`` stays the
single definition of the network.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from melodia.model.config import output_weights
from melodia.model.lstm import PerformanceRNN

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
# Per layer: a tuple of per-layer tensors, so a step never copies the other layers.
StepState = tuple[tuple[Tensor, ...], tuple[Tensor, ...]]

_INT8_OK: bool | None = None


def int8_available() -> bool:
    """Whether ``torch._int_mm`` exists here and multiplies int8 matrices exactly (checked once)."""
    global _INT8_OK
    if _INT8_OK is None:
        try:
            g = torch.Generator().manual_seed(0)
            a = torch.randint(-127, 128, (3, 300), generator=g).to(torch.int8)
            b = torch.randint(-127, 128, (40, 300), generator=g).to(torch.int8)
            a[0] = 127
            b[0] = -127
            _INT8_OK = bool(torch.equal(torch._int_mm(a, b.t()).long(), a.long() @ b.long().t()))
        except (AttributeError, RuntimeError):
            _INT8_OK = False
    return _INT8_OK


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (``None``: leave as is), then restore."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class _Int8Matrix:
    """``y = x @ W.T + b`` with ``W`` stored as int8 rows and fp32 per-row scales."""

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127.0
        self.qweight_t = torch.round(weight / scale[:, None]).to(torch.int8).t()  # [K, N] view
        self.scale = scale.float()
        self.bias = bias

    def __call__(self, x: Tensor) -> Tensor:
        x_scale = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
        xq = torch.round(x / x_scale).to(torch.int8)
        acc = torch._int_mm(xq, self.qweight_t).float()
        out = acc * (x_scale * self.scale)
        return out if self.bias is None else out.add_(self.bias)

    def plus(self, base: Tensor, x: Tensor) -> Tensor:
        """``base + x @ W.T`` (``base`` per row, e.g. table rows)."""
        return self(x).add_(base)


class _Fp32Matrix:
    """``y = x @ W.T + b`` in fp32."""

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        self.weight_t = weight.contiguous().t()
        self.bias = bias

    def __call__(self, x: Tensor) -> Tensor:
        if self.bias is None:
            return x @ self.weight_t
        return torch.addmm(self.bias, x, self.weight_t)

    def plus(self, base: Tensor, x: Tensor) -> Tensor:
        return torch.addmm(base, x, self.weight_t)


class FastStepper:
    """Single-step inference of a :class:`PerformanceRNN` (eval mode, no autograd); its LSTM
    part (:meth:`lstm_step`) also steps an :class:`~melodia.model.attention_rnn.AttentionRNN`.

    ``step(ids [B], state, controls [B, C] | None) -> (logits [B, V], features [B, E], state)``;
    ``prime`` runs a whole context through the model itself and returns the same triple.
    ``output_weight``/``output_bias`` are the output layer: ``logits = features @ W.T + b``.
    """

    def __init__(self, model: PerformanceRNN, precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        if precision == "int8" and not int8_available():
            log.warning("int8 matrix products are not available here; using fp32")
            precision = "fp32"
        self.model, self.precision = model, precision
        c = model.config
        self.num_layers, self.hidden_size = c.num_layers, c.hidden_size
        self.control_dim = c.input_dim
        self.vocab_size = c.vocab_size
        matrix = _Int8Matrix if precision == "int8" else _Fp32Matrix
        with torch.no_grad():
            lstm = model.lstm
            p = {name: t.detach().float().cpu() for name, t in lstm.named_parameters()}
            bias0 = p["bias_ih_l0"] + p["bias_hh_l0"]
            emb = model.embedding.weight.detach().float().cpu()
            w_ih0 = p["weight_ih_l0"]
            self.table = torch.addmm(bias0, emb, w_ih0[:, : c.embed_dim].t()).contiguous()
            self.control_matrix = (_Fp32Matrix(w_ih0[:, c.embed_dim:], None)
                                   if c.input_dim else None)
            self.layers = [matrix(p["weight_hh_l0"], None)]
            for layer in range(1, c.num_layers):
                weight = torch.cat([p[f"weight_ih_l{layer}"], p[f"weight_hh_l{layer}"]], dim=1)
                bias = p[f"bias_ih_l{layer}"] + p[f"bias_hh_l{layer}"]
                self.layers.append(matrix(weight, bias))
            proj = model.proj
            self.proj = (_Fp32Matrix(proj.weight.detach().float(), proj.bias.detach().float())
                         if isinstance(proj, torch.nn.Linear) else None)
            self.output_weight, self.output_bias = (t.cpu() for t in output_weights(model))
        self._controls_key: Tensor | None = None
        self._controls_gates: Tensor | None = None

    def __repr__(self) -> str:
        return (f"FastStepper({self.num_layers}x{self.hidden_size} LSTM, {self.precision}, "
                f"vocab {self.vocab_size})")

    # ------------------------------------------------------------------------------ state

    def initial_state(self, batch: int) -> StepState:
        zeros = tuple(torch.zeros(batch, self.hidden_size) for _ in range(self.num_layers))
        return zeros, tuple(torch.zeros(batch, self.hidden_size) for _ in range(self.num_layers))

    @staticmethod
    def from_model_state(state: tuple[Tensor, Tensor]) -> StepState:
        """``(h, c)`` of shape ``[L, B, H]`` (as ``nn.LSTM``) to the per-layer form."""
        h, c = state
        return tuple(h.float().unbind(0)), tuple(c.float().unbind(0))

    @staticmethod
    def to_model_state(state: StepState) -> tuple[Tensor, Tensor]:
        return torch.stack(state[0]), torch.stack(state[1])

    @staticmethod
    def select(state: StepState, rows: Tensor) -> StepState:
        """Rows of a state (repeats allowed), e.g. for beam search."""
        return tuple(h[rows] for h in state[0]), tuple(c[rows] for c in state[1])

    # ------------------------------------------------------------------------------- steps

    def _output(self, top: Tensor) -> tuple[Tensor, Tensor]:
        features = top if self.proj is None else self.proj(top)
        return F.linear(features, self.output_weight, self.output_bias), features

    def _control_gates(self, controls: Tensor) -> Tensor:
        if controls is not self._controls_key:  # constant controls are projected once
            self._controls_key = controls
            self._controls_gates = self.control_matrix(controls.float())
        return self._controls_gates

    @torch.no_grad()
    def step(self, ids: Tensor, state: StepState | None = None, controls: Tensor | None = None
             ) -> tuple[Tensor, Tensor, StepState]:
        """Feed one event per row; the logits and features predicting the next, and the state."""
        top, state = self.lstm_step(ids, state, controls)
        logits, features = self._output(top)
        return logits, features, state

    @torch.no_grad()
    def lstm_step(self, ids: Tensor, state: StepState | None = None,
                  controls: Tensor | None = None) -> tuple[Tensor, StepState]:
        """The LSTM alone, one event per row: the top layer's output ``[B, H]`` and the state."""
        if state is None:
            state = self.initial_state(len(ids))
        hs, cs = state
        new_h, new_c = [], []
        H = self.hidden_size
        x = None
        for layer, (h, c, matrix) in enumerate(zip(hs, cs, self.layers)):
            if layer == 0:
                gates = matrix.plus(self.table[ids], h)
                if self.control_matrix is not None and controls is not None:
                    gates = gates.add_(self._control_gates(controls))
            else:
                gates = matrix(torch.cat([x, h], dim=1))
            sig = torch.sigmoid(gates)
            c = torch.addcmul(sig[:, H:2 * H] * c, sig[:, :H], torch.tanh(gates[:, 2 * H:3 * H]))
            x = sig[:, 3 * H:] * torch.tanh(c)
            new_h.append(x)
            new_c.append(c)
        return x, (tuple(new_h), tuple(new_c))

    @torch.no_grad()
    def prime(self, ids: Tensor, controls: Tensor | None = None
              ) -> tuple[Tensor, Tensor, StepState]:
        """Run a context ``ids [B, T]`` (``T >= 1``) through the model in one call."""
        model = self.model
        was_training = model.training
        model.eval()
        try:
            features, state = model.features(ids, None, controls)
        finally:
            model.train(was_training)
        features = features[:, -1].float()
        logits = F.linear(features, self.output_weight, self.output_bias)
        return logits, features, self.from_model_state(state)


@torch.no_grad()
def sequence_nll(stepper: FastStepper, sequences: Tensor, controls: Tensor | None = None,
                 ) -> float:
    """Mean NLL (nats/event) of ``sequences [B, T]`` under ``stepper``, fed one step at a time."""
    state, total = None, 0.0
    for t in range(sequences.shape[1] - 1):
        logits, _, state = stepper.step(sequences[:, t], state,
                                        None if controls is None else controls[:, t])
        total += F.cross_entropy(logits, sequences[:, t + 1], reduction="sum").item()
    return total / (sequences.shape[0] * (sequences.shape[1] - 1))


__all__ = ["FastStepper", "PRECISIONS", "StepState", "int8_available", "sequence_nll", "threads"]
